"""Dataset transform and reward functions for examples/grpo.yml (loaded as Axolotl loads them: module.function)."""
import re


def to_chat(cfg, **kwargs):
    "Axolotl's transform protocol: called with the config, returns the row transform."

    def transform(row):
        return {"prompt": [{"role": "user", "content": row["question"]}], "answer": row["answer"]}

    return transform


def _text(completion):
    return completion[-1]["content"] if isinstance(completion, list) else completion


def correct_number(prompts, completions, answer, **kwargs):
    "1.0 when the first number in the completion is the answer."
    out = []
    for c, a in zip(completions, answer):
        m = re.search(r"-?\d+", _text(c))
        out.append(1.0 if m and m.group() == a else 0.0)
    return out


def short(prompts, completions, **kwargs):
    "Prefer answers of a few words."
    return [max(0.0, 1.0 - len(_text(c).split()) / 16) for c in completions]
