"""Training throughput and peak GPU memory: ftkit and TRL's SFTTrainer (the common peer), in one run, on the
same random-init model shape, the same data and the same LoRA config.

    python bench/train_speed.py --matrix 1b              # Llama-3.2-1B shape, LoRA r=32 all-linear, seq 2048
    python bench/train_speed.py --matrix 8b              # Llama-3.1-8B shape, LoRA, seq 4096; QLoRA 8B
    python bench/train_speed.py --one '{"tool": "ftkit", "shape": "llama-1b", ...}'   # a single configuration

Each configuration runs in its own process (liger patches model classes globally). Data: 3,000 pre-tokenized
documents with long-tailed lengths (log-uniform between 64 and sequence_len), every token trained. Both tools
pack: TRL with `packing=True` (padding-free rows of max_length, position ids restarting per document, SDPA
with the block mask), ftkit with its bins and PyTorch's native varlen attention. Useful tokens/s count the
document tokens processed after 3 warm-up steps; MFU counts 4N FLOPs per token (frozen-base LoRA: forward and
input gradients) plus 3 x 4·L·H·c for attention (c: the mean causal context of a token), against a bf16 matmul
peak of 790 TFLOP/s (measured on one H200). Results go to bench/results/train-speed.jsonl and a table."""

import argparse, json, math, os, random, subprocess, sys, time
from pathlib import Path

SHAPES = {
    'llama-1b': dict(
        vocab_size=128256,
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=64,
        tie_word_embeddings=True,
    ),
    'llama-8b': dict(
        vocab_size=128256,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=128,
        tie_word_embeddings=False,
    ),
}
PEAK = 790e12
WORK = Path(os.environ.get('FTKIT_BENCH_DIR', '/tmp/ftkit-bench'))


def lengths(n, lo, hi, seed=0):
    r = random.Random(seed)
    return [int(math.exp(r.uniform(math.log(lo), math.log(hi)))) for _ in range(n)]


def data_file(seq):
    p = WORK / f'docs-{seq}.jsonl'
    if p.exists():
        return p
    WORK.mkdir(parents=True, exist_ok=True)
    r = random.Random(1)
    with open(p, 'w') as f:
        for l in lengths(3000, 64, seq):
            f.write(json.dumps(dict(input_ids=[r.randrange(128256) for _ in range(l)])) + '\n')
    return p


def model_dir(shape):
    "A random-init model of `shape` in bf16, saved once, with a tokenizer for its pad/eos ids."
    d = WORK / shape
    if (d / 'config.json').exists():
        return d
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from ftkit.tiny import tiny_model
    from transformers import AutoTokenizer

    cfg = LlamaConfig(
        max_position_embeddings=8192, rope_parameters=dict(rope_type='default', rope_theta=500000.0), **SHAPES[shape]
    )
    with torch.device('cuda'):
        torch.manual_seed(0)
        m = LlamaForCausalLM(cfg).to(torch.bfloat16)
    m.save_pretrained(d)
    AutoTokenizer.from_pretrained(tiny_model('llama', log=None)).save_pretrained(d)
    del m
    torch.cuda.empty_cache()
    return d


def flops_per_token(shape, seq):
    s = SHAPES[shape]
    H, L, V, I = s['hidden_size'], s['num_hidden_layers'], s['vocab_size'], s['intermediate_size']
    kv = s['num_key_value_heads'] * s['head_dim']
    n = L * (H * H * 2 + 2 * H * kv + 3 * H * I) + V * H  # matmul parameters (attention, MLP, output head)
    ls = lengths(3000, 64, seq)
    ctx = sum(l * l / 2 for l in ls) / sum(ls)  # mean causal context of a token
    return 4 * n + 3 * 4 * L * H * ctx


def run_one(c):
    import torch

    shape, seq, steps = c['shape'], c['seq'], c.get('steps', 18)
    d, data = model_dir(shape), data_file(seq)
    torch.cuda.reset_peak_memory_stats()
    if c['tool'] == 'ftkit':
        from ftkit.training import train

        cfg = dict(
            base_model=str(d),
            adapter='qlora' if c.get('qlora') else 'lora',
            load_in_4bit=bool(c.get('qlora')),
            lora_r=32,
            lora_alpha=64,
            lora_dropout=0.0,
            lora_target_linear=True,
            datasets=[dict(path=str(data))],
            sequence_len=seq,
            sample_packing=True,
            micro_batch_size=c['mb'],
            max_steps=steps,
            learning_rate=1e-4,
            lr_scheduler='constant',
            bf16=True,
            save_strategy='no',
            gradient_checkpointing=bool(c.get('gc')),
            output_dir=str(WORK / 'runs' / c['name']),
            logging_steps=c.get('log', 1),
            dataset_prepared_path=str(WORK / 'prep'),
            optimizer='adamw_torch_fused',
        )
        if c.get('liger') is not None:
            cfg.update(
                liger_rope=c['liger'],
                liger_rms_norm=c['liger'],
                liger_glu_activation=c['liger'],
                liger_fused_linear_cross_entropy=c['liger'],
            )
        r = train(cfg, log=None)
        rows = [m for m in r.metrics if 'loss' in m]
        at3 = next(m for m in rows if m['step'] >= 3)  # the clock starts after the warm-up steps
        tok, secs, loss = rows[-1]['tokens'] - at3['tokens'], rows[-1]['elapsed_s'] - at3['elapsed_s'], r.losses[-1]
    else:
        from datasets import load_dataset
        from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
        from peft import LoraConfig
        from trl import SFTConfig, SFTTrainer

        ds = load_dataset('json', data_files=str(data), split='train')
        kw = {}
        if c.get('qlora'):
            from transformers import BitsAndBytesConfig

            kw['quantization_config'] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type='nf4',
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16,
            )
        model = AutoModelForCausalLM.from_pretrained(
            d, dtype=torch.bfloat16, attn_implementation='sdpa', device_map={'': 0}, **kw
        )
        tk = AutoTokenizer.from_pretrained(d)
        tk.pad_token = tk.pad_token or '<|finetune_right_pad_id|>'
        clock = {}

        class Clock(TrainerCallback):
            def on_step_begin(self, args, state, control, **k):
                if state.global_step == 3:
                    torch.cuda.synchronize()
                    clock['t0'] = time.perf_counter()
                    clock['n0'] = state.num_input_tokens_seen

            def on_train_end(self, args, state, control, **k):
                torch.cuda.synchronize()
                clock['secs'] = time.perf_counter() - clock['t0']
                clock['tok'] = state.num_input_tokens_seen - clock['n0']

        args = SFTConfig(
            output_dir=str(WORK / 'runs' / c['name']),
            per_device_train_batch_size=1,
            max_steps=steps,
            learning_rate=1e-4,
            bf16=True,
            logging_steps=1,
            save_strategy='no',
            report_to=[],
            packing=True,
            max_length=seq * c['mb'],
            gradient_checkpointing=bool(c.get('gc')),
            include_num_input_tokens_seen=True,
            dataset_num_proc=8,
        )
        tr = SFTTrainer(
            model=model,
            args=args,
            train_dataset=ds,
            processing_class=tk,
            callbacks=[Clock()],
            peft_config=LoraConfig(
                r=32, lora_alpha=64, lora_dropout=0.0, target_modules='all-linear', task_type='CAUSAL_LM'
            ),
        )
        out = tr.train()
        tok, secs, loss = clock['tok'], clock['secs'], out.training_loss
    tps = tok / secs
    res = dict(
        name=c['name'],
        tool=c['tool'],
        shape=shape,
        seq=seq,
        mb=c['mb'],
        qlora=bool(c.get('qlora')),
        gc=bool(c.get('gc')),
        liger=c.get('liger'),
        tokens_per_s=round(tps),
        peak_gib=round(torch.cuda.max_memory_allocated() / 2**30, 1),
        mfu=round(tps * flops_per_token(shape, seq) / PEAK, 3),
        loss=round(float(loss), 3),
    )
    print('RESULT ' + json.dumps(res), flush=True)


MATRICES = {
    '1b': [
        dict(name='trl-1b', tool='trl', shape='llama-1b', seq=2048, mb=8),
        dict(name='ftkit-1b', tool='ftkit', shape='llama-1b', seq=2048, mb=8),
        dict(name='ftkit-1b-noliger', tool='ftkit', shape='llama-1b', seq=2048, mb=8, liger=False),
    ],
    '8b': [
        dict(name='ftkit-8b', tool='ftkit', shape='llama-8b', seq=4096, mb=2),
        dict(name='ftkit-8b-gc', tool='ftkit', shape='llama-8b', seq=4096, mb=2, gc=True),
        dict(name='ftkit-qlora-8b', tool='ftkit', shape='llama-8b', seq=4096, mb=2, gc=True, qlora=True),
        dict(name='trl-qlora-8b', tool='trl', shape='llama-8b', seq=4096, mb=2, gc=True, qlora=True),
    ],
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--matrix', choices=sorted(MATRICES))
    ap.add_argument('--one')
    ap.add_argument('--steps', type=int, default=18)
    ap.add_argument('--only', help="comma-separated names from the matrix")
    ap.add_argument(
        '--log', type=int, default=1, help="ftkit's logging_steps (each logged step syncs the host with the GPU)"
    )
    a = ap.parse_args()
    if a.one:
        return run_one(json.loads(a.one))
    out = Path(os.environ.get('FTKIT_BENCH_RESULTS', 'bench/results/train-speed.jsonl'))
    out.parent.mkdir(parents=True, exist_ok=True)
    results = []
    for c in MATRICES[a.matrix]:
        if a.only and c['name'] not in a.only.split(','):
            continue
        c = dict(c, steps=a.steps, log=a.log)
        p = subprocess.run([sys.executable, __file__, '--one', json.dumps(c)], capture_output=True, text=True)
        line = next((l for l in p.stdout.splitlines() if l.startswith('RESULT ')), None)
        if not line:
            print(f"{c['name']} failed:\n{(p.stdout + p.stderr)[-2500:]}", flush=True)
            continue
        r = json.loads(line[7:])
        results.append(r)
        with open(out, 'a') as f:
            f.write(json.dumps(r) + '\n')
        print(
            f"{r['name']:<18} {r['tokens_per_s']:>8,} tok/s  peak {r['peak_gib']:>6} GiB  MFU {r['mfu']:.1%}  loss {r['loss']}",
            flush=True,
        )
    by = {r['name']: r for r in results}
    for f, t in (('ftkit-1b', 'trl-1b'), ('ftkit-1b-noliger', 'trl-1b'), ('ftkit-qlora-8b', 'trl-qlora-8b')):
        if f in by and t in by:
            print(
                f"{f} vs {t}: {by[f]['tokens_per_s'] / by[t]['tokens_per_s']:.2f}x tokens/s at {by[f]['peak_gib'] / by[t]['peak_gib']:.2f}x peak memory"
            )


if __name__ == '__main__':
    main()
