"""ftkit's peers on bench/train_speed.py's model shapes, data, LoRA config and clock: TRL's SFTTrainer (optionally with
`use_liger_kernel`) and Unsloth (FastLanguageModel, its padding-free packing, with or without its offloaded
"unsloth" gradient checkpointing). One configuration per process, started by train_speed.py in the environment
the tool needs (Unsloth pins trl <= 1.15 and datasets < 5, so it has its own site folder):

    PYTHONPATH=/tmp/siteB:/tmp/siteA:. python bench/train_speed.py --one '{"tool": "unsloth", "shape": "llama-1b", ...}'

Counted as for ftkit (train_speed.StepClock): real tokens of each training forward of the decoder stack, time from
the forward after the warm-up steps to the start of the last step's forward; the final and mean-of-last-10 losses."""

import json, time
from pathlib import Path

TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']


def run(c: dict) -> dict:
    "Train the peer configuration `c` (see train_speed.MATRICES) and return its measurements."
    if c['tool'] == 'unsloth':
        import unsloth  # first: it patches transformers, peft and trl when imported
        from unsloth import FastLanguageModel
    import torch, transformers, peft, trl
    from datasets import load_dataset
    import train_speed as ts

    shape, seq, steps, mb = c['shape'], c['seq'], c['steps'], c['mb']
    d, data = ts.model_dir(shape), ts.data_file(seq)
    gpu = torch.cuda.is_available()
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    ds = load_dataset('json', data_files=str(data), split='train')
    gc, qlora = c.get('gc', False), bool(c.get('qlora'))
    t0 = time.perf_counter()
    if c['tool'] == 'unsloth':
        model, tok = FastLanguageModel.from_pretrained(
            str(d), max_seq_length=seq, dtype=torch.bfloat16, load_in_4bit=qlora, local_files_only=True
        )
        model = FastLanguageModel.get_peft_model(
            model, r=32, lora_alpha=64, lora_dropout=0, bias='none', target_modules=TARGETS,
            use_gradient_checkpointing=gc, random_state=0,
        )  # fmt: skip
        peft_config = None
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from peft import LoraConfig

        kw = {}
        if qlora:
            from transformers import BitsAndBytesConfig

            kw['quantization_config'] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type='nf4', bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16,
            )  # fmt: skip
        model = AutoModelForCausalLM.from_pretrained(
            d,
            dtype=torch.bfloat16 if gpu else torch.float32,
            attn_implementation='sdpa',
            device_map={'': 0 if gpu else 'cpu'},
            **kw,
        )
        tok = AutoTokenizer.from_pretrained(d)
        peft_config = LoraConfig(
            r=32, lora_alpha=64, lora_dropout=0.0, target_modules='all-linear', task_type='CAUSAL_LM'
        )
    tok.pad_token = tok.pad_token or '<|finetune_right_pad_id|>'
    load_s = time.perf_counter() - t0
    clock = ts.StepClock(model)

    # TRL: one packed row of seq*mb tokens per step (its best configuration on that machine); Unsloth: mb bins of seq
    mode = c.get('mode', 'bins' if c['tool'] == 'unsloth' else 'pack')
    kw = (
        dict(packing=True, max_length=seq * mb, per_device_train_batch_size=1)
        if mode == 'pack'
        else dict(packing=True, max_length=seq, per_device_train_batch_size=mb)
    )
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        output_dir=str(ts.WORK / 'runs' / c['name']),
        max_steps=steps,
        learning_rate=1e-4,
        bf16=gpu,
        use_cpu=not gpu,
        logging_steps=1,
        save_strategy='no',
        report_to=[],
        gradient_checkpointing=(gc is True and c['tool'] == 'trl'),
        dataset_num_proc=8,
        optim='adamw_torch_fused' if gpu else 'adamw_torch',
        lr_scheduler_type='constant',
        seed=0,
        gradient_accumulation_steps=1,
        **kw,
        **(dict(use_liger_kernel=True) if c.get('liger') else {}),
    )
    tr = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok, peft_config=peft_config)
    tr.train()  # the clock's hook sits on the decoder stack, which TRL's adapter wrapping keeps
    losses = [h['loss'] for h in tr.state.log_history if 'loss' in h]
    versions = dict(
        torch=torch.__version__, transformers=transformers.__version__, peft=peft.__version__, trl=trl.__version__
    )
    if c['tool'] == 'unsloth':
        versions['unsloth'] = unsloth.__version__
    if c.get('liger'):
        from importlib.metadata import version

        versions['liger_kernel'] = version('liger-kernel')
    attn = getattr(getattr(tr.model, 'config', None), '_attn_implementation', None)
    return dict(losses=losses, load_s=round(load_s, 1), clock=clock, versions=versions, attn=attn, mode=mode)


if __name__ == '__main__':
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    import train_speed

    train_speed.run_one(json.loads(sys.argv[1]))
