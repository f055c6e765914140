"""Golden labels for multimodal chats, produced by REAL Axolotl 0.19 code (see make_golden.py for the environment).

Run with Axolotl's environment, after ftkit has written the processor folder and the picture beside this script
(`tests/data/golden/vision/`, made by `write_inputs()` below from ftkit's tiny VLM, with ftkit's environment):

    .venv/bin/python tests/data/golden/make_golden_vision.py --inputs     # ftkit's env: processor + image + rows
    /tmp/axo-venv/bin/python tests/data/golden/make_golden_vision.py      # Axolotl's env: the fixtures

How Axolotl is driven: exactly its multimodal training path for `processor_type: AutoProcessor` with
`skip_prepare_dataset: true`. The rows are read from the JSON-lines file by `datasets` (as Axolotl's loader
reads a local file: absent keys filled with None); the processor is loaded with `AutoProcessor.from_pretrained`
by Axolotl's `load_processor` with the tokenizer from its `load_tokenizer`, the config having gone through
`load_cfg` (validation and normalisation); the chat template text comes
from `axolotl.utils.chat_templates.get_chat_template(<name>)`; the processing strategy from
`axolotl.processing_strategies.get_processing_strategy(processor, template, <name>, ...)` with the dataset's
`roles_to_train` / `train_on_eos` and `train_on_inputs`, as `HFCausalTrainerBuilder.build_collator` passes them;
and the batch from `MultiModalChatDataCollator(tokenizer, strategy)` called on one row at a time (no padding).
Image parts carry an absolute `path`: Axolotl hands parts to transformers, which opens paths relative to the
working directory (ftkit resolves them relative to the data file; absolute paths mean the same to both).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
VISION = HERE / "vision"
CASES = [
    # name, chat_template (Axolotl's named template), dataset options, top-level options
    ("llama3_2_vision_default", "llama3_2_vision", {}, {}),
    ("llama3_2_vision_all_roles", "llama3_2_vision", {"roles_to_train": ["user", "assistant"]}, {}),
    ("llama3_2_vision_eos_none", "llama3_2_vision", {"train_on_eos": "none"}, {}),
    ("llama3_2_vision_eos_last", "llama3_2_vision", {"train_on_eos": "last"}, {}),
    ("llama3_2_vision_inputs", "llama3_2_vision", {}, {"train_on_inputs": True}),
]


def rows(image: str) -> list:
    "The chats of the fixture: one image in a user turn, then multi-turn, then the older `images` column."
    img = {"type": "image", "path": image}
    return [
        {
            "messages": [
                {"role": "user", "content": [img, {"type": "text", "text": "What do you see?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "I see a red circle."}]},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": [img, {"type": "text", "text": "What colour is it?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "It is red."}]},
                {"role": "user", "content": [{"type": "text", "text": "And the shape?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "A circle."}]},
            ]
        },
        {
            "images": [image],
            "messages": [
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe the shape."}]},
                {"role": "assistant", "content": [{"type": "text", "text": "A red circle."}]},
            ],
        },
    ]


def write_inputs():
    "ftkit's side: the tiny VLM's processor (tokenizer, image processor, template) and one picture."
    import random

    from ftkit.vision import shape_image, tiny_vlm
    from transformers import AutoProcessor

    VISION.mkdir(parents=True, exist_ok=True)
    AutoProcessor.from_pretrained(tiny_vlm()).save_pretrained(VISION / "processor")
    (VISION / "processor" / "config.json").write_text((tiny_vlm() / "config.json").read_text())  # Axolotl reads it
    shape_image("circle", "red", random.Random(0)).save(VISION / "red-circle.png")
    print("wrote", VISION)


def run_axolotl():
    import datasets
    import transformers
    import axolotl
    from axolotl.cli.config import load_cfg
    from axolotl.loaders import load_processor, load_tokenizer
    from axolotl.utils.dict import DictDefault
    from axolotl.processing_strategies import get_processing_strategy
    from axolotl.utils.chat_templates import get_chat_template
    from axolotl.utils.collators.mm_chat import MultiModalChatDataCollator

    image = str(VISION / "red-circle.png")
    data = VISION / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows(image)))
    for name, template, ds_opts, top in CASES:
        cfg = load_cfg(
            DictDefault(
                dict(
                    base_model=str(VISION / "processor"),
                    processor_type="AutoProcessor",
                    skip_prepare_dataset=True,
                    remove_unused_columns=False,
                    sample_packing=False,
                    chat_template=template,
                    datasets=[dict(path=str(data), type="chat_template", **ds_opts)],
                    learning_rate=1e-4,
                    micro_batch_size=1,
                    num_epochs=1,
                    output_dir="/tmp/axo-golden-vision",
                    **top,
                )
            )
        )
        tok = load_tokenizer(cfg)
        processor = load_processor(cfg, tok)
        strategy = get_processing_strategy(
            processor,
            get_chat_template(template),
            template,
            train_on_inputs=bool(top.get("train_on_inputs")),
            roles_to_train=ds_opts.get("roles_to_train"),
            train_on_eos=ds_opts.get("train_on_eos"),
        )
        collator = MultiModalChatDataCollator(tokenizer=tok, processing_strategy=strategy)
        ds = datasets.load_dataset("json", data_files=[str(data)], split="train")
        out = []
        for i in range(len(ds)):
            b = collator([ds[i]])
            out.append(
                dict(
                    index=i,
                    input_ids=b["input_ids"][0].tolist(),
                    labels=b["labels"][0].tolist(),
                    pixel_values_shape=list(b["pixel_values"].shape),
                    pad_token=[tok.pad_token, tok.pad_token_id],
                )
            )
        fx = dict(
            case=name,
            generator="axolotl " + axolotl.__version__ + ", transformers " + transformers.__version__,
            strategy=type(strategy).__name__,
            chat_template=template,
            dataset_config=dict(type="chat_template", chat_template=template, **ds_opts),
            config=top,
            image="red-circle.png",
            rows=rows("red-circle.png"),
            expected=out,
        )
        (VISION / f"{name}.json").write_text(json.dumps(fx, indent=1) + "\n")
        print(name, type(strategy).__name__, [sum(l != -100 for l in r["labels"]) for r in out])
    data.unlink()


if __name__ == "__main__":
    write_inputs() if "--inputs" in sys.argv else run_axolotl()
