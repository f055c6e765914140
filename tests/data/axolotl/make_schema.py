"""Dump Axolotl's config schema (pydantic models) to ``schema-<version>.json``.

Runs REAL Axolotl (same venv as ``tests/data/golden/make_golden.py``, see its
docstring for the recipe) and is never imported or run by ftkit itself::

    /tmp/axo-venv/bin/python tests/data/axolotl/make_schema.py

Everything is read from the pydantic models: ``AxolotlInputConfig`` (with all
its mixins) for the top level, ``SFTDataset`` for ``datasets:`` entries, every
``BaseModel`` in ``axolotl.utils.schemas.*`` for the dataset-like and nested
models, plus the enums in ``axolotl.utils.schemas.enums`` and the values the
free-form ``optimizer`` / ``lr_scheduler`` / dataset ``type`` strings accept.
"""

from __future__ import annotations

import enum
import functools
import importlib
import importlib.metadata as md
import inspect
import json
import os
import pkgutil
import sys
import types
import typing
from pathlib import Path

os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

HERE = Path(__file__).resolve().parent

from pydantic import AliasChoices, AliasPath, BaseModel  # noqa: E402
from pydantic_core import PydanticUndefined  # noqa: E402

import axolotl  # noqa: E402
import axolotl.utils.schemas as schemas_pkg  # noqa: E402
from axolotl.utils.schemas import enums as ax_enums  # noqa: E402
from axolotl.utils.schemas.config import AxolotlInputConfig  # noqa: E402
from axolotl.utils.schemas.datasets import SFTDataset  # noqa: E402
from axolotl.utils.schemas.deprecated import DeprecatedParameters, RemappedParameters  # noqa: E402

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def type_str(tp) -> str:
    """A readable, deterministic rendering of a type annotation."""
    if tp is type(None):
        return "None"
    if tp is typing.Any:
        return "Any"
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        base, *meta = args
        meta_s = ", ".join(_meta_str(m) for m in meta)
        return f"Annotated[{type_str(base)}, {meta_s}]"
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_str(a) for a in args)
    if origin is typing.Literal:
        return "Literal[" + ", ".join(repr(a) for a in args) + "]"
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        if args:
            return f"{name}[" + ", ".join(type_str(a) for a in args) + "]"
        return name
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _meta_str(m) -> str:
    for attr in ("min_length", "max_length", "ge", "gt", "le", "lt", "pattern"):
        if hasattr(m, attr) and len(getattr(type(m), "__dataclass_fields__", {})) == 1:
            return f"{type(m).__name__}({getattr(m, attr)!r})"
    return repr(m)


def jsonable(v):
    if v is PydanticUndefined:
        return None
    if isinstance(v, enum.Enum):
        return jsonable(v.value)
    if isinstance(v, BaseModel):
        return jsonable(v.model_dump())
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [jsonable(x) for x in v]
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


def aliases(fi) -> list[str]:
    out = []

    def add(a):
        if a is None:
            return
        if isinstance(a, str):
            if a not in out:
                out.append(a)
        elif isinstance(a, AliasChoices):
            for c in a.choices:
                add(c)
        elif isinstance(a, AliasPath):
            add(".".join(str(p) for p in a.path))

    add(fi.alias)
    add(fi.validation_alias)
    add(fi.serialization_alias)
    return out


def description(fi) -> str | None:
    extra = fi.json_schema_extra if isinstance(fi.json_schema_extra, dict) else {}
    return extra.get("description") or fi.description or None


def defining_model(model, name) -> str:
    for klass in model.__mro__:
        if name in getattr(klass, "__annotations__", {}):
            return klass.__name__
    return model.__name__


def field_entry(model, name, fi, deprecated_names=frozenset()):
    if fi.default_factory is not None:
        try:
            default = fi.default_factory()
        except TypeError:
            default = None
    else:
        default = fi.default
    return {
        "type": type_str(fi.annotation),
        "default": jsonable(default),
        "required": fi.is_required(),
        "aliases": aliases(fi),
        "description": description(fi),
        "deprecated": bool(fi.deprecated) or name in deprecated_names,
        "defined_in": defining_model(model, name),
    }


def model_fields(model, deprecated_names=frozenset()):
    return {n: field_entry(model, n, fi, deprecated_names) for n, fi in model.model_fields.items()}


def referenced_models(tp, acc):
    """Collect BaseModel subclasses referenced (recursively) by an annotation."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if tp not in acc:
            acc.append(tp)
            for fi in tp.model_fields.values():
                referenced_models(fi.annotation, acc)
        return
    for a in typing.get_args(tp):
        referenced_models(a, acc)


def all_schema_models():
    out = {}
    for mi in pkgutil.walk_packages(schemas_pkg.__path__, schemas_pkg.__name__ + "."):
        mod = importlib.import_module(mi.name)
        for name, obj in vars(mod).items():
            if inspect.isclass(obj) and issubclass(obj, BaseModel) and obj.__module__ == mod.__name__:
                out[name] = obj
    return out


def enum_values(e):
    return [jsonable(m.value) for m in e]


# ---------------------------------------------------------------------------
# dataset `type` names
# ---------------------------------------------------------------------------


def sft_type_names():
    """Prompt-strategy modules and their load functions (``module`` / ``module.load_x``)."""
    import axolotl.prompt_strategies as ps
    from axolotl.utils.data.wrappers import DATASET_HANDLERS

    rl_pkgs = {"dpo", "kto", "orpo", "ebft"}
    modules = {}
    for mi in pkgutil.walk_packages(ps.__path__, ps.__name__ + "."):
        rel = mi.name[len(ps.__name__) + 1 :]
        if rel.split(".")[-1].startswith("_") and rel != "_synthetic":
            continue
        try:
            mod = importlib.import_module(mi.name)
        except Exception as exc:  # noqa: BLE001
            modules[rel] = {"import_error": f"{type(exc).__name__}: {exc}"}
            continue
        fns = sorted(
            n for n, f in vars(mod).items()
            if (n == "load" or n.startswith("load_")) and callable(f) and not isinstance(f, functools.partial)
            and (not inspect.isfunction(f) or f.__module__ == mod.__name__)
        )
        # RL strategy modules expose transform functions instead of load()
        transforms = sorted(
            n for n, f in vars(mod).items()
            if inspect.isfunction(f) and f.__module__ == mod.__name__ and not n.startswith("_")
            and n != "load" and not n.startswith("load_")
        )
        modules[rel] = {"load_functions": fns, "other_functions": transforms,
                        "group": rel.split(".")[0] if rel.split(".")[0] in rl_pkgs | {"bradley_terry"} else "sft"}
    accepted = []
    not_types = {"base": "generic RL transform loader helper (load(strategy, cfg, module_base)), not a dataset type",
                 "jinja_template_analyzer": "helper module, no load()"}
    for rel, info in sorted(modules.items()):
        if rel in not_types:
            info["note"] = not_types[rel]
            continue
        if info.get("group") != "sft" or "load_functions" not in info:
            continue
        for fn in info["load_functions"]:
            accepted.append(rel if fn == "load" else f"{rel}.{fn}")
    from axolotl.prompters import AlpacaPrompter  # noqa: F401
    from axolotl.prompters import PromptStyle

    return {
        "prompt_strategy_modules": modules,
        "sft_strategy_types": sorted(set(accepted)),
        "builtin_handlers": sorted(DATASET_HANDLERS),
        "builtin_handler_prompt_styles": enum_values(PromptStyle),
        "builtin_handler_syntax": "<handler>[:<prompt_style>] e.g. alpaca:chatml; the style suffix is split off at ':'",
        "special_types": ["chat_template", "messages", "bradley_terry.<module>", "stepwise_supervised",
                          "user_defined (dict type: UserDefinedPrompterType)", "_synthetic (path: synthetic)"],
        "module_syntax": "<module>[.<load_fn>] resolved by axolotl.prompt_strategies.load: the last dotted part is "
                         "the function when it is 'load' or starts with 'load_', otherwise load() of the module",
    }


def rl_type_names():
    """RL dataset `type` names: module.function under prompt_strategies/{dpo,kto,orpo}."""
    import axolotl.prompt_strategies as ps

    out = {}
    for pkg in ("dpo", "kto", "orpo", "bradley_terry", "ebft"):
        names = []
        p = importlib.import_module(f"{ps.__name__}.{pkg}")
        for mi in pkgutil.iter_modules(p.__path__):
            try:
                mod = importlib.import_module(f"{p.__name__}.{mi.name}")
            except Exception:  # noqa: BLE001
                names.append(f"{mi.name} (import error)")
                continue
            for n, f in sorted(vars(mod).items()):
                if inspect.isfunction(f) and f.__module__ == mod.__name__ and not n.startswith("_"):
                    names.append(f"{mi.name}.{n}")
        out[pkg] = names
    return out


# ---------------------------------------------------------------------------


def main():
    deprecated_names = frozenset(DeprecatedParameters.model_fields)
    top = model_fields(AxolotlInputConfig, deprecated_names)
    models = all_schema_models()

    dataset_like = {}
    for name, m in sorted(models.items()):
        if name.endswith("Dataset") or name.startswith("UserDefined") or name in ("DatasetConfig",):
            dataset_like[name] = list(m.model_fields)

    nested_models: list[type] = []
    for fi in AxolotlInputConfig.model_fields.values():
        referenced_models(fi.annotation, nested_models)
    nested = {}
    nested_full = {}
    for m in sorted(nested_models, key=lambda c: c.__name__):
        if m.__name__ in dataset_like:
            continue
        nested[m.__name__] = {n: type_str(fi.annotation) for n, fi in m.model_fields.items()}
        nested_full[m.__name__] = model_fields(m)
    nested_fields_of_top = {
        n: [m.__name__ for m in _refs(fi.annotation)]
        for n, fi in AxolotlInputConfig.model_fields.items() if _refs(fi.annotation)
    }

    from transformers.trainer_utils import SchedulerType
    from transformers.training_args import OptimizerNames

    import axolotl.utils.schemas.enums as E

    enums = {
        "ChatTemplate": enum_values(E.ChatTemplate),
        "RLType": enum_values(E.RLType),
        "CustomSupportedOptimizers": enum_values(E.CustomSupportedOptimizers),
        "transformers.OptimizerNames": enum_values(OptimizerNames),
        "optimizer_note": "optimizer is `str | CustomSupportedOptimizers` (default adamw_torch_fused): any "
                          "transformers OptimizerNames value or one of CustomSupportedOptimizers",
        "transformers.SchedulerType": enum_values(SchedulerType),
        "lr_scheduler_axolotl_extra": ["one_cycle", "rex"],
        "lr_scheduler_note": "lr_scheduler is a free `str` (default cosine) passed to transformers as "
                             "lr_scheduler_type, except one_cycle/rex which Axolotl builds itself "
                             "(lr_scheduler_type becomes cosine, alternate_lr_scheduler_type the name)",
        "RingAttnFunc": enum_values(E.RingAttnFunc),
        "TorchAOQuantDType": [m.name for m in E.TorchAOQuantDType],
        "CANONICAL_ATTN_IMPLS": sorted(E.CANONICAL_ATTN_IMPLS),
        "LEGACY_ATTN_FLAG_TO_IMPL": dict(E.LEGACY_ATTN_FLAG_TO_IMPL),
        "SHORT_FORM_ALIAS_TO_CANONICAL": dict(E.SHORT_FORM_ALIAS_TO_CANONICAL),
        "ATTN_IMPLS_SUPPORTING_PACKING": sorted(E.ATTN_IMPLS_SUPPORTING_PACKING),
        "train_on_eos / train_on_eot": ["all", "turn", "last", "none"],
    }

    from axolotl.utils.chat_templates import _CHAT_TEMPLATES

    out = {
        "axolotl_version": axolotl.__version__,
        "versions": {p: md.version(p) for p in ("axolotl", "pydantic", "transformers", "trl")},
        "generated_by": "tests/data/axolotl/make_schema.py",
        "counts": {
            "top_level": len(top),
            "top_level_deprecated": sum(1 for v in top.values() if v["deprecated"]),
            "top_level_with_aliases": sum(1 for v in top.values() if v["aliases"]),
            "dataset": len(SFTDataset.model_fields),
            "dataset_models": len(dataset_like),
            "nested_models": len(nested),
        },
        "top_level": top,
        "dataset": model_fields(SFTDataset),
        "dataset_models": dataset_like,
        "dataset_models_full": {n: model_fields(models[n]) for n in dataset_like if n in models},
        "datasets_union": "datasets / test_datasets: list[SFTDataset | DPODataset | KTODataset | "
                          "StepwiseSupervisedDataset | SyntheticDataset] (pydantic smart union; MinLen 1); "
                          "pretraining_dataset: list[PretrainingDataset | SFTDataset]",
        "nested": nested,
        "nested_full": nested_full,
        "top_level_fields_with_nested_models": nested_fields_of_top,
        "remapped_parameters": {n: aliases(fi) for n, fi in RemappedParameters.model_fields.items()},
        "enums": enums,
        "chat_template_names_with_jinja": sorted(_CHAT_TEMPLATES),
        "dataset_types": {"sft": sft_type_names(), "rl": rl_type_names()},
        "plugins": plugin_fields(),
    }
    ver = axolotl.__version__
    path = HERE / f"schema-{ver}.json"
    path.write_text(json.dumps(out, indent=1, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")
    print(path, json.dumps(out["counts"]))


def plugin_fields() -> dict:
    """The keys each Axolotl plugin adds to the config (`axolotl.integrations.<name>.args`), by plugin package.
    A plugin whose args module cannot be imported on this machine is listed with an empty list."""
    import importlib
    import inspect
    import pkgutil

    import axolotl.integrations as integrations
    from pydantic import BaseModel

    out = {}
    for m in pkgutil.iter_modules(integrations.__path__):
        if not m.ispkg:
            continue
        try:
            mod = importlib.import_module(f"axolotl.integrations.{m.name}.args")
        except Exception:  # noqa: BLE001 - some plugins need CUDA-only packages
            out[m.name] = []
            continue
        fields = set()
        for _, c in inspect.getmembers(mod, inspect.isclass):
            if issubclass(c, BaseModel) and c.__module__ == mod.__name__:
                fields |= set(c.model_fields)
        out[m.name] = sorted(fields)
    return out


def _refs(tp):
    acc: list[type] = []
    referenced_models(tp, acc)
    return acc


if __name__ == "__main__":
    sys.exit(main())
