"""Copy Axolotl's named chat templates into ``ftkit/assets/chat_templates/``.

Runs REAL Axolotl (venv recipe in ``tests/data/golden/make_golden.py``); never
imported or run by ftkit::

    /tmp/axo-venv/bin/python tests/data/axolotl/make_chat_templates.py

For every name of Axolotl's ``ChatTemplate`` enum (plus any ``*.jinja`` that
Axolotl ships without an enum value) the text is taken from
``axolotl.utils.chat_templates.get_chat_template(name)`` and written unchanged,
byte for byte, to ``<name>.jinja``.  ``index.json`` records the sha256, the
special-token literals each template uses, and what Axolotl does with names that
are not a template file.  ``turn_probe`` renders a tiny conversation with the
llama tiny tokenizer (``/tmp/golden_tok/llama``: bos ``<|begin_of_text|>``,
eos ``<|eot_id|>``) to show the text the template puts around an assistant
turn; that is what an implementer needs to choose ``eot_tokens``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
OUT = REPO / "ftkit" / "assets" / "chat_templates"
TOK = "/tmp/golden_tok/llama"

import axolotl  # noqa: E402
from axolotl.utils.chat_templates import _CHAT_TEMPLATES, get_chat_template  # noqa: E402
from axolotl.utils.schemas.enums import ChatTemplate  # noqa: E402

TOKEN_PATTERNS = [
    r"<\|[^|<>\s'\"{}]{1,60}\|>",  # <|im_start|>, <|eot_id|>, <|START_OF_TURN_TOKEN|>
    r"<｜[^｜]{1,60}｜>",  # deepseek fullwidth bars
    r"</?[A-Za-z_][A-Za-z0-9_\-]{0,40}>",  # <s>, </s>, <start_of_turn>, <think>, <tool_call>
    r"\[/?[A-Z][A-Z_]{1,30}\]",  # [INST], [/INST], [SYSTEM_PROMPT], [AVAILABLE_TOOLS]
    r"\[\|[a-z_]{1,30}\|\]",  # exaone [|endofturn|], [|user|]
    r"<\|[a-z_]{1,30}>|<[a-z_]{1,30}\|>",  # gemma4 <|turn> ... <turn|>
]
NON_TOKENS = {"<br>", "<p>", "</p>"}

NOTES = {
    "alpaca": "Alpaca-style text template (### Instruction / ### Response), no special tokens beyond eos.",
    "chatml": "ChatML. With top-level default_system_message, load_tokenizer replaces the literal "
              "'You are a helpful assistant.' in THIS template only (cfg.chat_template == 'chatml').",
    "llama3": "Llama 3 (<|start_header_id|>role<|end_header_id|>, turns end with <|eot_id|>).",
    "phi_4": "Ships as phi_4.jinja but is NOT a ChatTemplate enum value: top-level `chat_template: phi_4` fails "
             "validation; reachable via `tokenizer_default_fallback_phi_4` (top level) or dataset-level "
             "`chat_template: phi_4` (the dataset field is `ChatTemplate | str`).",
}

NON_FILE_NAMES = {
    "tokenizer_default": "Use the tokenizer's own chat_template (tokenizer_config.json / chat_template.jinja); "
                         "ValueError if the tokenizer has none. Default for `type: chat_template` datasets "
                         "(SFTDataset validator sets dataset chat_template to tokenizer_default when unset).",
    "tokenizer_default_fallback_<name>": "Not an enum value but accepted at top level (pattern "
                                         "'^tokenizer_default_fallback_'): tokenizer's template if it has one, else "
                                         "the named Axolotl template <name> (with a warning suggesting "
                                         "train_on_inputs).",
    "jinja": "Custom template from `chat_template_jinja` (a template string, or a path to a file whose text is "
             "read); validation error if chat_template_jinja is missing. Setting chat_template_jinja without "
             "chat_template implies `jinja`.",
}


def special_literals(text: str) -> list[str]:
    found = []
    for pat in TOKEN_PATTERNS:
        for m in re.finditer(pat, text):
            tok = m.group(0)
            if tok not in found and tok not in NON_TOKENS:
                found.append(tok)
    return found


def probe(name: str, text: str, tok):
    """Render system/user/assistant/user/assistant with sentinel contents."""
    msgs = [
        {"role": "system", "content": "SYS_TEXT"},
        {"role": "user", "content": "USER_ONE"},
        {"role": "assistant", "content": "ASSISTANT_ONE"},
        {"role": "user", "content": "USER_TWO"},
        {"role": "assistant", "content": "ASSISTANT_TWO"},
    ]
    out = {}
    for label, conv in (("with_system", msgs), ("no_system", msgs[1:])):
        try:
            rendered = tok.apply_chat_template(conv, chat_template=text, tokenize=False)
            out[label] = rendered
        except Exception as exc:  # noqa: BLE001
            out[label] = None
            out[f"{label}_error"] = f"{type(exc).__name__}: {exc}"
    r = out.get("no_system") or out.get("with_system")
    if r and "ASSISTANT_ONE" in r and "USER_TWO" in r:
        a = r.index("ASSISTANT_ONE") + len("ASSISTANT_ONE")
        out["after_assistant_turn"] = r[a: r.index("USER_TWO")]
    if r and "ASSISTANT_TWO" in r:
        out["after_last_assistant"] = r[r.index("ASSISTANT_TWO") + len("ASSISTANT_TWO"):]
    return out


def main():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(TOK)
    OUT.mkdir(parents=True, exist_ok=True)
    enum_names = [m.value for m in ChatTemplate]
    names = enum_names + sorted(n for n in _CHAT_TEMPLATES if n not in enum_names)
    index = {
        "axolotl_version": axolotl.__version__,
        "source": "axolotl/utils/chat_templates/templates/<name>.jinja, read by "
                  "axolotl.utils.chat_templates.get_chat_template(name)",
        "eot_eos_behaviour": (
            "Axolotl 0.19.0 sets NO eos/eot token per template: load_tokenizer only assigns "
            "tokenizer.chat_template (and special_tokens from the config). ChatTemplateStrategy uses "
            "eot_tokens = cfg.eot_tokens (top-level) or [tokenizer.eos_token]; with the default, only the "
            "tokenizer's eos is ever trained as a turn terminator, and if eos is absent from the template text "
            "(and the template does not mention `eos_token`) it only logs a warning. Explicit eot_tokens that "
            "do not occur in the template text are dropped with a warning; an eot token encoding to >1 id "
            "raises ValueError. The strategy attributes a terminator to a turn only if it is among the 3 tokens "
            "after the turn's content. `turn_probe.after_assistant_turn` shows what each template emits there."
        ),
        "templates": {},
    }
    for name in names:
        if name == "tokenizer_default" or name == "jinja":
            index["templates"][name] = {"file": None, "notes": NON_FILE_NAMES[name]}
            continue
        try:
            text = get_chat_template(name)
        except Exception as exc:  # noqa: BLE001
            index["templates"][name] = {"file": None, "error": f"{type(exc).__name__}: {exc}"}
            continue
        assert text == _CHAT_TEMPLATES[name]
        fname = f"{name}.jinja"
        data = text.encode("utf-8")
        (OUT / fname).write_bytes(data)
        entry = {
            "file": fname,
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "in_chat_template_enum": name in enum_names,
            "special_tokens_it_uses": special_literals(text),  # heuristic literal scan (see TOKEN_PATTERNS)
            "uses_bos_token_variable": "bos_token" in text,
            "uses_eos_token_variable": "eos_token" in text,
            "raises_in_template": "raise_exception" in text,
            "notes": NOTES.get(name, ""),
            "turn_probe": probe(name, text, tok),
        }
        index["templates"][name] = entry
    index["templates"]["tokenizer_default_fallback_<name>"] = {
        "file": None, "notes": NON_FILE_NAMES["tokenizer_default_fallback_<name>"]}
    (OUT / "index.json").write_text(json.dumps(index, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    n_files = sum(1 for v in index["templates"].values() if v.get("file"))
    print(f"{n_files} template files, {len(index['templates'])} names")


if __name__ == "__main__":
    sys.exit(main())
