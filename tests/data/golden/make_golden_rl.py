"""Generate Axolotl golden fixtures for preference / RL datasets (DPO, IPO-style, ORPO, KTO, reward models).

Same venv and tokenizers as ``make_golden.py`` (see its docstring for the recipe); never run or
imported by ftkit's test-suite. Writes ``rl_<method>_<type>[_<variant>].json`` next to itself and
rewrites the RL section of ``README.md`` (between the ``<!-- rl:begin -->`` / ``<!-- rl:end -->``
markers, so ``make_golden.py``'s own README rebuild keeps it).

Run::

    /tmp/axo-venv/bin/python tests/data/golden/make_golden_rl.py            # all cases
    /tmp/axo-venv/bin/python tests/data/golden/make_golden_rl.py rl_kto     # name filter

How Axolotl is driven
---------------------
*String transforms* (``rl: dpo | orpo | kto`` with a ``type:`` from ``prompt_strategies/{dpo,orpo,kto}``),
exactly as ``axolotl preprocess`` does for RL configs:

1. the config dict (``rl: ...``, ``datasets: [...]``, ``shuffle_merged_datasets: false`` so that the
   output keeps the input order) goes through ``axolotl.cli.config.load_cfg``;
2. ``axolotl.loaders.load_tokenizer(cfg)``;
3. ``axolotl.utils.data.rl.prepare_preference_datasets(cfg, tokenizer)`` -> ``_load_split``: loads the
   JSONL, picks the transform with ``prompt_strategies.{dpo,orpo,kto}.load(type, cfg, dataset_idx=0)``
   (a dict ``type`` becomes ``user_defined.default``), ``datasets.map``s it (with the transform's
   ``remove_columns``), then filters with ``_drop_long_sequences`` (``excess_length_strategy`` drop, or
   truncate / raise), and merges. Its rows (strings, before TRL tokenizes) are ``pipeline.rows``.

   A bad row can abort the whole map/filter. So the pipeline runs twice: on all rows
   (``pipeline_all``: rows or the error) and on the rows not marked ``bad`` (``pipeline``); and every
   row is also run on its own through the very same transform function and length filter
   (``rows[i].output`` / ``rows[i].kept`` / ``rows[i].error`` / ``rows[i].filter_error``). The script
   asserts that the per-row results of the good rows equal ``pipeline.rows``.

*Tokenizing strategies* (``type: bradley_terry.chat_template`` with ``reward_model: true``,
``type: stepwise_supervised`` with ``process_reward_model: true``, and ``type: orpo.chat_template``, the
ORPO tokenizer Axolotl applies when that type is used in the SFT data path): driven with
``make_golden.run_case`` (``_load_and_process_single_dataset``), so those files have the SFT fixture
layout, with the strategy's own output columns.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import make_golden as mg  # noqa: E402  (sets the offline / no-telemetry environment)

WORK = Path(tempfile.mkdtemp(prefix="axo-golden-rl-"))

# ---------------------------------------------------------------------------
# data: handcrafted rows; rows whose index is in a case's "bad" list are the deliberately broken ones
# ---------------------------------------------------------------------------

SYS = "You are a helpful assistant."

# chatml/llama3 .default and DPO/KTO argilla-style fields
DPO_ARGILLA = [
    {"system": SYS, "instruction": "Name a primary color.", "chosen_response": "Red.", "rejected_response": "Purple."},
    {"system": "", "instruction": "What is 2 + 2?", "chosen_response": "4", "rejected_response": "22"},
    {"system": SYS, "instruction": "Say hi in French 🇫🇷", "chosen_response": " Bonjour ! ", "rejected_response": "Hello"},
    # bad rows
    {"system": SYS, "instruction": "Missing chosen.", "rejected_response": "Only rejected."},
    {"system": SYS, "instruction": "Same answers.", "chosen_response": "Same.", "rejected_response": "Same."},
    {"system": SYS, "instruction": "", "chosen_response": "Answer to nothing.", "rejected_response": "Nothing."},
]
ARGILLA_BAD = [3, 4, 5]


def _conv(user, assistant):
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]


DPO_ARGILLA_CHAT = [
    {"chosen": _conv("Name a primary color.", "Red."), "rejected": _conv("Name a primary color.", "Purple.")},
    {"chosen": _conv("What is 2 + 2?", " 4 "), "rejected": _conv("What is 2 + 2?", "22")},
    {"chosen": _conv("Multi?", "first") + _conv("and then?", "second"),
     "rejected": _conv("Multi?", "first") + _conv("and then?", "wrong")},
    {"rejected": _conv("Missing chosen.", "Only rejected.")},
    {"chosen": _conv("Same answers.", "Same."), "rejected": _conv("Same answers.", "Same.")},
    {"chosen": _conv("", "Answer to nothing."), "rejected": _conv("", "Nothing.")},
]
ARGILLA_CHAT_BAD = [3, 4, 5]

DPO_ICR = [
    {"system": SYS, "input": "Name a primary color.", "chosen": "Red.", "rejected": "Purple."},
    {"system": "", "input": "What is 2 + 2?", "chosen": "4", "rejected": "22"},
    {"input": "No system key.", "chosen": " spaced ", "rejected": "x"},
    {"system": SYS, "input": "Missing chosen.", "rejected": "Only rejected."},
    {"system": SYS, "input": "Same answers.", "chosen": "Same.", "rejected": "Same."},
    {"system": SYS, "input": "", "chosen": "Answer to nothing.", "rejected": "Nothing."},
]
DPO_INTEL = [{("question" if k == "input" else k): v for k, v in r.items()} for r in DPO_ICR]
DPO_PROMPT_PAIRS = [{("prompt" if k == "input" else k): v for k, v in r.items()} for r in DPO_ICR]
ICR_BAD = [3, 4, 5]

DPO_ULTRA = [
    {"system": SYS, "prompt": "Name a primary color.", "chosen": _conv("Name a primary color.", "Red."),
     "rejected": _conv("Name a primary color.", "Purple.")},
    {"prompt": "What is 2 + 2?", "chosen": _conv("What is 2 + 2?", "4"), "rejected": _conv("What is 2 + 2?", "22")},
    {"prompt": "Missing chosen.", "rejected": _conv("Missing chosen.", "Only rejected.")},
    {"prompt": "Same answers.", "chosen": _conv("Same answers.", "Same."), "rejected": _conv("Same answers.", "Same.")},
    {"prompt": "", "chosen": _conv("", "Answer to nothing."), "rejected": _conv("", "Nothing.")},
]
ULTRA_BAD = [2, 3, 4]

NECTAR = [
    {"prompt": "Name a primary color.", "answers": [{"answer": "Purple.", "rank": 3}, {"answer": "Red.", "rank": 1},
                                                     {"answer": "Blue.", "rank": 2}]},
    {"prompt": "What is 2 + 2?", "answers": [{"answer": "4", "rank": 1}, {"answer": "22", "rank": 2}]},
    {"prompt": "Only one answer.", "answers": [{"answer": "lonely", "rank": 1}]},
    {"prompt": "Same answers.", "answers": [{"answer": "Same.", "rank": 1}, {"answer": "Same.", "rank": 2}]},
    {"prompt": "", "answers": [{"answer": "Answer to nothing.", "rank": 1}, {"answer": "Nothing.", "rank": 2}]},
]
NECTAR_BAD = [2, 3, 4]

CT_DEFAULT = [
    {"messages": [{"role": "system", "content": SYS}, {"role": "user", "content": "Name a primary color."}],
     "chosen": {"role": "assistant", "content": "Red."}, "rejected": {"role": "assistant", "content": "Purple."}},
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                  {"role": "user", "content": "What is 2 + 2?"}],
     "chosen": {"role": "assistant", "content": " 4 "}, "rejected": {"role": "assistant", "content": "22"}},
    {"messages": [{"role": "user", "content": "Missing chosen."}],
     "rejected": {"role": "assistant", "content": "Only rejected."}},
    {"messages": [{"role": "user", "content": "Same answers."}],
     "chosen": {"role": "assistant", "content": "Same."}, "rejected": {"role": "assistant", "content": "Same."}},
    {"messages": [{"role": "user", "content": ""}],
     "chosen": {"role": "assistant", "content": "Answer to nothing."},
     "rejected": {"role": "assistant", "content": "Nothing."}},
    {"messages": [{"role": "user", "content": "Chosen text occurs in the prompt: Red."}],
     "chosen": {"role": "assistant", "content": "user"}, "rejected": {"role": "assistant", "content": "Blue."}},
]
CT_BAD = [2, 3, 4]
CT_STR = [  # messages and chosen/rejected as plain strings
    {"messages": "Name a primary color.", "chosen": "Red.", "rejected": "Purple."},
    {"messages": "What is 2 + 2?", "chosen": " 4 ", "rejected": "22"},
    {"messages": "Missing chosen.", "rejected": "Only rejected."},
    {"messages": "Same answers.", "chosen": "Same.", "rejected": "Same."},
    {"messages": "", "chosen": "Answer to nothing.", "rejected": "Nothing."},
]
CT_LIST = [  # chosen/rejected as message lists: the LAST message is used
    {"messages": [{"role": "user", "content": "Name a primary color."}],
     "chosen": [{"role": "user", "content": "ignored"}, {"role": "assistant", "content": "Red."}],
     "rejected": [{"role": "user", "content": "ignored"}, {"role": "assistant", "content": "Purple."}]},
    {"messages": [{"role": "user", "content": "What is 2 + 2?"}],
     "chosen": [{"role": "assistant", "content": "4"}], "rejected": [{"role": "assistant", "content": "22"}]},
]
CT_FIELDS = [  # custom field names
    {"conversation": r["messages"], "good": r.get("chosen"), "bad": r.get("rejected")} for r in CT_DEFAULT[:2]
] + [
    {"conversation": [{"role": "user", "content": "Same answers."}],
     "good": {"role": "assistant", "content": "Same."}, "bad": {"role": "assistant", "content": "Same."}},
]
CT_ROLES = [  # ShareGPT-style keys mapped through message_property_mappings + roles
    {"messages": [{"from": "system", "value": SYS}, {"from": "human", "value": "Name a primary color."}],
     "chosen": {"from": "gpt", "value": "Red."}, "rejected": {"from": "gpt", "value": "Purple."}},
    {"messages": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"},
                  {"from": "human", "value": "What is 2 + 2?"}],
     "chosen": {"from": "gpt", "value": "4"}, "rejected": {"from": "gpt", "value": "22"}},
]

UD_DPO = [
    {"sys": "Be terse.", "question": "Name a primary color.", "good": "Red.", "bad": "Purple."},
    {"sys": "", "question": "What is 2 + 2?", "good": "4", "bad": "22"},
    {"question": "No system key.", "good": "yes", "bad": "no"},
    {"sys": "Be terse.", "question": "Missing chosen.", "bad": "Only rejected."},
    {"sys": "Be terse.", "question": "Same answers.", "good": "Same.", "bad": "Same."},
    {"sys": "Be terse.", "question": "", "good": "Answer to nothing.", "bad": "Nothing."},
]
UD_BAD = [3, 4, 5]

PASSTHROUGH = [
    {"prompt": "<|begin_of_text|>Q: colour?\nA:", "chosen": " Red.", "rejected": " Purple."},
    {"prompt": "Q: 2+2?\nA:", "chosen": " 4", "rejected": " 22", "extra_column": "kept as is"},
    {"prompt": "Missing chosen.", "rejected": "Only rejected."},
    {"prompt": "Same answers.", "chosen": "Same.", "rejected": "Same."},
    {"prompt": "", "chosen": "Answer to nothing.", "rejected": "Nothing."},
]
PASSTHROUGH_BAD = [2, 3, 4]

LONG = "word " * 40
DPO_LONG = [
    {"system": "", "prompt": "Short prompt.", "chosen": "Short.", "rejected": "Also short."},
    {"system": "", "prompt": "Long answers.", "chosen": LONG.strip(), "rejected": "short"},
    {"system": "", "prompt": LONG.strip(), "chosen": "prompt alone is too long", "rejected": "x"},
]

ORPO_ARGILLA = [
    {"system": SYS, "chosen": _conv("Name a primary color.", "Red."), "rejected": _conv("Name a primary color.", "Purple.")},
    {"chosen": _conv("What is 2 + 2?", " 4 "), "rejected": _conv("What is 2 + 2?", "22")},
    {"chosen": _conv("Multi?", "first") + _conv("and then?", "second"),
     "rejected": _conv("Multi?", "first") + _conv("and then?", "wrong")},
    {"chosen": _conv("Same answers.", "Same."), "rejected": _conv("Same answers.", "Same.")},
    {"chosen": _conv("", "Answer to nothing."), "rejected": _conv("", "Nothing.")},
    {"chosen": _conv("Odd number of turns.", "a") + [{"role": "user", "content": "dangling"}],
     "rejected": _conv("Odd number of turns.", "b") + [{"role": "user", "content": "dangling"}]},
]
ORPO_BAD = [3, 4, 5]

KTO_ARGILLA = [
    {"system": SYS, "instruction": "Name a primary color.", "completion": "Red.", "label": True},
    {"system": "", "instruction": "Name a primary color.", "completion": "Purple.", "label": False},
    {"system": SYS, "instruction": "Unicode 🐱", "completion": " 猫 ", "label": True},
    {"system": SYS, "instruction": "Missing completion.", "label": True},
    {"system": SYS, "instruction": "", "completion": "Answer to nothing.", "label": False},
    {"system": SYS, "instruction": "Empty completion.", "completion": "", "label": False},
]
KTO_BAD = [3, 4, 5]
KTO_ARGILLA_CHAT = [
    {"completion": [{"role": "system", "content": SYS}] + _conv("Name a primary color.", "Red."), "label": True},
    {"completion": _conv("Hi", "Hello") + _conv("2+2?", "5"), "label": False},
    {"completion": [{"role": "user", "content": "Only a user turn."}], "label": True},
    {"completion": _conv("", "Answer to nothing."), "label": False},
]
KTO_ARGILLA_CHAT_BAD = [2, 3]
KTO_INTEL = [{("question" if k == "instruction" else k): v for k, v in r.items()} for r in KTO_ARGILLA]
KTO_PROMPT = [{("prompt" if k == "instruction" else k): v for k, v in r.items()} for r in KTO_ARGILLA]
UD_KTO = [
    {"sys": "Be terse.", "question": "Name a primary color.", "answer": "Red.", "ok": True},
    {"sys": "", "question": "Name a primary color.", "answer": "Purple.", "ok": False},
    {"question": "No system key.", "answer": "fine", "ok": True},
    {"sys": "Be terse.", "question": "", "answer": "Answer to nothing.", "ok": False},
]
UD_KTO_BAD = [3]

BT = [
    {"system": SYS, "input": "Name a primary color.", "chosen": "Red.", "rejected": "Purple."},
    {"system": "", "input": "What is 2 + 2?", "chosen": " 4 ", "rejected": "22"},
    {"system": SYS, "input": "Same answers.", "chosen": "Same.", "rejected": "Same."},
    {"system": SYS, "input": "", "chosen": "Answer to nothing.", "rejected": "Nothing."},
    {"system": SYS, "input": "Missing chosen.", "rejected": "Only rejected."},
]
BT_BAD = [2, 3, 4]

PRM = [
    {"prompt": "What is 2 + 3 * 4?", "completions": ["3 * 4 = 12", "2 + 12 = 14", "The answer is 14."],
     "labels": [True, True, True]},
    {"prompt": "Is 9 prime?", "completions": ["9 = 3 * 3", "So 9 is prime."], "labels": [True, False]},
    {"prompt": "Unicode", "completions": ["猫 🐱", " spaced step "], "labels": [False, True]},
    {"prompt": "Fewer labels than steps.", "completions": ["a", "b", "c"], "labels": [True]},
    {"prompt": "", "completions": ["Empty prompt step."], "labels": [True]},
    {"prompt": "No steps.", "completions": [], "labels": []},
]
PRM_BAD = [3, 4, 5]

# ---------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------


def build_cases():
    cases = []

    def add(method, typ, rows, bad, desc, variant=None, ds_extra=None, tok="llama", kind="transform", **cfg):
        slug = typ if isinstance(typ, str) else "user_defined.default"
        name = f"rl_{method}_{slug}" + (f"_{variant}" if variant else "")
        ds = {"type": typ, **(ds_extra or {})}
        cases.append({"name": name, "method": method, "kind": kind, "tokenizer": tok, "dataset_config": ds,
                      "config": cfg, "rows": rows, "bad": bad, "description": desc})

    # DPO (rl: dpo)
    for fam in ("chatml", "llama3"):
        add("dpo", f"{fam}.argilla", DPO_ARGILLA, ARGILLA_BAD,
            f"{fam}.argilla does not exist for DPO in 0.19 (only KTO has it); see {fam}.default")
        add("dpo", f"{fam}.default", DPO_ARGILLA, ARGILLA_BAD,
            "argilla-style fields (instruction/chosen_response/rejected_response, optional system)")
        add("dpo", f"{fam}.argilla_chat", DPO_ARGILLA_CHAT, ARGILLA_CHAT_BAD,
            "chosen/rejected are [user, assistant] conversations; prompt = chosen[0], responses = [1]")
        add("dpo", f"{fam}.icr", DPO_ICR, ICR_BAD, "system/input/chosen/rejected")
        add("dpo", f"{fam}.intel", DPO_INTEL, ICR_BAD, "system/question/chosen/rejected")
        add("dpo", f"{fam}.prompt_pairs", DPO_PROMPT_PAIRS, ICR_BAD, "system/prompt/chosen/rejected")
        add("dpo", f"{fam}.ultra", DPO_ULTRA, ULTRA_BAD,
            "system/prompt + chosen/rejected conversations (responses = [1])")
    add("dpo", "zephyr.nectar", NECTAR, NECTAR_BAD, "prompt + ranked answers (chosen = answers sorted by rank [-1], "
        "rejected = [-2])")
    add("dpo", "chat_template.default", CT_DEFAULT, CT_BAD,
        "messages + chosen/rejected message dicts, tokenizer_default template (llama tiny)",
        chat_template="tokenizer_default")
    add("dpo", "chat_template.default", CT_DEFAULT, CT_BAD, "same rows, chat_template: chatml", variant="chatml",
        chat_template="chatml")
    add("dpo", "chat_template.default", CT_DEFAULT, CT_BAD, "same rows, chat_template: llama3", variant="llama3",
        chat_template="llama3")
    add("dpo", "chat_template.default", CT_DEFAULT, CT_BAD, "same rows, qwen3 tokenizer + chat_template: qwen3",
        variant="qwen3", tok="qwen3", chat_template="qwen3")
    add("dpo", "chat_template.default", CT_STR, [2, 3, 4], "messages/chosen/rejected as plain strings",
        variant="strings", chat_template="tokenizer_default")
    add("dpo", "chat_template.default", CT_LIST, [], "chosen/rejected as message lists (last message used)",
        variant="lists", chat_template="tokenizer_default")
    add("dpo", "chat_template.default", CT_FIELDS, [2], "field_messages: conversation, field_chosen: good, "
        "field_rejected: bad", variant="fields", chat_template="tokenizer_default",
        ds_extra={"field_messages": "conversation", "field_chosen": "good", "field_rejected": "bad"})
    add("dpo", "chat_template.default", CT_ROLES, [], "message_property_mappings {role: from, content: value} + "
        "roles {user: [human], assistant: [gpt], system: [system]}", variant="roles",
        chat_template="tokenizer_default",
        ds_extra={"message_property_mappings": {"role": "from", "content": "value"},
                  "roles": {"user": ["human"], "assistant": ["gpt"], "system": ["system"]}})
    add("dpo", "chat_template.argilla_chat", DPO_ARGILLA_CHAT, ARGILLA_CHAT_BAD,
        "chosen/rejected full conversations; prompt = chosen[:-1] rendered with the template",
        chat_template="tokenizer_default")
    ud_dpo = {"field_system": "sys", "field_prompt": "question", "field_chosen": "good", "field_rejected": "bad",
              "prompt_format": "[{system}] Q: {prompt}\nA:", "chosen_format": " {chosen}<|eot_id|>",
              "rejected_format": " {rejected}<|eot_id|>"}
    add("dpo", ud_dpo, UD_DPO, UD_BAD, "user-defined: field_* + prompt/chosen/rejected_format with {system}")
    add("dpo", {"field_prompt": "question", "field_chosen": "good", "field_rejected": "bad"}, UD_DPO, UD_BAD,
        "user-defined with formats unset (defaults {prompt}/{chosen}/{rejected})", variant="no-formats")
    add("dpo", "passthrough", PASSTHROUGH, PASSTHROUGH_BAD, "rows already prompt/chosen/rejected, returned as is")
    add("dpo", "chatml.prompt_pairs", DPO_LONG, [], "sequence_len 48, excess_length_strategy default (drop)",
        variant="seq48-drop", sequence_len=48)
    add("dpo", "chatml.prompt_pairs", DPO_LONG, [], "sequence_len 48, excess_length_strategy: truncate",
        variant="seq48-truncate", sequence_len=48, excess_length_strategy="truncate")

    # ORPO (rl: orpo) strings, plus the ORPO tokenizing strategy of the SFT path
    add("orpo", "chat_template.argilla", ORPO_ARGILLA, ORPO_BAD,
        "system? + chosen/rejected conversations (even number of messages), tokenizer_default template",
        chat_template="tokenizer_default")
    add("orpo", "orpo.chat_template", ORPO_ARGILLA, ORPO_BAD,
        "type: orpo.chat_template in the SFT data path (no rl:): Axolotl's ORPOTokenizingStrategy ids/labels",
        variant="tokenized", kind="tokenize", chat_template="tokenizer_default",
        output_keys=("input_ids", "labels", "attention_mask", "rejected_ids", "rejected_labels",
                     "rejected_attention_mask", "prompt_attention_mask"))

    # KTO (rl: kto); Axolotl's config validation requires remove_unused_columns: false for KTO
    KTO = {"remove_unused_columns": False}
    for fam in ("chatml", "llama3"):
        add("kto", f"{fam}.argilla", KTO_ARGILLA, KTO_BAD, "system/instruction/completion/label", **KTO)
        add("kto", f"{fam}.argilla_chat", KTO_ARGILLA_CHAT, KTO_ARGILLA_CHAT_BAD,
            "completion = full conversation (history -> prompt, last message -> completion), label", **KTO)
        add("kto", f"{fam}.intel", KTO_INTEL, KTO_BAD, "system/question/completion/label", **KTO)
        add("kto", f"{fam}.prompt_pairs", KTO_PROMPT, KTO_BAD, "system/prompt/completion/label", **KTO)
        add("kto", f"{fam}.ultra", KTO_PROMPT, KTO_BAD, "system/prompt/completion/label", **KTO)
    ud_kto = {"field_system": "sys", "field_prompt": "question", "field_completion": "answer", "field_label": "ok",
              "prompt_format": "[{system}] Q: {prompt}\nA:", "completion_format": " {completion}<|eot_id|>"}
    add("kto", ud_kto, UD_KTO, UD_KTO_BAD, "user-defined with {system} in prompt_format (rows without a system value "
        "fall back to prompt_format.format(prompt=...))", **KTO)
    add("kto", "chatml.argilla", KTO_ARGILLA[:1], [], "without remove_unused_columns: false (config validation error)",
        variant="remove-unused-columns-unset")

    # reward model / process reward model (Axolotl tokenizes)
    add("rm", "bradley_terry.chat_template", BT, BT_BAD,
        "reward_model: true; system/input/chosen/rejected, tokenizer_default template", kind="tokenize",
        reward_model=True, chat_template="tokenizer_default",
        output_keys=("chosen_ids", "attention_mask_chosen", "labels_chosen", "rejected_ids",
                     "attention_mask_rejected", "labels_rejected"))
    for variant, extra in ((None, {}), ("sep-double-newline", {"step_separator": "\n\n"}),
                           ("last-step-only", {"train_on_last_step_only": True}),
                           ("max-completion-8", {"max_completion_length": 8})):
        add("prm", "stepwise_supervised", PRM, PRM_BAD,
            "process_reward_model: true; prompt/completions/labels" + (f", {extra}" if extra else ""),
            variant=variant, ds_extra=extra, kind="tokenize", process_reward_model=True)
    return cases


# ---------------------------------------------------------------------------
# running axolotl
# ---------------------------------------------------------------------------


def jsonable(v):
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if hasattr(v, "value") and not isinstance(v, (str, int, float, bool)):
        return v.value
    return v


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def rl_cfg(case, data_file, tag):
    from axolotl.cli.config import load_cfg
    from axolotl.utils.dict import DictDefault

    ds_entry = {"path": str(data_file), "ds_type": "json", "split": "train", **copy.deepcopy(case["dataset_config"])}
    raw = {
        "base_model": mg.TOK_DIRS[case["tokenizer"]],
        "rl": case["method"],
        "sequence_len": 2048,
        **({"special_tokens": dict(mg.LLAMA_PAD)} if case["tokenizer"] == "llama" else {}),
        **copy.deepcopy(case["config"]),
        "datasets": [ds_entry],
        "shuffle_merged_datasets": False,
        "micro_batch_size": 1,
        "gradient_accumulation_steps": 1,
        "num_epochs": 1,
        "learning_rate": 1e-4,
        "dataset_num_proc": 1,
        "output_dir": str(WORK / "out" / case["name"] / tag),
        "dataset_prepared_path": str(WORK / "prepared" / case["name"] / tag),
    }
    return load_cfg(DictDefault(raw))


def transform_for(cfg, tokenizer):
    """The transform function + map kwargs exactly as axolotl.utils.data.rl._load_split picks them."""
    import inspect
    from functools import partial

    from axolotl.utils.data.rl import load_dpo, load_kto, load_orpo
    from axolotl.utils.dict import DictDefault
    from axolotl.utils.schemas.enums import RLType

    _type = cfg.datasets[0]["type"]
    if isinstance(_type, DictDefault):
        _type = "user_defined.default"
    if cfg.rl is RLType.ORPO:
        fn = load_orpo(_type, cfg, dataset_idx=0)
    elif cfg.rl is RLType.KTO:
        fn = load_kto(_type, cfg, dataset_idx=0)
    else:
        fn = load_dpo(_type, cfg, dataset_idx=0)
    if fn is None:
        return None, {}
    map_kwargs = {}
    if isinstance(fn, tuple):
        fn, map_kwargs = fn
    if "tokenizer" in inspect.signature(fn).parameters:
        fn = partial(fn, tokenizer=tokenizer)
    return fn, map_kwargs


def run_pipeline(case, rows, tag):
    """prepare_preference_datasets on ``rows``; returns {"rows": [...]} or {"error": ...}."""
    import datasets
    from axolotl.loaders import load_tokenizer
    from axolotl.utils.data.rl import prepare_preference_datasets

    datasets.disable_caching()
    data_file = WORK / f"{case['name']}-{tag}.jsonl"
    write_jsonl(data_file, rows)
    try:
        cfg = rl_cfg(case, data_file, tag)
        tokenizer = load_tokenizer(cfg)
        train, _ = prepare_preference_datasets(cfg, tokenizer)
        return {"rows": [jsonable(dict(r)) for r in train]}
    except Exception as exc:  # noqa: BLE001
        return {"error": mg.err_str(exc), "error_traceback_tail": traceback.format_exc().strip().splitlines()[-4:]}


def run_transform_case(case):
    import datasets
    from axolotl.loaders import load_tokenizer
    from axolotl.utils.data.rl import _drop_long_sequences, _truncate_long_sequences_rl
    from axolotl.utils.data.shared import load_dataset_with_config

    datasets.disable_caching()
    rows = case["rows"]
    result = {
        "axolotl_version": mg.versions()["axolotl"],
        "versions": mg.versions(),
        "case": case["name"],
        "description": case["description"],
        "method": case["method"],
        "tokenizer": case["tokenizer"],
        "tokenizer_path": mg.TOK_DIRS[case["tokenizer"]],
        "tokenizer_sha256": {p.name: mg.sha256(p) for p in sorted(Path(mg.TOK_DIRS[case["tokenizer"]]).iterdir())
                             if p.is_file()},
        "dataset_config": case["dataset_config"],
        "config": {k: v for k, v in case["config"].items()},
        "config_fixed": {"rl": case["method"], "shuffle_merged_datasets": False, "sequence_len":
                         case["config"].get("sequence_len", 2048)},
        "bad_rows": case["bad"],
        "error": None,
    }
    data_file = WORK / f"{case['name']}-all.jsonl"
    write_jsonl(data_file, rows)
    try:
        cfg = rl_cfg(case, data_file, "probe")
    except Exception as exc:  # noqa: BLE001
        result["error"] = f"[config] {mg.err_str(exc)}"
        result["rows"] = [{"index": i, "row": r, "bad": i in case["bad"]} for i, r in enumerate(rows)]
        return result
    vds = mg.to_plain(cfg.datasets[0])
    for k in ("path", "ds_type", "trust_remote_code", "split"):
        vds.pop(k, None)
    result["dataset_config_validated"] = vds
    result["config_validated"] = {k: mg.to_plain(cfg.get(k)) for k in
                                  ("rl", "sequence_len", "chat_template", "excess_length_strategy", "special_tokens")
                                  if cfg.get(k) is not None}
    tokenizer = load_tokenizer(cfg)
    result["special_token_ids"] = {
        "bos": [tokenizer.bos_token, tokenizer.bos_token_id],
        "eos": [tokenizer.eos_token, tokenizer.eos_token_id],
        "pad": [tokenizer.pad_token, tokenizer.pad_token_id],
    }
    fn, map_kwargs = transform_for(cfg, tokenizer)
    if fn is None:
        result["error"] = f"[transform] no transform function for type {cfg.datasets[0]['type']!r} (the loader " \
                          "logged the import/getattr failure and returned None)"
    else:
        result["transform"] = f"{fn.func.__module__}.{fn.func.__qualname__}" if hasattr(fn, "func") else \
            f"{fn.__module__}.{fn.__qualname__}"
        result["map_kwargs"] = map_kwargs

    result["pipeline_all"] = run_pipeline(case, rows, "all")
    good = [r for i, r in enumerate(rows) if i not in case["bad"]]
    result["pipeline"] = run_pipeline(case, good, "good") if case["bad"] else result["pipeline_all"]
    if fn is None:
        if result["pipeline_all"].get("error"):
            result["error"] = f"[pipeline] {result['pipeline_all']['error']}"
        result["rows"] = [{"index": i, "row": r, "bad": i in case["bad"]} for i, r in enumerate(rows)]
        return result

    strategy = (cfg.excess_length_strategy or "drop").lower()

    def per_row(arrow_ds):
        out = []
        for i in range(len(arrow_ds)):
            sample = dict(arrow_ds[i])
            columns = list(sample)
            entry = {}
            try:
                res = fn(copy.deepcopy(sample))
            except Exception as exc:  # noqa: BLE001
                entry["error"] = mg.err_str(exc)
                out.append(entry)
                continue
            entry["output"] = jsonable(res)
            # the row datasets.map stores: original columns updated by the returned dict, minus remove_columns
            remove = map_kwargs.get("remove_columns", [])
            if remove == "__all__":
                remove = columns
            stored = {k: v for k, v in sample.items() if k not in remove}
            stored.update(res)
            try:
                if strategy == "truncate":
                    stored = _truncate_long_sequences_rl(stored, cfg.rl, tokenizer, cfg.sequence_len)
                    entry["after_truncate"] = {k: stored[k] for k in ("prompt", "chosen", "rejected", "completion")
                                               if k in stored}
                entry["kept"] = bool(_drop_long_sequences(stored, cfg.rl, tokenizer, cfg.sequence_len))
            except Exception as exc:  # noqa: BLE001
                entry["filter_error"] = mg.err_str(exc)
            entry["_stored"] = jsonable(stored)
            out.append(entry)
        return out

    all_ds = _as_dataset(load_dataset_with_config(cfg.datasets[0], cfg.hf_use_auth_token, streaming=False))
    per = per_row(all_ds)
    result["rows"] = []
    for i, (r, e) in enumerate(zip(rows, per, strict=True)):
        e = {k: v for k, v in e.items() if k != "_stored"}
        result["rows"].append({"index": i, "row": r, "bad": i in case["bad"], **e})

    # the good rows, run alone, must reproduce the pipeline on the good rows
    if "rows" in result["pipeline"]:
        good_file = WORK / f"{case['name']}-good.jsonl"
        write_jsonl(good_file, good)
        good_cfg = rl_cfg(case, good_file, "check")
        good_ds = _as_dataset(load_dataset_with_config(good_cfg.datasets[0], good_cfg.hf_use_auth_token,
                                                       streaming=False))
        expect = [e["_stored"] for e in per_row(good_ds) if e.get("kept")]
        got = result["pipeline"]["rows"]
        if expect != got:
            raise AssertionError(f"{case['name']}: per-row results differ from the pipeline output\n{expect}\n{got}")
    if result["pipeline_all"].get("error"):
        result["error"] = f"[pipeline_all] {result['pipeline_all']['error']}"
    return result


def _as_dataset(ds):
    if hasattr(ds, "keys") and "train" in ds:
        return ds["train"]
    return ds


def run_tokenize_case(case):
    """Tokenizing strategies go through make_golden.run_case (the SFT data path)."""
    kind = f"rl::{case['name']}"
    mg.HAND_KINDS[kind] = case["rows"]
    cfg = {"sequence_len": 2048, **({"special_tokens": dict(mg.LLAMA_PAD)} if case["tokenizer"] == "llama" else {}),
           **case["config"]}
    cfg.pop("output_keys", None)
    sft_case = {"name": case["name"], "tokenizer": case["tokenizer"], "data": kind,
                "dataset_config": case["dataset_config"], "config": cfg, "description": case["description"],
                "group": "rl"}
    if "output_keys" in case["config"]:
        sft_case["output_keys"] = case["config"]["output_keys"]
    res = mg.run_case(sft_case)
    res["method"] = case["method"]
    res["bad_rows"] = case["bad"]
    for r in res.get("rows", []):
        r["bad"] = r["index"] in case["bad"]
    return res


# ---------------------------------------------------------------------------
# README section
# ---------------------------------------------------------------------------

RL_NOTES = """
Preference-data behaviours (observed in these fixtures, axolotl 0.19.0):

- The `chatml.*` / `llama3.*` / `zephyr.nectar` / `user_defined.default` transforms are plain f-strings:
  no BOS, no stripping; the prompt ends with the assistant header (`<|im_start|>assistant\\n`,
  `<|start_header_id|>assistant<|end_header_id|>\\n\\n`) and chosen/rejected get the turn terminator
  appended (`<|im_end|>`, `<|eot_id|>`); a system line is added only when `system` is truthy.
  They mutate and return the row, so every original column survives (the `chat_template.*` transforms
  return a new dict and remove `field_messages` / `field_chosen` / `field_rejected`).
- There is no DPO `chatml.argilla` / `llama3.argilla` in 0.19 (KTO has them); `chatml.default` handles
  argilla fields (prompt key: first of prompt/input/question/instruction present; chosen/rejected or
  chosen_response/rejected_response). An unknown type makes the loader log a warning and return
  None, then `_load_split` raises `ValueError: Failed to load dataset transform function ...`.
- `chat_template.default`: prompt = `apply_chat_template(messages, add_generation_prompt=True)`
  (BOS included when the template emits it); chosen/rejected = the template rendered for
  `[dummy user, response]`, cut at the FIRST occurrence of the response content and `rstrip()`ed
  (so a response whose text also occurs in the rendered header, or trailing whitespace/newlines after
  the terminator, changes the result: see the `"user"` row). String `messages` become one user turn;
  list chosen/rejected use their last message.
- Length filter (`excess_length_strategy`, default drop) counts `prompt` and each response with
  `add_special_tokens=False` and keeps the row when prompt+chosen and prompt+rejected both fit
  `sequence_len`. It raises `ValueError: Prompt, chosen and rejected keys are required ...` for an
  empty/None prompt, chosen or rejected (KTO: prompt/completion), which aborts the whole dataset.
  Rows with chosen == rejected are kept unchanged (no dedup, no warning). With `truncate`, responses
  are cut to `sequence_len - len(prompt)` tokens and decoded back (the terminator is lost); rows whose
  prompt alone is too long are then dropped.
- Missing values: Arrow gives every row every column (None when absent). The f-string transforms turn
  a missing chosen/completion into the text `None<|im_end|>` and keep the row; the transforms that
  index into it (`*.argilla_chat`, `*.ultra`, `chat_template.*`) raise TypeError, and the whole
  dataset fails. An empty user prompt is not caught by the f-string transforms (the wrapped prompt is
  not empty); `passthrough` and `user_defined` without formats hit the filter's ValueError.
- `chat_template.default` with a template that trims content (the llama tiny template `| trim`s):
  `find(" 4 ")` returns -1 and chosen becomes the LAST character of the render (`">"`).
- With `rl:` set, a dataset entry validates as `DPODataset`/`KTODataset`: `roles` and
  `message_property_mappings` are silently dropped, so `chat_template.default` with ShareGPT keys fails
  (`KeyError: 'role'`, `rl_dpo_chat_template.default_roles`). `field_messages`/`field_chosen`/
  `field_rejected` survive.
- KTO needs `remove_unused_columns: false` (config ValidationError otherwise). `user_defined` KTO with
  `{system}` in `prompt_format` raises KeyError for rows without a system value (it falls back to
  `prompt_format.format(prompt=...)`); DPO `user_defined` passes `system=""` instead.
- `zephyr.nectar`: chosen = `sorted(answers, key=rank)[-1]`, the answer with the LARGEST rank number
  (in Nectar rank 1 is best, so this is the worst answer), rejected = `[-2]`; responses get no
  terminator; returns only prompt/chosen/rejected; fewer than 2 answers -> IndexError.
- ORPO (`rl: orpo`, `chat_template.argilla`): prompt = all turns but the last assistant
  (`add_generation_prompt=True`), chosen/rejected = full render minus the prompt string; an odd
  number of messages asserts. Axolotl's own `ORPOTokenizingStrategy` (`type: orpo.chat_template`)
  only uses the first user/assistant pair of a multi-turn row; labels = assistant content + eos.
- `bradley_terry.chat_template`: returns chosen_ids/rejected_ids (+ attention masks, labels_chosen 1.0,
  labels_rejected 0.0), no per-token labels; an empty `system` still renders an empty system turn
  (the chat-template strategy adds `field_system` when the first message is not a system turn); a
  missing chosen is a KeyError (None values are removed first).
- `stepwise_supervised`: BOS + prompt + each step followed by `step_separator`, no separator between
  prompt and first step; each step's label sits on its last token (the separator), all else -100;
  extra steps without a label are unlabelled (zip). `step_separator`, `train_on_last_step_only` and
  `max_completion_length` are DROPPED by validation (the entry validates as SFTDataset because
  StepwiseSupervisedDataset has no `type` field), so the `_sep-*`/`_last-step-only`/`_max-completion-*`
  fixtures equal the default one.
"""


def write_rl_readme(results):
    lines = ["<!-- rl:begin -->", "## Preference / RL fixtures (`make_golden_rl.py`)", "",
             "String transforms: `rows[i]` = `row`, `bad`, and `output` (what the transform returned), `kept`",
             "(length filter), or `error` / `filter_error`; `pipeline.rows` = `prepare_preference_datasets` on the",
             "good rows, `pipeline_all` = on all rows (rows or `error`). Tokenized cases (`rm`, `prm`,",
             "`orpo.chat_template_tokenized`) use the SFT layout with the strategy's own output columns.", "",
             "| file | method | rows (bad) | description | error |", "|---|---|---|---|---|"]
    for r in results:
        e = (r.get("error") or "").replace("|", "\\|").replace("\n", " ")
        if len(e) > 160:
            e = e[:157] + "..."
        nbad = len(r.get("bad_rows", []))
        lines.append(f"| `{r['case']}.json` | {r['method']} | {len(r.get('rows', []))} ({nbad}) | "
                     f"{r['description'].replace('|', chr(92) + '|')} | {e} |")
    lines += [RL_NOTES.rstrip(), "<!-- rl:end -->", ""]
    readme = (HERE / "README.md").read_text(encoding="utf-8")
    block = "\n".join(lines)
    if "<!-- rl:begin -->" in readme:
        a = readme.index("<!-- rl:begin -->")
        b = readme.index("<!-- rl:end -->") + len("<!-- rl:end -->\n")
        readme = readme[:a] + block + readme[b:]
    else:
        readme = readme.rstrip("\n") + "\n\n" + block
    (HERE / "README.md").write_text(readme, encoding="utf-8")


def main(argv):
    flt = argv[1:]
    cases = build_cases()
    for case in cases:
        if flt and not any(f in case["name"] for f in flt):
            continue
        print(f"=== {case['name']}", flush=True)
        res = run_tokenize_case(case) if case["kind"] == "tokenize" else run_transform_case(case)
        mg.dump(res, HERE / f"{case['name']}.json")
        print(f"    error={res['error']!r} rows={len(res.get('rows', []))}", flush=True)
    results = [json.loads((HERE / f"{c['name']}.json").read_text(encoding="utf-8"))
               for c in cases if (HERE / f"{c['name']}.json").exists()]
    write_rl_readme(results)


if __name__ == "__main__":
    main(sys.argv)
