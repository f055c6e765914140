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
    /tmp/axo-venv/bin/python tests/data/golden/make_golden.py --group thinking   # one group
    /tmp/axo-venv/bin/python tests/data/golden/make_golden.py --readme-only      # README from the files

Groups: ``core`` (the first 47 fixtures), ``chat_template_named`` (every named Axolotl chat
template), ``thinking`` (reasoning content, qwen3 template), ``legacy`` (``module.load_fn``
prompt strategies and built-in handlers), ``user_defined`` (``type: {format: ...}``).

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


# --- reasoning / thinking (qwen3 template) -----------------------------------
HAND_THINK = [
    # 0: single exchange, reasoning in the default field `reasoning_content`
    {"messages": [
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "2 + 2 = 4.", "reasoning_content": "Simple addition: two plus two is four."},
    ]},
    # 1: two exchanges, both with reasoning (the template drops reasoning before the last user query)
    {"messages": [
        {"role": "system", "content": "Think before answering."},
        {"role": "user", "content": "Name a prime number."},
        {"role": "assistant", "content": "7", "reasoning_content": "7 has no divisors other than 1 and 7."},
        {"role": "user", "content": "And an even one?"},
        {"role": "assistant", "content": "2", "reasoning_content": "2 is the only even prime."},
    ]},
    # 2: reasoning inline in the content, no reasoning field (the template splits on </think> itself)
    {"messages": [
        {"role": "user", "content": "Greet me."},
        {"role": "assistant", "content": "<think>\nThe user wants a greeting.\n</think>\n\nHello!"},
    ]},
    # 3: no reasoning at all (last assistant turn still gets an empty think block)
    {"messages": [
        {"role": "user", "content": "Say ok."},
        {"role": "assistant", "content": "ok"},
    ]},
    # 4: whitespace around the reasoning and the content
    {"messages": [
        {"role": "user", "content": "Spaces?"},
        {"role": "assistant", "content": "\n  Spaced answer.  ", "reasoning_content": "\n  spaced reasoning  \n"},
    ]},
    # 5: tool round-trip: both assistant turns come after the last user query
    {"messages": [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": "Checking.", "reasoning_content": "I need the weather tool."},
        {"role": "tool", "content": "{\"temp_c\": 3}"},
        {"role": "assistant", "content": "It is 3 degrees in Oslo.", "reasoning_content": "The tool said 3 C."},
    ]},
    # 6: empty reasoning string on the final turn, reasoning on an earlier turn
    {"messages": [
        {"role": "user", "content": "One?"},
        {"role": "assistant", "content": "1", "reasoning_content": "Counting."},
        {"role": "user", "content": "Two?"},
        {"role": "assistant", "content": "2", "reasoning_content": ""},
    ]},
]


def _rename_reasoning(rows, key):
    out = []
    for r in rows:
        msgs = []
        for m in r["messages"]:
            m = dict(m)
            if "reasoning_content" in m:
                m[key] = m.pop("reasoning_content")
            msgs.append(m)
        out.append({"messages": msgs})
    return out


# same rows with the reasoning stored under a custom key (for field_thinking)
HAND_THINK_CUSTOM = _rename_reasoning(HAND_THINK, "thought")

# reasoning embedded in the assistant content, for split_thinking
HAND_THINK_SPLIT = [
    {"messages": [
        {"role": "user", "content": "What is 3 * 3?"},
        {"role": "assistant", "content": "<think>\n3 times 3 is 9.\n</think>\n\nThe answer is 9."},
    ]},
    {"messages": [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "<reasoning> France's capital is Paris. </reasoning>  Paris."},
    ]},
    {"messages": [
        {"role": "user", "content": "Is 10 even?"},
        {"role": "assistant", "content": "<|begin_of_thought|>\n10 / 2 = 5, no remainder.\n<|end_of_thought|>\n"
                                         "<|begin_of_solution|>\nYes, 10 is even.\n<|end_of_solution|>"},
    ]},
    {"messages": [
        {"role": "user", "content": "No tags here?"},
        {"role": "assistant", "content": "Right, plain content."},
    ]},
    {"messages": [
        {"role": "user", "content": "Unclosed?"},
        {"role": "assistant", "content": "<think>never closed, answer follows"},
    ]},
    {"messages": [
        {"role": "user", "content": "First?"},
        {"role": "assistant", "content": "<think>one</think>A"},
        {"role": "user", "content": "Second?"},
        {"role": "assistant", "content": "<think>\ntwo\n</think>\nB"},
    ]},
]

# custom jinja template that reads the reasoning from message.thinking (for template_thinking_key)
THINKING_KEY_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['role'] == 'assistant' and message.thinking is defined and message.thinking %}"
    "{{ '<think>\\n' + message.thinking + '\\n</think>\\n\\n' }}{% endif %}"
    "{{ message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# --- legacy module.load_fn prompt strategies ----------------------------------
HAND_QA = [  # alpaca_chat.load_qa
    {"question": "What color is the sky?", "answer": "Blue."},
    {"question": "Translate 'cat' to Japanese 🐱", "answer": " 猫 (neko) \n"},
    {"question": "", "answer": "An empty question still trains the answer."},
]
HAND_CAMEL = [  # alpaca_chat.load_camel_ai
    {"message_1": "Explain photosynthesis in one sentence.", "message_2": "Plants turn light, water and CO2 into sugar."},
    {"message_1": "2+2?", "message_2": " 4 "},
]
HAND_W_SYSTEM = [  # alpaca_w_system.*, instruction/input/output/system
    {"system": "You are a pirate.", "instruction": "Say hello.", "input": "", "output": "Ahoy!"},
    {"system": "Answer in French.", "instruction": "Translate.", "input": "cat", "output": "chat"},
    {"system": "", "instruction": "Empty system prompt.", "input": "", "output": "No system line."},
    {"system": "Be brief.", "instruction": "No input key at all.", "output": " Trailing space kept. "},
]
HAND_ORCA = [  # alpaca_w_system.load_open_orca(_chatml) and orcamini: question/response/system_prompt
    {"system_prompt": "You are an AI assistant.", "question": "What is the boiling point of water?",
     "response": "100 degrees Celsius at sea level."},
    {"system_prompt": "", "question": "Empty system prompt?", "response": "Yes."},
    {"system_prompt": "Use emoji.", "question": "Cat?", "response": "🐱"},
]
HAND_CONTEXT = [  # context_qa (load, load_404)
    {"article": "Paris is the capital of France.", "question": "What is the capital of France?",
     "answer": "Paris.", "unanswerable_question": "What is the population of Lyon?"},
    {"article": "Water boils at 100 C.", "question": "At what temperature does water boil?",
     "answer": " 100 C ", "unanswerable_question": "Who discovered water?"},
]
HAND_CONTEXT_V2 = [  # context_qa.load_v2
    {"context": "The cat sat on the mat.", "question": "Where did the cat sit?", "answer": "On the mat."},
    {"context": "猫はかわいい。", "question": "What is cute?", "answer": "The cat (猫)."},
]
HAND_CREATIVE = [  # creative_acr.load_answer / load_critique / load_revise
    {"instruction": "Write a haiku about rain.", "answer": "Rain falls. It is wet.",
     "revision": "Soft rain on tin roofs,\nwhispers of the grey morning,\npuddles hold the sky.",
     "scores": {"refusal": 10, "prescriptive_bias": 10, "creativity": 3, "comprehensiveness": 2},
     "critiques": {"creativity": {"explanation": "Flat.", "improvements": "Use imagery."},
                   "comprehensiveness": {"explanation": "Too short.", "improvements": "Three lines."}}},
]
HAND_LLAMA2 = [  # llama2_chat: conversations with from/value
    {"conversations": [{"from": "human", "value": "Who are you?"}, {"from": "gpt", "value": "I am a bot."}]},
    {"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Hi"},
                       {"from": "gpt", "value": "Hello."}, {"from": "human", "value": "Bye"},
                       {"from": "gpt", "value": "Goodbye."}]},
    {"conversations": [{"from": "human", "value": "Only a question, no answer."}]},
]
HAND_METHARME = [  # metharme: prompt/generation
    {"prompt": "<|system|>Enter RP mode.<|user|>Hello<|model|>", "generation": "Greetings, traveller."},
    {"prompt": "<|user|>2+2?<|model|>", "generation": " 4"},
]
HAND_PYGMALION = [  # pygmalion: conversations with role/value (system/human/bot)
    {"conversations": [{"role": "system", "value": "A friendly robot.\n<START>"},
                       {"role": "human", "value": "Hi robot"}, {"role": "bot", "value": "Beep boop, hello!"},
                       {"role": "human", "value": "Bye"}, {"role": "bot", "value": " Goodbye. "}]},
    {"conversations": [{"role": "human", "value": "No persona."}, {"role": "bot", "value": "Fine."},
                       {"role": "narrator", "value": "An unknown role."}]},
]
HAND_MESSAGES = [  # type: messages (axolotl.core.chat)
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                  {"role": "assistant", "content": "Hello."}]},
    {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"},
                  {"role": "user", "content": "3+3?"}, {"role": "assistant", "content": " 6 "}]},
    {"messages": [{"role": "user", "content": "Weighted", "weight": 1},
                  {"role": "assistant", "content": "turns", "weight": 0}]},
]
HAND_MC = [  # explainchoice / concisechoice: question/choices/solution|explanation
    {"question": "Which is a fruit?", "choices": ["carrot", "apple", "potato"], "solution": "apple"},
    {"question": "2+2?", "choices": ["3", "4"], "explanation": "2+2 is 4 because addition."},
]
HAND_TLDR = [  # summarizetldr: article/summary
    {"article": "The council met on Monday and agreed to build a new park next to the river.",
     "summary": "New riverside park approved."},
]
HAND_JEOPARDY = [  # jeopardy: question/category/answer
    {"question": "This planet is known as the Red Planet.", "category": "ASTRONOMY", "answer": "Mars"},
]
HAND_OASST = [  # oasst: INSTRUCTION/RESPONSE
    {"INSTRUCTION": "Tell me a joke.", "RESPONSE": "Why did the chicken cross the road? To get to the other side."},
]
HAND_GPTEACHER = [  # gpteacher: instruction/input/response
    {"instruction": "Summarize.", "input": "A long text about cats.", "response": "Cats."},
    {"instruction": "Say hi.", "input": "", "response": "Hi!"},
]
HAND_REFLECTION = [  # reflection: instruction/input/output/reflection/corrected
    {"instruction": "Add 2 and 2.", "input": "", "output": "5", "reflection": "That is wrong.", "corrected": "4"},
    {"instruction": "Capital?", "input": "France", "output": "Paris", "reflection": "Correct.", "corrected": "Paris"},
]
HAND_PRETRAIN = [{"text": "Plain text for the pretrain strategy."}]

# --- user-defined format (type: {field_*, format, no_input_format, system_format}) ---
HAND_UD = [
    {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5", "system": "You are a calculator."},
    {"instruction": "Say hi.", "input": "", "output": "Hi!", "system": "You are friendly."},
    {"instruction": "No system key.", "input": "ctx", "output": "ok"},
    {"instruction": "Empty system.", "input": "", "output": "fine", "system": ""},
    {"instruction": "No input key.", "output": " spaced output "},
]
HAND_UD_CUSTOM = [
    {"q": "What is the capital of Italy?", "ctx": "Europe", "a": "Rome.", "persona": "Geography teacher."},
    {"q": "Define cat.", "ctx": "", "a": "A small feline 🐱.", "persona": ""},
    {"q": "Only a question.", "a": "Only an answer."},
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
    if kind in HAND_KINDS:
        return handcrafted(HAND_KINDS[kind])
    raise ValueError(kind)


HAND_KINDS = {
    "think": HAND_THINK, "think_custom": HAND_THINK_CUSTOM, "think_split": HAND_THINK_SPLIT,
    "qa": HAND_QA, "camel": HAND_CAMEL, "w_system": HAND_W_SYSTEM, "orca": HAND_ORCA,
    "context": HAND_CONTEXT, "context_v2": HAND_CONTEXT_V2, "creative": HAND_CREATIVE, "llama2": HAND_LLAMA2,
    "metharme": HAND_METHARME, "pygmalion": HAND_PYGMALION, "messages": HAND_MESSAGES, "mc": HAND_MC,
    "tldr": HAND_TLDR, "jeopardy": HAND_JEOPARDY, "oasst": HAND_OASST, "gpteacher": HAND_GPTEACHER,
    "reflection": HAND_REFLECTION, "pretrain": HAND_PRETRAIN, "ud": HAND_UD, "ud_custom": HAND_UD_CUSTOM,
}


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

    # ---- added with the second batch (group column in the README) ----
    for c in cases:
        c.setdefault("group", "core")

    def add2(group, name, tok, kind, ds, desc, **cfg_extra):
        add(name, tok, kind, ds, desc, **cfg_extra)
        cases[-1]["group"] = group

    # a. every named Axolotl chat template, llama tiny tokenizer, loader defaults
    from axolotl.utils.chat_templates import _CHAT_TEMPLATES
    from axolotl.utils.schemas.enums import ChatTemplate

    enum_names = [m.value for m in ChatTemplate]
    for name in enum_names:
        if name in _CHAT_TEMPLATES:
            add2("chat_template_named", f"chat_llama_tpl-{name}", "llama", "chat", {"type": "chat_template"},
                 f"top-level chat_template: {name} (Axolotl's {name}.jinja), loader defaults", chat_template=name)
    for name in sorted(set(_CHAT_TEMPLATES) - set(enum_names)):
        # shipped as a .jinja but not a ChatTemplate enum value: only reachable through the dataset-level
        # `chat_template` (typed `ChatTemplate | str`) or tokenizer_default_fallback_<name>
        add2("chat_template_named", f"chat_llama_tpl-{name}", "llama", "chat",
             {"type": "chat_template", "chat_template": name},
             f"dataset-level chat_template: {name} ({name}.jinja ships with Axolotl but is not a ChatTemplate "
             "enum value, so it cannot be set at top level); top-level chat_template stays tokenizer_default")

    # b. reasoning / thinking with Axolotl's qwen3 template and the qwen3 tiny tokenizer
    CT = {"type": "chat_template"}
    add2("thinking", "think_qwen3_default", "qwen3", "think", dict(CT),
         "chat_template: qwen3; reasoning in messages[].reasoning_content (default field_thinking / "
         "template_thinking_key)", chat_template="qwen3")
    add2("thinking", "think_qwen3_enable-thinking-false", "qwen3", "think", dict(CT),
         "chat_template: qwen3, chat_template_kwargs: {enable_thinking: false}", chat_template="qwen3",
         chat_template_kwargs={"enable_thinking": False})
    add2("thinking", "think_qwen3_enable-thinking-true", "qwen3", "think", dict(CT),
         "chat_template: qwen3, chat_template_kwargs: {enable_thinking: true}", chat_template="qwen3",
         chat_template_kwargs={"enable_thinking": True})
    add2("thinking", "think_qwen3_field-thinking", "qwen3", "think_custom", {**CT, "field_thinking": "thought"},
         "chat_template: qwen3; reasoning stored under messages[].thought, field_thinking: thought",
         chat_template="qwen3")
    add2("thinking", "think_qwen3_field-thinking-unset", "qwen3", "think_custom", dict(CT),
         "chat_template: qwen3; reasoning stored under messages[].thought but field_thinking NOT set "
         "(the key is not mapped, reasoning is lost)", chat_template="qwen3")
    add2("thinking", "think_qwen3_mapping-thinking", "qwen3", "think_custom",
         {**CT, "message_property_mappings": {"role": "role", "content": "content", "reasoning_content": "thought"}},
         "chat_template: qwen3; reasoning under messages[].thought mapped explicitly through "
         "message_property_mappings {reasoning_content: thought}", chat_template="qwen3")
    add2("thinking", "think_qwen3_template-thinking-key", "qwen3", "think_custom",
         {**CT, "field_thinking": "thought", "template_thinking_key": "thinking"},
         "custom jinja (chat_template_jinja) that renders message.thinking; field_thinking: thought, "
         "template_thinking_key: thinking", chat_template="jinja", chat_template_jinja=THINKING_KEY_TEMPLATE)
    add2("thinking", "think_qwen3_split-thinking", "qwen3", "think_split", {**CT, "split_thinking": True},
         "chat_template: qwen3, split_thinking: true (assistant content with <think>/<reasoning>/"
         "<|begin_of_thought|> blocks is split into reasoning_content + content)", chat_template="qwen3")
    add2("thinking", "think_qwen3_split-thinking-off", "qwen3", "think_split", dict(CT),
         "chat_template: qwen3, same rows as split-thinking but split_thinking unset (only the template's own "
         "</think> split applies)", chat_template="qwen3")
    add2("thinking", "think_qwen3_split-thinking_roles-user-assistant", "qwen3", "think_split",
         {**CT, "split_thinking": True, "roles_to_train": ["user", "assistant"]},
         "split_thinking: true, roles_to_train: [user, assistant]", chat_template="qwen3")
    add2("thinking", "think_qwen3_tpl-qwen3_5", "qwen3", "think", dict(CT),
         "chat_template: qwen3_5; reasoning in messages[].reasoning_content", chat_template="qwen3_5")

    # c. legacy module[.load_fn] prompt strategies and built-in handlers
    legacy = [
        ("alpaca_chat.load_qa", "qa", "question/answer, AlpacaChatPrompter (chat style)"),
        ("alpaca_chat.load_concise", "alpaca", "instruction/input/output, AlpacaConcisePrompter (chat style)"),
        ("alpaca_chat.load_camel_ai", "camel", "message_1/message_2, AlpacaChatPrompter"),
        ("alpaca_chat.load_no_prompt", "alpaca", "instruction/input/output, UnpromptedPrompter chat style"),
        ("alpaca_instruct.load_no_prompt", "alpaca", "instruction/input/output, UnpromptedPrompter instruct"),
        ("alpaca_w_system", "w_system", "== alpaca_w_system.load_chat; system/instruction/input/output"),
        ("alpaca_w_system.load_instruct", "w_system", "SystemDataPrompter instruct style"),
        ("alpaca_w_system.load_chat", "w_system", "SystemDataPrompter chat style"),
        ("alpaca_w_system.load_open_orca", "orca", "system_prompt/question/response, OpenOrca instruct style"),
        ("alpaca_w_system.load_open_orca_chatml", "orca", "system_prompt/question/response, OpenOrca chatml"),
        ("context_qa", "context", "article/question/answer"),
        ("context_qa.load_404", "context", "article/unanswerable_question, fixed refusal answer"),
        ("context_qa.load_v2", "context_v2", "context/question/answer"),
        ("creative_acr.load_answer", "creative", "instruction/revision"),
        ("creative_acr.load_critique", "creative", "instruction/answer/scores/critiques (YAML dump)"),
        ("creative_acr.load_revise", "creative", "instruction/answer/scores/critiques/revision"),
        ("metharme", "metharme", "prompt/generation (up to 3 eos appended)"),
        ("orcamini", "orca", "system_prompt/question/response, ### System/### User/### Response"),
        ("pygmalion", "pygmalion", "conversations role/value (system/human/bot)"),
        ("explainchoice", "mc", "built-in handler: question/choices/solution|explanation"),
        ("concisechoice", "mc", "built-in handler: question/choices/solution|explanation"),
        ("summarizetldr", "tldr", "built-in handler: article/summary"),
        ("jeopardy", "jeopardy", "built-in handler: question/category/answer"),
        ("oasst", "oasst", "built-in handler: INSTRUCTION/RESPONSE"),
        ("gpteacher", "gpteacher", "built-in handler: instruction/input/response"),
        ("reflection", "reflection", "built-in handler: instruction/input/output/reflection/corrected"),
        ("explainchoice:chat", "mc", "built-in handler with :chat prompt style"),
        ("pretrain", "pretrain", "pretrain strategy under datasets: (meant for pretraining_dataset)"),
    ]
    for typ, kind, desc in legacy:
        slug = typ.replace(":", "-")
        add2("legacy", f"legacy_llama_{slug}", "llama", kind, {"type": typ}, f"type: {typ} ({desc})")
    add2("legacy", "legacy_llama_llama2_chat", "llama", "llama2", {"type": "llama2_chat"},
         "type: llama2_chat (conversations from/value; pads to sequence_len 128 with padding=max_length)",
         sequence_len=128)
    add2("legacy", "legacy_llama_alpaca_w_system.load_chat_train-on-inputs", "llama", "w_system",
         {"type": "alpaca_w_system.load_chat"}, "type: alpaca_w_system.load_chat, train_on_inputs: true",
         train_on_inputs=True)
    add2("legacy", "legacy_llama_messages", "llama", "messages", {"type": "messages"},
         "type: messages (axolotl.core.chat, input_transform chat), no chat_template anywhere")
    add2("legacy", "legacy_llama_messages_chatml", "llama", "messages", {"type": "messages"},
         "type: messages with top-level chat_template: chatml (chatml formatter)", chat_template="chatml")
    add2("legacy", "legacy_llama_messages_llama3", "llama", "messages", {"type": "messages"},
         "type: messages with top-level chat_template: llama3 (llama3x formatter)", chat_template="llama3")
    add2("legacy", "legacy_llama_messages.chat_llama3", "llama", "messages", {"type": "messages.chat"},
         "type: messages.chat (module path form) with top-level chat_template: llama3", chat_template="llama3")
    add2("legacy", "legacy_qwen3_alpaca_w_system.load_open_orca_chatml", "qwen3", "orca",
         {"type": "alpaca_w_system.load_open_orca_chatml"}, "type: alpaca_w_system.load_open_orca_chatml")

    # d. user-defined format
    UD = {"field_instruction": "instruction", "field_input": "input", "field_output": "output"}
    add2("user_defined", "ud_llama_basic", "llama", "ud",
         {"type": {**UD, "format": "[INST] {instruction} {input} [/INST] ",
                   "no_input_format": "[INST] {instruction} [/INST] "}},
         "user-defined format/no_input_format, no system fields")
    add2("user_defined", "ud_llama_system", "llama", "ud",
         {"type": {**UD, "field_system": "system", "format": "### Q:\n{instruction}\n### Ctx:\n{input}\n### A:\n",
                   "no_input_format": "### Q:\n{instruction}\n### A:\n",
                   "system_format": "<<SYS>>{system}<</SYS>>\n"}},
         "user-defined with field_system + system_format (rows with/without/empty system)")
    add2("user_defined", "ud_llama_system-prompt", "llama", "ud",
         {"type": {**UD, "system_prompt": "Default system prompt.", "format": "{instruction}\n{input}\n=> ",
                   "no_input_format": "{instruction}\n=> ", "system_format": "SYSTEM: {system}\n"}},
         "user-defined with system_prompt fallback (used when the row lacks the field_system key, "
         "default field_system 'system')")
    add2("user_defined", "ud_llama_custom-fields", "llama", "ud_custom",
         {"type": {"field_instruction": "q", "field_input": "ctx", "field_output": "a", "field_system": "persona",
                   "format": "<q>{instruction}</q><ctx>{input}</ctx>", "no_input_format": "<q>{instruction}</q>",
                   "system_format": "<persona>{system}</persona>"}},
         "user-defined with custom field names (q/ctx/a/persona) and tag-style formats")
    add2("user_defined", "ud_llama_train-on-inputs", "llama", "ud",
         {"type": {**UD, "field_system": "system", "format": "{instruction}|{input}|",
                   "no_input_format": "{instruction}|", "system_format": "[{system}]"}},
         "user-defined with system, train_on_inputs: true", train_on_inputs=True)
    add2("user_defined", "ud_llama_format-with-system-key", "llama", "ud",
         {"type": {**UD, "field_system": "system", "format": "{system}|{instruction}|{input}|",
                   "no_input_format": "{instruction}|", "system_format": "[{system}]"}},
         "user-defined whose format mentions {system} (format() only receives instruction/input)")
    add2("user_defined", "ud_llama_minimal", "llama", "ud",
         {"type": {"field_instruction": "instruction", "field_output": "output"}},
         "user-defined with only field_instruction/field_output (format/no_input_format unset)")
    add2("user_defined", "ud_qwen3_system", "qwen3", "ud",
         {"type": {**UD, "field_system": "system",
                   "format": "<|im_start|>user\n{instruction}\n{input}<|im_end|>\n<|im_start|>assistant\n",
                   "no_input_format": "<|im_start|>user\n{instruction}<|im_end|>\n<|im_start|>assistant\n",
                   "system_format": "<|im_start|>system\n{system}<|im_end|>\n"}},
         "user-defined ChatML-like format with system (qwen3 tokenizer)")
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


def outval(x):
    """Token-id lists as ints; scalars (e.g. Bradley-Terry labels_chosen 1.0) unchanged."""
    return listify(x) if isinstance(x, (list, tuple)) else x


def run_case(case):
    import datasets
    from axolotl.cli.config import load_cfg
    from axolotl.loaders import load_tokenizer
    from axolotl.utils.data.shared import load_dataset_with_config
    from axolotl.utils.data.sft import _load_and_process_single_dataset
    from axolotl.utils.dict import DictDefault

    datasets.disable_caching()
    # output columns to pin (reward-model / ORPO strategies emit chosen_ids, rejected_ids, ...)
    keys = case.get("output_keys", ("input_ids", "labels", "attention_mask"))
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
        + tuple(k for k in ("chat_template_kwargs", "chat_template_jinja") if k in case["config"])
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
    arrow_ds = load_dataset_with_config(cfg.datasets[0], cfg.hf_use_auth_token, streaming=False)
    if hasattr(arrow_ds, "keys") and "train" in arrow_ds:
        arrow_ds = arrow_ds["train"]
    try:
        wrapper, _ = _load_and_process_single_dataset(
            dataset_config=cfg.datasets[0], cfg=cfg, tokenizer=tokenizer, split="train", seed=42
        )
        pipeline = [
            {k: outval(r[k]) for k in keys if k in r} for r in wrapper
        ]
        strategy = getattr(wrapper, "prompt_tokenizer", None)
        if strategy is None:  # DatasetWrappingStrategy (type: messages): rebuilt the way get_dataset_wrapper does
            strategy = rebuild_strategy(cfg, tokenizer, arrow_ds)
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
            # not in the module registry (built-in handlers such as `jeopardy`, dict types): let
            # get_dataset_wrapper build it on a zero-row copy of the data
            try:
                strategy = rebuild_strategy(cfg, tokenizer, arrow_ds)
            except Exception:  # noqa: BLE001
                strategy = None
        if strategy is None:
            result["rows"] = [{"source": it["source"], "index": it["index"], "row": it["row"]} for it in items]
            return result

    from axolotl.prompt_tokenizers import DatasetWrappingStrategy

    wrapping = isinstance(strategy, DatasetWrappingStrategy)
    result["strategy"] = f"{type(strategy).__module__}.{type(strategy).__qualname__}"
    if getattr(strategy, "prompter", None) is not None:
        result["prompter"] = f"{type(strategy.prompter).__module__}.{type(strategy.prompter).__qualname__}"
    if hasattr(getattr(strategy, "prompter", None), "prompt_style"):
        result["prompt_style"] = strategy.prompter.prompt_style
    if hasattr(strategy, "eot_tokens"):
        result["strategy_attrs"] = {
            "roles_to_train": strategy.roles_to_train,
            "train_on_eos": strategy.train_on_eos,
            "train_on_eot": strategy.train_on_eot,
            "eot_tokens": strategy.eot_tokens,
            "train_on_inputs": strategy.train_on_inputs,
        }
        if "split_thinking" in case["dataset_config"] or case["group"] == "thinking":
            result["strategy_attrs"].update({
                "split_thinking": strategy.split_thinking,
                "field_thinking": strategy.prompter.field_thinking,
                "template_thinking_key": strategy.prompter.template_thinking_key,
                "message_property_mappings": strategy.prompter.message_property_mappings,
                "chat_template_msg_variables": sorted(strategy.prompter.chat_template_msg_variables),
                "chat_template_kwargs": strategy.prompter.chat_template_kwargs,
            })

    # Per-row attribution with the very same strategy object.
    assert len(arrow_ds) == len(items), (len(arrow_ds), len(items))
    rows_out = []
    concat = []
    for i, it in enumerate(items):
        base = {"source": it["source"], "index": it["index"], "row": it["row"]}
        try:
            if wrapping:
                out = strategy.wrap_dataset(arrow_ds.select([i]), process_count=1)
                seqs = [{k: outval(r[k]) for k in keys if k in r} for r in out]
            elif strategy.supports_batched:
                out = strategy.tokenize_prompt(arrow_ds[i : i + 1])
                seqs = [
                    {k: outval(out[k][j]) for k in keys if k in out}
                    for j in range(len(out.get("input_ids", [])))
                ]
            else:
                out = strategy.tokenize_prompt(arrow_ds[i])
                seqs = [{k: outval(out[k]) for k in keys if k in out}]
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


def rebuild_strategy(cfg, tokenizer, arrow_ds):
    """The strategy get_dataset_wrapper builds for cfg.datasets[0], without tokenizing any row.

    Registry types go through ``axolotl.prompt_strategies.load`` (as get_dataset_wrapper does first);
    built-in handlers (``jeopardy``, ``alpaca:chat``...) and dict (user-defined) types are built by
    get_dataset_wrapper itself on a zero-row slice of the data.
    """
    from axolotl.prompt_strategies import load as load_strategy
    from axolotl.utils.data.sft import _parse_dataset_type
    from axolotl.utils.data.wrappers import get_dataset_wrapper

    ds_cfg = cfg.datasets[0]
    if isinstance(ds_cfg.type, str):
        strategy = load_strategy(ds_cfg.type, tokenizer, cfg, ds_cfg)
        if strategy is not None:
            return strategy
    # capture the strategy handed to wrap_dataset_for_tokenized_prompt instead of mapping the data
    import axolotl.utils.data.wrappers as wrappers_mod

    captured = []
    original = wrappers_mod.wrap_dataset_for_tokenized_prompt
    wrappers_mod.wrap_dataset_for_tokenized_prompt = lambda strategy, dataset, **kw: captured.append(strategy)
    try:
        base_type, prompt_style = _parse_dataset_type(ds_cfg.type)
        get_dataset_wrapper(
            dataset_config=ds_cfg, tokenizer=tokenizer, cfg=cfg, dataset_base_type=base_type,
            dataset=arrow_ds, dataset_prompt_style=prompt_style,
        )
    finally:
        wrappers_mod.wrap_dataset_for_tokenized_prompt = original
    return captured[0] if captured else None


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

named chat templates (`chat_llama_tpl-<name>`, llama tiny tokenizer: eos `<|eot_id|>`):

- A top-level `chat_template: <name>` replaces the tokenizer's template in `load_tokenizer`; the dataset
  entry keeps `chat_template: tokenizer_default` (set by the SFTDataset validator) and so uses it.
  `phi_4` ships as a file but is no enum value: only the dataset-level field (`ChatTemplate | str`) takes it.
- Axolotl sets no eos/eot per template: `eot_tokens` defaults to `[eos]`, so the turn terminator is
  trained only where the template emits the tokenizer's eos (`llama3*`, `alpaca`, `mistral_*`,
  `pixtral`, `deepseek_v2`, `metharme` via `eos_token`); for the others (`chatml`, `qwen*`, `phi_*`,
  `gemma*`, `command_a*`, `exaone*`, `llava`, ...) only content is trained.
- Turn spans are found by diffing renders in character space and mapped to every token that
  overlaps the span. Where a template's markers are not special tokens of the tokenizer, BPE merges
  across the boundary and the boundary token is trained (`phi_3`: `" Yes. <"`, `command_a`: `">\n..."`,
  `exaone`: `"]\n..."`, `llava`: the space before the content).
- Templates that raise abort the whole dataset (top-level `error`); per row: `gemma` rejects any
  system turn, `aya`/`cohere`/`gemma3`/`gemma3n`/`mistral_v1`/`pixtral` need strictly alternating
  user/assistant turns, `mistral_v2v3`/`mistral_v3_tekken` need 9-char tool-call ids,
  `mistral_v7_tekken`/`nemotron_h` reject the `tool` role, `deepseek_v3` fails because Axolotl
  `json.loads` string tool-call `arguments` into a dict before rendering (`tool_calls` is kept when the
  template references it).

thinking (`think_qwen3_*`, Axolotl's `qwen3` template, qwen3 tokenizer):

- Reasoning is rendered as `<think>\n{reasoning}\n</think>\n\n{content}` only for assistant turns after
  the last user query; earlier turns lose it. The final assistant turn always gets a think block,
  empty (`<think>\n\n</think>\n\n`) when there is no reasoning.
- Labels of a final turn with reasoning start AFTER `<think>\n` (that prefix also occurs in the
  placeholder render) and cover reasoning + `</think>\n\n` + content + `<|im_end|>`; a non-final turn
  after the last query (tool round-trip) is trained from `<think>` on. An empty think block is never trained.
- `chat_template_kwargs: {enable_thinking: ...}` changes nothing in training data: the template
  reads it only inside `add_generation_prompt`.
- `field_thinking` has no effect: the SFTDataset validator always fills `message_property_mappings`
  with `{role, content}`, and the `{template_thinking_key: field_thinking}` mapping is only added when
  that is empty. Reasoning reaches the template only when the message key is a variable the template
  uses (`reasoning_content`), or via `message_property_mappings: {..., reasoning_content: <key>}`
  (`think_qwen3_mapping-thinking` == `think_qwen3_default`).
- The template also splits content on `</think>` by itself; `split_thinking: true` additionally
  recognises `<reasoning>...</reasoning>` and `<|begin_of_thought|>...<|end_of_thought|>` (+
  `<|begin_of_solution|>...<|end_of_solution|>`), strips the reasoning and left-strips the remainder.
  An unclosed `<think>` stays in the content.

legacy strategies (`legacy_*`) and user-defined formats (`ud_*`):

- All instruction-style strategies tokenize prompt and response separately (prompt with BOS, response
  without BOS plus eos) exactly like alpaca; `metharme` appends up to 3 eos, all trained;
  `pygmalion` only puts BOS on a system turn and silently drops unknown roles; `reflection` trains
  `### Thought ... ### Final Response` as one response.
- `llama2_chat` pads every row to `sequence_len` with the pad token and, with a non-Llama-2 tokenizer,
  masks everything (its length check fails); a conversation with fewer than 2 turns raises IndexError.
- `messages` (axolotl.core.chat) formats chatml when no chat_template is set, llama3x for llama3*; it
  trains the `\n` after `<|im_end|>` too, and per-message `weight` (or `train`) overrides the role default.
- `pretrain` cannot be used under `datasets:` (needs `pretraining_dataset`): TypeError.
- user-defined: unset `format`/`no_input_format`/`system_format` fall back to `"{instruction} {input} "`,
  `"{instruction} "`, `"{system}"`. The system part is `system_format.format(system=...)` prepended
  with no separator, and only when the value is non-empty. `system_prompt` is used only when the
  `field_system` column is absent from the whole dataset: Arrow gives every row every column, so a
  row lacking the key gets None, i.e. no system (`ud_llama_system-prompt` rows 2 and 4).
  `format` may not contain `{system}` (KeyError for rows with input); empty `input` selects
  `no_input_format`.
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
        "The `think_*`, `legacy_*` and `ud_*` cases use handcrafted rows only (`HAND_THINK*`, `HAND_QA`, ...,",
        "`HAND_UD*`); `chat_llama_tpl-<name>` uses the chat data with every named Axolotl template.",
        "",
        "SFT dataset `type`s of axolotl 0.19.0 and their fixtures (`module[.load_fn]` of",
        "`axolotl.prompt_strategies`, then the built-in handlers of `utils/data/wrappers.py`):",
        "",
        "| type | fixtures |",
        "|---|---|",
        "| `chat_template` | `chat_*` (incl. `chat_llama_tpl-*`), `think_*` |",
        "| `alpaca`, `alpaca:chat`, `alpaca:chatml`, `alpaca:phi` | `alpaca_*` |",
        "| `alpaca_chat`, `alpaca_instruct` | `alpaca_llama_alpaca-chat-module`, `alpaca_llama_alpaca-instruct-module` |",
        "| `alpaca_chat.load_qa` / `.load_concise` / `.load_camel_ai` / `.load_no_prompt` | `legacy_llama_alpaca_chat.*` |",
        "| `alpaca_instruct.load_no_prompt` | `legacy_llama_alpaca_instruct.load_no_prompt` |",
        "| `alpaca_w_system` (= `.load_chat`), `.load_instruct`, `.load_chat`, `.load_open_orca`, `.load_open_orca_chatml` | `legacy_*_alpaca_w_system*` |",
        "| `context_qa`, `.load_404`, `.load_v2` | `legacy_llama_context_qa*` |",
        "| `creative_acr.load_answer` / `.load_critique` / `.load_revise` | `legacy_llama_creative_acr.*` |",
        "| `llama2_chat`, `metharme`, `orcamini`, `pygmalion`, `pretrain` | `legacy_llama_<type>` (`pretrain`: error) |",
        "| `messages`, `messages.chat` | `legacy_llama_messages*` |",
        "| `explainchoice[:style]`, `concisechoice`, `summarizetldr`, `jeopardy`, `oasst`, `gpteacher`, `reflection` | `legacy_llama_<type>` |",
        "| `user_defined` (dict `type:`) | `ud_*` |",
        "| `completion`, `input_output` | `completion_*`, `input_output_*` |",
        "| `stepwise_supervised`, `bradley_terry.chat_template` | `rl_prm_*`, `rl_rm_*` (see `make_golden_rl.py`) |",
        "| `orpo.chat_template` | `rl_orpo_orpo.chat_template_tokenized` |",
        "| `_synthetic` (path: synthetic), `bradley_terry.llama3` (module has no `load`) | none |",
        "",
        "(`sharegpt.*` types are rejected by validation in 0.19: \"use `type: chat_template`\".)",
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
    text = "\n".join(lines)
    # keep the preference/RL section written by make_golden_rl.py
    old = (HERE / "README.md").read_text(encoding="utf-8") if (HERE / "README.md").exists() else ""
    if "<!-- rl:begin -->" in old:
        block = old[old.index("<!-- rl:begin -->") : old.index("<!-- rl:end -->") + len("<!-- rl:end -->\n")]
        text = text.rstrip("\n") + "\n\n" + block
    (HERE / "README.md").write_text(text, encoding="utf-8")


def main(argv):
    """``make_golden.py [--group G] [--readme-only] [name filters...]``.

    The README table is rebuilt from the fixture files on disk (all cases of ``build_cases``
    that have a file), so running a subset never drops rows of the others.
    """
    args = list(argv[1:])
    readme_only = "--readme-only" in args
    groups = []
    while "--group" in args:
        i = args.index("--group")
        groups.append(args[i + 1])
        del args[i : i + 2]
    flt = [a for a in args if a != "--readme-only"]
    cases = build_cases()
    for case in cases if not readme_only else []:
        if flt and not any(f in case["name"] for f in flt):
            continue
        if groups and case["group"] not in groups:
            continue
        print(f"=== {case['name']}", flush=True)
        res = run_case(case)
        dump(res, HERE / f"{case['name']}.json")
        print(f"    error={res['error']!r} rows={len(res['rows'])}", flush=True)
    results = [
        json.loads((HERE / f"{c['name']}.json").read_text(encoding="utf-8"))
        for c in cases if (HERE / f"{c['name']}.json").exists()
    ]
    write_readme(results)


if __name__ == "__main__":
    main(sys.argv)
