"""Generate Axolotl "golden fixtures" for ftkit's tokenization/labelling tests.

This script runs REAL Axolotl code and writes one JSON file per case next to
itself (``tests/data/golden/*.json``) plus ``README.md``.  It imports
``axolotl`` and is never run (or imported) by ftkit's own test-suite; Axolotl is
not a dependency of ftkit.

Recreating the environment (CPU only, offline from the HF Hub)
------------------------------------------------------------
Axolotl 0.19.0 requires ``torch>=2.11,<=2.13.0``; its full dependency set
(bitsandbytes, xformers, triton, flash-linear-attention, ...) does not install
on a CPU box, so axolotl is installed with ``--no-deps`` and only what the
config/tokenizer/dataset code paths import is added::

    python3.11 -m venv /tmp/axo-venv
    /tmp/axo-venv/bin/pip install torch==2.13.0            # CPU wheel
    /tmp/axo-venv/bin/pip install --no-deps axolotl==0.19.0
    /tmp/axo-venv/bin/pip install transformers==5.16.1 tokenizers==0.23.1 \
        datasets==4.8.4 pydantic==2.12.5 huggingface_hub==1.17.0 PyYAML==6.0.3 \
        packaging==26.0 typing-extensions==4.15.0 accelerate==1.13.0 \
        peft==0.20.0 "numpy>=2.1,<3" addict fire colorama jinja2 sentencepiece \
        einops posthog==6.7.11 pillow "numba>=0.63.1,<1.0" trl==1.9.0

(pip will complain about the unmet optional/CUDA requirements of axolotl;
that is expected and harmless for these code paths.)

Tokenizers are expected as Hugging Face folders at ``/tmp/golden_tok/llama``
and ``/tmp/golden_tok/qwen3`` (their sha256 sums are recorded in every
fixture); samples are read from ``ftkit/assets/samples`` of this repository.

Run::

    /tmp/axo-venv/bin/python tests/data/golden/make_golden.py            # all cases
    /tmp/axo-venv/bin/python tests/data/golden/make_golden.py chat_llama  # name filter

How Axolotl is driven
---------------------
Exactly as ``axolotl preprocess`` does it, per case:

1. the YAML-equivalent config dict is passed to ``axolotl.cli.config.load_cfg``
   (pydantic validation + ``normalize_config`` + ``normalize_cfg_datasets``);
2. ``axolotl.loaders.load_tokenizer(cfg)`` (applies ``special_tokens`` etc.);
3. ``axolotl.utils.data.sft._load_and_process_single_dataset`` loads the
   rows from a temporary JSONL file with ``datasets`` and calls
   ``get_dataset_wrapper`` -> ``axolotl.prompt_strategies.load(...)`` (or the
   built-in ``alpaca:<style>`` handler) -> ``TokenizedPromptDataset`` (a
   ``datasets.map`` of ``strategy.tokenize_prompt``).

The output of step 3 is taken BEFORE ``handle_long_seq_in_dataset`` (length
filtering / truncation) and before any packing.  To attribute output
sequences to input rows (completion can split a row into several chunks), the
same strategy object is also called on each single row (``ds[i:i+1]`` for
batched strategies, ``ds[i]`` otherwise, i.e. the row as it comes out of the
Arrow dataset, with the schema-merge ``None`` fields that implies); the script
asserts that the concatenation of those per-row results equals the pipeline
output, token for token.  Errors are recorded instead of ids: config/strategy
errors in the top-level ``"error"``, per-row errors in the row's ``"error"``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path

os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
SAMPLES = REPO / "ftkit" / "assets" / "samples"
TOK_DIRS = {"llama": "/tmp/golden_tok/llama", "qwen3": "/tmp/golden_tok/qwen3"}
N_SAMPLE_ROWS = 12
WORK = Path(tempfile.mkdtemp(prefix="axo-golden-"))
os.environ.setdefault("HF_DATASETS_CACHE", str(WORK / "hf-datasets-cache"))

# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------


def sample_rows(fname: str, n: int = N_SAMPLE_ROWS):
    out = []
    with open(SAMPLES / fname, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= n:
                break
            out.append({"source": f"ftkit/assets/samples/{fname}", "index": i, "row": json.loads(line)})
    return out


def handcrafted(rows, tag="handcrafted"):
    return [{"source": tag, "index": i, "row": r} for i, r in enumerate(rows)]


HAND_CHAT = [
    # 0: tool turn, with an assistant turn before (tool call) and after it
    {"messages": [
        {"role": "system", "content": "You can call tools."},
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": "Let me check the weather.",
         "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "content": "{\"temp_c\": 21, \"sky\": \"clear\"}"},
        {"role": "assistant", "content": "It is 21 degrees and clear in Paris."},
    ]},
    # 1: leading/trailing whitespace in assistant (and user) content
    {"messages": [
        {"role": "user", "content": "  Hello there  "},
        {"role": "assistant", "content": "\n  Sure, here it is.  \n"},
        {"role": "user", "content": "Again?"},
        {"role": "assistant", "content": " Yes. "},
    ]},
    # 2: conversation ending in a user turn
    {"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name a color."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Thanks! And another?"},
    ]},
    # 3: system + one user + one assistant
    {"messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
    ]},
    # 4: system-only conversation
    {"messages": [
        {"role": "system", "content": "You are a system prompt with nothing after it."},
    ]},
    # 5: empty assistant content (then a normal exchange)
    {"messages": [
        {"role": "user", "content": "Say nothing."},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "Now say ok."},
        {"role": "assistant", "content": "ok"},
    ]},
    # 6: per-message training flags (message_field_training: training)
    {"messages": [
        {"role": "system", "content": "You are a math helper."},
        {"role": "user", "content": "What is 2 + 2?", "training": False},
        {"role": "assistant", "content": "2 + 2 is 5.", "training": False},
        {"role": "user", "content": "Are you sure? Check again.", "training": True},
        {"role": "assistant", "content": "Sorry, 2 + 2 is 4.", "training": True},
    ]},
    # 7: unicode / emoji / code block with inner newlines
    {"messages": [
        {"role": "user", "content": "Translate 'cat' to Japanese 🐱 and print it in Python."},
        {"role": "assistant", "content": "猫 (neko) 🐈 — café naïve.\n```python\nprint('猫')\n```"},
    ]},
]

HAND_ALPACA = [
    {"instruction": "Repeat the word with spaces.", "input": "", "output": " padded output \n"},
    {"instruction": "Translate to Japanese 🐱", "input": "cat", "output": "猫 — ねこ"},
]

LONG_TEXT = " ".join(
    json.loads(line)["text"] for line in open(SAMPLES / "text.jsonl", encoding="utf-8").read().splitlines()[:6]
)
HAND_TEXT = [
    {"text": LONG_TEXT},  # longer than 64 tokens -> split by completion strategy
    {"text": "  Leading and trailing spaces.  \n"},
    {"text": "Unicode: 猫 🐈 café"},
]

HAND_IO = [
    {"segments": [
        {"label": False, "text": "<|begin_of_text|>Question: what is 2+2?\n"},
        {"label": True, "text": "Answer: 4<|eot_id|>"},
    ]},
    {"segments": [
        {"label": False, "text": "User: hi\n"},
        {"label": True, "text": "Bot: hello\n"},
        {"label": False, "text": "User: bye\n"},
        {"label": True, "text": "Bot: goodbye"},
    ]},
    {"segments": [
        {"label": True, "text": "Everything trained, no special tokens."},
    ]},
    {"segments": [
        {"label": False, "text": "Split mid"},
        {"label": True, "text": "word and  double  spaces "},
        {"label": False, "text": " 🐱 unicode"},
    ]},
    {"segments": [
        {"label": False, "text": "prefix "},
        {"label": True, "text": ""},
        {"label": True, "text": "after empty segment"},
    ]},
]


def data_for(kind):
    if kind == "chat":
        return sample_rows("chat.jsonl") + handcrafted(HAND_CHAT)
    if kind == "sharegpt":
        return sample_rows("chat_sharegpt.jsonl")
    if kind == "alpaca":
        return sample_rows("alpaca.jsonl") + handcrafted(HAND_ALPACA)
    if kind == "text":
        return sample_rows("text.jsonl") + handcrafted(HAND_TEXT)
    if kind == "io":
        return handcrafted(HAND_IO)
    raise ValueError(kind)


# ---------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------

LLAMA_PAD = {"pad_token": "<|finetune_right_pad_id|>"}


def base_config(tok, chat=False, **extra):
    cfg = {"sequence_len": 2048}
    if tok == "llama":
        cfg["special_tokens"] = dict(LLAMA_PAD)
    if chat:
        cfg["chat_template"] = "tokenizer_default"
    cfg.update(extra)
    return cfg


def build_cases():
    cases = []

    def add(name, tok, kind, ds, desc, **cfg_extra):
        chat = ds.get("type") == "chat_template"
        cases.append({
            "name": name, "tokenizer": tok, "data": kind, "dataset_config": ds,
            "config": base_config(tok, chat=chat, **cfg_extra), "description": desc,
        })

    CT = {"type": "chat_template"}
    for tok in ("llama", "qwen3"):
        eos = "<|eot_id|>" if tok == "llama" else "<|im_end|>"
        p = f"chat_{tok}"
        add(f"{p}_default", tok, "chat", dict(CT),
            "chat_template/tokenizer_default with loader defaults (roles_to_train [assistant], train_on_eos turn)")
        for mode in ("all", "turn", "last", "none"):
            add(f"{p}_eos-{mode}", tok, "chat", {**CT, "train_on_eos": mode}, f"train_on_eos: {mode}")
        add(f"{p}_roles-user-assistant", tok, "chat", {**CT, "roles_to_train": ["user", "assistant"]},
            "roles_to_train: [user, assistant]")
        add(f"{p}_train-on-inputs", tok, "chat", dict(CT), "top-level train_on_inputs: true",
            train_on_inputs=True)
        add(f"{p}_drop-system", tok, "chat", {**CT, "drop_system_message": True}, "drop_system_message: true")
        add(f"{p}_sharegpt", tok, "sharegpt",
            {**CT, "field_messages": "conversations", "message_property_mappings": {"role": "from", "content": "value"}},
            "ShareGPT keys (from/value, roles system/human/gpt) via field_messages + message_property_mappings")
        add(f"{p}_message-field-training", tok, "chat", {**CT, "message_field_training": "training"},
            "message_field_training: training (per-message bool overrides roles_to_train)")
        # train_on_eot / eot_tokens (present in this axolotl version)
        add(f"{p}_eot-tokens_eot-all_eos-all", tok, "chat", {**CT, "train_on_eos": "all", "train_on_eot": "all"},
            f"top-level eot_tokens: [{eos}] (== eos), train_on_eot: all, train_on_eos: all", eot_tokens=[eos])
        add(f"{p}_eot-tokens_default", tok, "chat", dict(CT),
            f"top-level eot_tokens: [{eos}] (== eos); train_on_eot unset -> follows train_on_eos (turn)",
            eot_tokens=[eos])
        add(f"{p}_eot-all_eos-default", tok, "chat", {**CT, "train_on_eot": "all"},
            "train_on_eot: all, train_on_eos left at default (turn), no eot_tokens (defaults to [eos]); "
            "the eos==eot conflict check is skipped when eot_tokens == [eos], both passes label the same token")
        add(f"{p}_eot-tokens_eot-last_eos-none", tok, "chat", {**CT, "train_on_eot": "last", "train_on_eos": "none"},
            f"eot_tokens: [{eos}] (== eos), train_on_eot: last, train_on_eos: none (no conflict error raised)",
            eot_tokens=[eos])
    # eot token distinct from eos: real Llama-3 *base* tokenizers have eos <|end_of_text|> while the
    # chat template ends turns with <|eot_id|>.
    add("chat_llama_eos-end-of-text_eot-tokens_eot-turn", "llama", "chat",
        {"type": "chat_template", "train_on_eot": "turn"},
        "special_tokens.eos_token: <|end_of_text|> (not in template), eot_tokens: [<|eot_id|>], train_on_eot: turn, "
        "train_on_eos default turn",
        special_tokens={**LLAMA_PAD, "eos_token": "<|end_of_text|>"}, eot_tokens=["<|eot_id|>"])
    add("chat_llama_eos-end-of-text_eot-tokens_eot-last", "llama", "chat",
        {"type": "chat_template", "train_on_eot": "last", "train_on_eos": "all"},
        "special_tokens.eos_token: <|end_of_text|>, eot_tokens: [<|eot_id|>], train_on_eot: last, train_on_eos: all",
        special_tokens={**LLAMA_PAD, "eos_token": "<|end_of_text|>"}, eot_tokens=["<|eot_id|>"])
    add("chat_llama_eot-tokens-multi_conflict", "llama", "chat",
        {"type": "chat_template", "train_on_eot": "all"},
        "eot_tokens: [<|eot_id|>, <|end_of_text|>] (contains eos but is not exactly [eos]), train_on_eot: all, "
        "train_on_eos default turn -> Axolotl's eos/eot conflict ValueError",
        eot_tokens=["<|eot_id|>", "<|end_of_text|>"])
    add("chat_llama_eos-end-of-text_no-eot-tokens", "llama", "chat",
        {"type": "chat_template"},
        "special_tokens.eos_token: <|end_of_text|> and NO eot_tokens: turn terminator <|eot_id|> is never trained",
        special_tokens={**LLAMA_PAD, "eos_token": "<|end_of_text|>"})

    # alpaca
    add("alpaca_llama_default", "llama", "alpaca", {"type": "alpaca"}, "type: alpaca (instruct style)")
    add("alpaca_llama_chat", "llama", "alpaca", {"type": "alpaca:chat"}, "type: alpaca:chat")
    add("alpaca_llama_chatml", "llama", "alpaca", {"type": "alpaca:chatml"}, "type: alpaca:chatml")
    add("alpaca_llama_phi", "llama", "alpaca", {"type": "alpaca:phi"}, "type: alpaca:phi")
    add("alpaca_llama_train-on-inputs", "llama", "alpaca", {"type": "alpaca"}, "type: alpaca, train_on_inputs: true",
        train_on_inputs=True)
    add("alpaca_llama_alpaca-chat-module", "llama", "alpaca", {"type": "alpaca_chat"},
        "type: alpaca_chat (module axolotl.prompt_strategies.alpaca_chat; chat style)")
    add("alpaca_llama_alpaca-instruct-module", "llama", "alpaca", {"type": "alpaca_instruct"},
        "type: alpaca_instruct (module axolotl.prompt_strategies.alpaca_instruct; instruct style)")
    add("alpaca_qwen3_default", "qwen3", "alpaca", {"type": "alpaca"}, "type: alpaca (instruct style)")
    add("alpaca_qwen3_chatml", "qwen3", "alpaca", {"type": "alpaca:chatml"}, "type: alpaca:chatml")

    # completion
    add("completion_llama", "llama", "text", {"type": "completion", "field": "text"}, "type: completion, field: text")
    add("completion_llama_seq64", "llama", "text", {"type": "completion", "field": "text"},
        "type: completion, field: text, sequence_len 64 (long rows are split into 64-token chunks)",
        sequence_len=64)
    add("completion_qwen3", "qwen3", "text", {"type": "completion", "field": "text"}, "type: completion, field: text")

    # input_output
    add("input_output_llama", "llama", "io", {"type": "input_output"}, "type: input_output (segments label/text)")
    add("input_output_llama_train-on-inputs", "llama", "io", {"type": "input_output"},
        "type: input_output, train_on_inputs: true", train_on_inputs=True)
    add("input_output_qwen3", "qwen3", "io", {"type": "input_output"}, "type: input_output")
    return cases


# ---------------------------------------------------------------------------
# running axolotl
# ---------------------------------------------------------------------------


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def versions():
    import importlib.metadata as md

    out = {}
    for pkg in ("axolotl", "transformers", "tokenizers", "datasets", "jinja2", "pydantic", "torch"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def to_plain(obj):
    """DictDefault / pydantic / enums -> plain JSON-able python."""
    from pydantic import BaseModel

    if isinstance(obj, BaseModel):
        obj = obj.model_dump(exclude_none=True)
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if hasattr(obj, "value") and not isinstance(obj, (str, int, float, bool)):
        return obj.value
    return obj


def err_str(exc):
    return f"{type(exc).__name__}: {exc}"


def listify(x):
    return [int(v) for v in x]


def run_case(case):
    import datasets
    from axolotl.cli.config import load_cfg
    from axolotl.loaders import load_tokenizer
    from axolotl.utils.data.shared import load_dataset_with_config
    from axolotl.utils.data.sft import _load_and_process_single_dataset
    from axolotl.utils.dict import DictDefault

    datasets.disable_caching()
    tok_dir = TOK_DIRS[case["tokenizer"]]
    items = data_for(case["data"])
    data_file = WORK / f"{case['name']}.jsonl"
    with open(data_file, "w", encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps(it["row"], ensure_ascii=False) + "\n")

    ds_entry = {"path": str(data_file), "ds_type": "json", **copy.deepcopy(case["dataset_config"])}
    raw_cfg = {
        "base_model": tok_dir,
        **copy.deepcopy(case["config"]),
        "datasets": [ds_entry],
        "micro_batch_size": 1,
        "gradient_accumulation_steps": 1,
        "num_epochs": 1,
        "learning_rate": 1e-4,
        "dataset_num_proc": 1,
        "output_dir": str(WORK / "out" / case["name"]),
        "dataset_prepared_path": str(WORK / "prepared" / case["name"]),
    }

    result = {
        "axolotl_version": versions()["axolotl"],
        "versions": versions(),
        "case": case["name"],
        "description": case["description"],
        "tokenizer": case["tokenizer"],
        "tokenizer_path": tok_dir,
        "tokenizer_sha256": {
            p.name: sha256(p) for p in sorted(Path(tok_dir).iterdir()) if p.is_file()
        },
        "dataset_config": case["dataset_config"],
        "config": case["config"],
        "error": None,
    }

    def fail(stage, exc):
        result["error"] = f"[{stage}] {err_str(exc)}"
        result["error_traceback_tail"] = traceback.format_exc().strip().splitlines()[-6:]
        result["rows"] = [{"source": it["source"], "index": it["index"], "row": it["row"]} for it in items]
        return result

    try:
        cfg = load_cfg(DictDefault(raw_cfg))
    except Exception as exc:  # noqa: BLE001
        return fail("config", exc)
    validated_ds = to_plain(cfg.datasets[0])
    for k in ("path", "ds_type", "trust_remote_code"):
        validated_ds.pop(k, None)
    result["dataset_config_validated"] = validated_ds
    result["config_validated"] = {
        k: to_plain(cfg.get(k))
        for k in ("sequence_len", "train_on_inputs", "chat_template", "special_tokens", "eot_tokens")
        if cfg.get(k) is not None
    }
    try:
        tokenizer = load_tokenizer(cfg)
    except Exception as exc:  # noqa: BLE001
        return fail("tokenizer", exc)
    result["special_token_ids"] = {
        "bos": [tokenizer.bos_token, tokenizer.bos_token_id],
        "eos": [tokenizer.eos_token, tokenizer.eos_token_id],
        "pad": [tokenizer.pad_token, tokenizer.pad_token_id],
    }
    try:
        wrapper, _ = _load_and_process_single_dataset(
            dataset_config=cfg.datasets[0], cfg=cfg, tokenizer=tokenizer, split="train", seed=42
        )
        pipeline = [
            {k: listify(r[k]) for k in ("input_ids", "labels", "attention_mask") if k in r} for r in wrapper
        ]
        strategy = wrapper.prompt_tokenizer
    except Exception as exc:  # noqa: BLE001
        # The whole dataset failed (e.g. one bad row aborts datasets.map). Record the error,
        # then rebuild the strategy exactly as get_dataset_wrapper does and run it row by
        # row, so the rows that do tokenize are still pinned.
        result["error"] = f"[dataset] {err_str(exc)}"
        result["error_traceback_tail"] = traceback.format_exc().strip().splitlines()[-6:]
        pipeline = None
        from axolotl.prompt_strategies import load as load_strategy

        try:
            strategy = load_strategy(cfg.datasets[0].type, tokenizer, cfg, cfg.datasets[0])
        except Exception:  # noqa: BLE001  (the strategy itself cannot be built)
            strategy = None
        if strategy is None:
            result["rows"] = [{"source": it["source"], "index": it["index"], "row": it["row"]} for it in items]
            return result

    result["strategy"] = f"{type(strategy).__module__}.{type(strategy).__qualname__}"
    if getattr(strategy, "prompter", None) is not None:
        result["prompter"] = f"{type(strategy.prompter).__module__}.{type(strategy.prompter).__qualname__}"
    if hasattr(strategy.prompter, "prompt_style"):
        result["prompt_style"] = strategy.prompter.prompt_style
    if hasattr(strategy, "eot_tokens"):
        result["strategy_attrs"] = {
            "roles_to_train": strategy.roles_to_train,
            "train_on_eos": strategy.train_on_eos,
            "train_on_eot": strategy.train_on_eot,
            "eot_tokens": strategy.eot_tokens,
            "train_on_inputs": strategy.train_on_inputs,
        }

    # Per-row attribution with the very same strategy object.
    arrow_ds = load_dataset_with_config(cfg.datasets[0], cfg.hf_use_auth_token, streaming=False)
    if hasattr(arrow_ds, "keys") and "train" in arrow_ds:
        arrow_ds = arrow_ds["train"]
    assert len(arrow_ds) == len(items), (len(arrow_ds), len(items))
    rows_out = []
    concat = []
    for i, it in enumerate(items):
        base = {"source": it["source"], "index": it["index"], "row": it["row"]}
        try:
            if strategy.supports_batched:
                out = strategy.tokenize_prompt(arrow_ds[i : i + 1])
                seqs = [
                    {k: listify(out[k][j]) for k in ("input_ids", "labels", "attention_mask") if k in out}
                    for j in range(len(out.get("input_ids", [])))
                ]
            else:
                out = strategy.tokenize_prompt(arrow_ds[i])
                seqs = [{k: listify(out[k]) for k in ("input_ids", "labels", "attention_mask") if k in out}]
        except Exception as exc:  # noqa: BLE001
            rows_out.append({**base, "error": err_str(exc)})
            continue
        concat.extend(seqs)
        if len(seqs) == 1:
            rows_out.append({**base, **seqs[0]})
        else:
            for j, s in enumerate(seqs):
                rows_out.append({**base, "chunk": j, "num_chunks": len(seqs), **s})
    if pipeline is not None and concat != pipeline:
        raise AssertionError(f"{case['name']}: per-row results differ from the dataset pipeline output")
    result["rows"] = rows_out
    return result


# ---------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------


def dump(obj, path):
    """Readable JSON with one row per line-group and int lists kept on one line."""
    def enc(o, ind):
        pad = " " * ind
        if isinstance(o, dict):
            if not o:
                return "{}"
            parts = [f'{pad}  {json.dumps(k, ensure_ascii=False)}: {enc(v, ind + 2)}' for k, v in o.items()]
            return "{\n" + ",\n".join(parts) + "\n" + pad + "}"
        if isinstance(o, list) and o and all(isinstance(v, dict) for v in o):
            parts = [pad + "  " + json.dumps(v, ensure_ascii=False, separators=(", ", ": ")) for v in o]
            return "[\n" + ",\n".join(parts) + "\n" + pad + "]"
        return json.dumps(o, ensure_ascii=False, separators=(",", ":") if isinstance(o, list) else None)

    text = enc(obj, 0) + "\n"
    json.loads(text)  # sanity
    path.write_text(text, encoding="utf-8")


NOTES = """
## Behaviours worth knowing (observed in these fixtures, axolotl 0.19.0)

chat_template (`ChatTemplateStrategy`):

- Only the message *content* span and the turn terminator (eos/eot token) are ever labelled.
  BOS, `<|start_header_id|>role<|end_header_id|>\\n\\n` and `<|im_start|>role\\n` are never trained,
  even with `train_on_inputs: true` or `train_on_eos: all`.
- ChatML (qwen3): the `\\n` after `<|im_end|>` is never trained, in any mode; only `<|im_end|>` is.
- Whitespace: the llama template `| trim`s content, so leading/trailing whitespace is gone from
  `input_ids`; the qwen3 template keeps it and it is trained verbatim (`"\\n  Sure, here it is.  \\n"`).
- A terminator is attributed to a turn only if it is found within 3 tokens after the content end.
- Empty assistant content: the turn cannot be located (start == end), so neither the turn nor its
  terminator is trained, even with `train_on_eos: all` or `train_on_inputs: true`.
- `train_on_eos: all` trains the terminator of every turn (system, user, tool too); `none` trains
  content only. `last` = terminator of the last *trainable* turn, so a chat that ends with a user
  turn gets the last assistant's terminator. But when the other option (`train_on_eot` vs
  `train_on_eos`) is `all`, untrainable turns are scanned too and `last` becomes the terminator of
  the final turn of any role (see `chat_llama_eos-end-of-text_eot-tokens_eot-last`, handcrafted
  rows 2 and 4).
- `tool` is an ordinary role (not trained by default). `tool_calls` is dropped because these
  templates reference only `role`/`content` (Axolotl keeps only message keys the template uses).
- `message_field_training` overrides `roles_to_train` per message in both directions (a user turn
  with `training: true` is trained, an assistant turn with `training: false` is not).
- A system-only conversation trains nothing by default; with `drop_system_message: true` it becomes
  empty and Axolotl raises `ValueError: Cannot apply chat template to an empty conversation`, which
  aborts the *whole* dataset (`*_drop-system.json`: top-level `error`; the other rows were produced
  by the same strategy object row by row and are still pinned).
- `eot_tokens` defaults to `[eos_token]`. The eos/eot conflict check (`train_on_eos !=
  train_on_eot` while eos is in `eot_tokens`) is skipped when `eot_tokens == [eos_token]`; then both
  passes label the same token and the effective setting is the union (`*_eot-all_eos-default`).
  `eot_tokens` entries absent from the template are dropped with a warning.
- With `eos_token: <|end_of_text|>` (not used by the template) and no `eot_tokens`, the turn
  terminator `<|eot_id|>` is never trained.

alpaca (`AlpacaPromptTokenizingStrategy`, `alpaca:<style>` handler and the `alpaca_chat` /
`alpaca_instruct` modules):

- Prompt and response are tokenized separately: prompt with the tokenizer's BOS (llama), response
  with BOS stripped and `eos_token` appended (`<|eot_id|>` / `<|im_end|>`); labels are -100 over the
  prompt. `train_on_inputs: true` labels everything, BOS included.
- The response is used verbatim (no strip): `" padded output \\n"` keeps its spaces/newline.
- Styles: instruct `### Instruction:\\n...\\n\\n### Input:\\n...\\n\\n### Response:\\n`; chat
  `SYSTEM: ...\\nUSER: ...\\n<input>\\nASSISTANT:` (no space before the response); chatml puts the
  alpaca system prompt in `<|im_start|>system` (plain text for the llama tokenizer); phi *with*
  input renders `<|user|>\\n{instruction}<|end|>{input}<|assistant|>` (no newlines), without input
  `<|user|>\\n{instruction}<|end|>\\n<|assistant|>\\n`. An empty `input` selects the no-input
  system prompt/format.

completion:

- labels == input_ids (BOS included); EOS appended when the text is shorter than
  `sequence_len * 64`; the result is then cut into consecutive `sequence_len` chunks with no
  overlap: only the first chunk has BOS, only the last has EOS (`completion_llama_seq64`).

input_output:

- Each segment is tokenized on its own with `add_special_tokens=False`: no BOS/EOS is added, special
  token strings inside the text are parsed as special tokens, and tokens never merge across segment
  boundaries (`"Split mid" + "word"`). Empty segments contribute nothing.
"""


def write_readme(results):
    v = results[0]["versions"] if results else versions()
    lines = [
        "# Axolotl golden fixtures",
        "",
        f"Generated by `make_golden.py` with **axolotl {v['axolotl']}** "
        f"(transformers {v['transformers']}, tokenizers {v['tokenizers']}, datasets {v['datasets']}, "
        f"jinja2 {v['jinja2']}, torch {v['torch']}).",
        "",
        "Each `*.json` file pins the `input_ids` / `labels` / `attention_mask` that Axolotl's own prompt",
        "strategy produced for a dataset config, taken from `get_dataset_wrapper` output (the",
        "`datasets.map` of `strategy.tokenize_prompt`) **before** `handle_long_seq_in_dataset`",
        "(length filter / truncation) and before packing. `make_golden.py` documents how the venv",
        "was built and how the config was driven through `load_cfg` -> `load_tokenizer` ->",
        "`_load_and_process_single_dataset`. The project never imports or runs it.",
        "",
        "File layout: `axolotl_version`, `versions`, `tokenizer` (`llama` | `qwen3`), `tokenizer_path`,",
        "`tokenizer_sha256`, `dataset_config` (the `datasets:` entry as written, minus `path`),",
        "`dataset_config_validated` (after Axolotl's pydantic validation/normalisation), `config`",
        "(top-level keys as written), `config_validated`, `special_token_ids`, `strategy`, `prompter`,",
        "`error` (null, or `[stage] Type: message` when Axolotl raised while validating/loading),",
        "`rows`: one entry per produced sequence: `source`, `index`, `row` (raw input row),",
        "`input_ids`, `labels`, `attention_mask`; rows split by the completion strategy carry",
        "`chunk`/`num_chunks`; a row on which the strategy raised carries `error` instead of ids.",
        "",
        "Data: first 12 rows of each `ftkit/assets/samples/*.jsonl` plus handcrafted rows",
        "(`source: handcrafted`, see `HAND_*` in `make_golden.py`). Chat cases use",
        "`chat.jsonl`[:12] + 8 handcrafted chats, `sharegpt` cases `chat_sharegpt.jsonl`[:12].",
        "",
        "| file | tokenizer | rows | description | error |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        nerr = sum(1 for x in r.get("rows", []) if "error" in x)
        e = r["error"] or (f"{nerr} row(s) errored" if nerr else "")
        e = e.replace("|", "\\|").replace("\n", " ")
        if len(e) > 160:
            e = e[:157] + "..."
        lines.append(
            f"| `{r['case']}.json` | {r['tokenizer']} | {len(r.get('rows', []))} | "
            f"{r['description'].replace('|', chr(92) + '|')} | {e} |"
        )
    lines.append(NOTES)
    (HERE / "README.md").write_text("\n".join(lines), encoding="utf-8")


def main(argv):
    flt = argv[1:] if len(argv) > 1 else []
    cases = build_cases()
    results = []
    for case in cases:
        if flt and not any(f in case["name"] for f in flt):
            continue
        print(f"=== {case['name']}", flush=True)
        res = run_case(case)
        dump(res, HERE / f"{case['name']}.json")
        results.append(res)
        print(f"    error={res['error']!r} rows={len(res['rows'])}", flush=True)
    if not flt:
        write_readme(results)


if __name__ == "__main__":
    main(sys.argv)
