"""DPO throughput and peak GPU memory: ftkit's DPO and TRL's DPOTrainer written as a user would, in one run, on
the same random-init Llama-3.2-1B shape, the same preference pairs and the same LoRA config.

    python bench/dpo_speed.py                       # the 1B matrix (one process per configuration)
    python bench/dpo_speed.py --only ftkit,trl      # some of it
    python bench/dpo_speed.py --one '{"tool": "trl", ...}'

Data: 2,000 pairs of text (random words; the tiny tokenizer), long-tailed lengths: prompt 32-1024 tokens,
chosen and rejected 16-1024 each, independently (log-uniform), prompt + the longer answer <= 2048. Both tools
read the same JSONL of prompt/chosen/rejected strings and tokenize them the same way (TRL's rules). LoRA r=32
on all linear layers, bf16, AdamW, constant LR, micro-batch 4 pairs (8 sequences), sequence_len 2048.

- ftkit: `rl: dpo`; by default on a GPU its policy and reference passes run padding-free (one packed row per
  micro-batch, PyTorch's native varlen attention) and liger's RMSNorm/SwiGLU/RoPE kernels when installed;
  the reference is the adapter-disabled base.
- TRL: `DPOTrainer(model, args=DPOConfig(...), train_dataset=ds, processing_class=tok,
  peft_config=LoraConfig(...))` with its defaults (gradient checkpointing on, padded batches, SDPA), then
  with gradient checkpointing off, then with `use_liger_kernel=True`. (`padding_free=True` is disabled in
  TRL >= 1.16: it warns and pads; the run with it is kept to show that.)

Useful tokens/s count the non-pad tokens of the 2 x micro-batch sequences (prompt + answer), after 3 warm-up
steps. MFU counts 6N FLOPs per token (policy forward and input gradients 4N, reference forward 2N) plus the
attention terms, against 790 TFLOP/s. Results go to bench/results/dpo-speed.jsonl and a table."""

import argparse, json, math, os, random, subprocess, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_speed import SHAPES, PEAK, model_dir  # noqa: E402  (the same model shapes, built the same way)

WORK = Path(os.environ.get('FTKIT_BENCH_DIR', '/tmp/ftkit-bench'))
WORDS = (
    "the of and to in is was for on that with as by at from his her they this which be or an are not have had "
    "one all were we when there can more been if no would so what out up into time only new some could these two "
    "may first then do any like my now over such our man me even most made after also did many before must "
    "through back years where much your way well down should because each just those people how too little state "
    "good very make world still own see men work long get here between both life being under never day same "
    "another know while last might us great old year off come since against go came right used take three"
).split()


def tok_lengths(n, lo, hi, r):
    return [int(math.exp(r.uniform(math.log(lo), math.log(hi)))) for _ in range(n)]


def data_file(n=2000, seq=2048):
    "Pairs of random-word text whose tokenized lengths are long-tailed (measured with the model's tokenizer)."
    p = WORK / f'pairs-{n}-{seq}.jsonl'
    if p.exists():
        return p
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir('llama-1b'))
    r = random.Random(2)
    per_word = len(tok(' '.join(WORDS))['input_ids']) / len(WORDS)
    text = lambda k: ' '.join(r.choice(WORDS) for _ in range(max(1, int(k / per_word))))
    WORK.mkdir(parents=True, exist_ok=True)
    with open(p, 'w') as f:
        kept = 0
        while kept < n:
            lp, lc, lr = tok_lengths(1, 32, 1024, r)[0], *tok_lengths(2, 16, 1024, r)
            row = dict(prompt=text(lp) + '\n', chosen=text(lc), rejected=text(lr))
            n_p = len(tok(row['prompt'])['input_ids'])
            if n_p + max(len(tok(row['chosen'])['input_ids']), len(tok(row['rejected'])['input_ids'])) + 1 > seq:
                continue
            f.write(json.dumps(row) + '\n')
            kept += 1
    return p


def flops_per_token(shape, mean_ctx):
    s = SHAPES[shape]
    H, L, V, I = s['hidden_size'], s['num_hidden_layers'], s['vocab_size'], s['intermediate_size']
    kv = s['num_key_value_heads'] * s['head_dim']
    n = L * (H * H * 2 + 2 * H * kv + 3 * H * I) + V * H
    return 6 * n + 4 * 4 * L * H * mean_ctx  # attention: 3x for the policy (fwd + bwd), 1x for the reference


def run_one(c):
    import torch

    shape, seq, steps, mb = c['shape'], c['seq'], c.get('steps', 20), c['mb']
    d, data = model_dir(shape), data_file(seq=seq)
    torch.cuda.reset_peak_memory_stats()
    if c['tool'] == 'ftkit':
        from ftkit.training import train

        cfg = dict(
            base_model=str(d),
            rl='dpo',
            rl_beta=0.1,
            adapter='lora',
            lora_r=32,
            lora_alpha=64,
            lora_dropout=0.0,
            lora_target_linear=True,
            datasets=[dict(path=str(data))],  # prompt/chosen/rejected strings, used as they are
            sequence_len=seq,
            micro_batch_size=mb,
            max_steps=steps,
            learning_rate=1e-5,
            lr_scheduler='constant',
            bf16=True,
            save_strategy='no',
            gradient_checkpointing=bool(c.get('gc')),
            output_dir=str(WORK / 'runs' / c['name']),
            logging_steps=1,
            dataset_prepared_path=str(WORK / 'prep'),
            optimizer='adamw_torch_fused',
        )
        if c.get('padding_free') is not None:
            cfg['dpo_padding_free'] = c['padding_free']
        if c.get('liger') is not None:
            cfg.update(liger_rope=c['liger'], liger_rms_norm=c['liger'], liger_glu_activation=c['liger'])
        r = train(cfg, log=None)
        rows = [m for m in r.metrics if 'loss' in m]
        at3 = next(m for m in rows if m['step'] >= 3)
        tok, secs, loss = rows[-1]['tokens'] - at3['tokens'], rows[-1]['elapsed_s'] - at3['elapsed_s'], r.losses[-1]
    else:
        from datasets import load_dataset
        from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
        from peft import LoraConfig
        from trl import DPOConfig, DPOTrainer

        ds = load_dataset('json', data_files=str(data), split='train')
        model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.bfloat16, device_map={'': 0})
        tk = AutoTokenizer.from_pretrained(d)
        clock = {}

        class Clock(TrainerCallback):
            def on_step_begin(self, args, state, control, **k):
                if state.global_step == 3:
                    torch.cuda.synchronize()
                    clock['t0'], clock['n0'] = time.perf_counter(), trainer._total_train_tokens

            def on_train_end(self, args, state, control, **k):
                torch.cuda.synchronize()
                clock['secs'], clock['tok'] = time.perf_counter() - clock['t0'], trainer._total_train_tokens - clock['n0']

        kw = dict(gradient_checkpointing=c['gc']) if c.get('gc') is not None else {}  # default: TRL's (on)
        if c.get('liger'):
            kw['use_liger_kernel'] = True
        if c.get('padding_free'):
            kw['padding_free'] = True
        args = DPOConfig(
            output_dir=str(WORK / 'runs' / c['name']),
            per_device_train_batch_size=mb,
            max_steps=steps,
            learning_rate=1e-5,
            lr_scheduler_type='constant',
            beta=0.1,
            max_length=seq,
            logging_steps=1,
            save_strategy='no',
            report_to=[],
            dataset_num_proc=8,
            **kw,
        )
        peft = LoraConfig(r=32, lora_alpha=64, lora_dropout=0.0, target_modules='all-linear', task_type='CAUSAL_LM')
        trainer = DPOTrainer(
            model=model, args=args, train_dataset=ds, processing_class=tk, peft_config=peft, callbacks=[Clock()]
        )
        out = trainer.train()
        tok, secs, loss = clock['tok'], clock['secs'], out.training_loss
    tps = tok / secs
    ctx = 700.0  # mean causal context of a token in these pairs (prompt ~ 250 + answers ~ 250, roughly)
    res = dict(
        name=c['name'],
        tool=c['tool'],
        shape=shape,
        seq=seq,
        mb=mb,
        gc=c.get('gc'),
        liger=c.get('liger'),
        padding_free=c.get('padding_free'),
        tokens_per_s=round(tps),
        peak_gib=round(torch.cuda.max_memory_allocated() / 2**30, 1),
        mfu=round(tps * flops_per_token(shape, ctx) / PEAK, 3),
        loss=round(float(loss), 4),
        device=torch.cuda.get_device_name(0),
    )
    print('RESULT ' + json.dumps(res), flush=True)


MATRIX = [
    dict(name='trl', tool='trl'),  # as a user writes it: TRL's defaults (gradient checkpointing on)
    dict(name='ftkit', tool='ftkit'),  # padding-free + varlen (+ liger kernels when installed), no checkpointing
    dict(name='trl-nogc', tool='trl', gc=False),
    dict(name='ftkit-gc', tool='ftkit', gc=True),
    dict(name='trl-liger', tool='trl', gc=False, liger=True),
    dict(name='ftkit-padded', tool='ftkit', padding_free=False),
    dict(name='trl-padding-free', tool='trl', gc=False, padding_free=True),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--one')
    ap.add_argument('--steps', type=int, default=20)
    ap.add_argument('--mb', type=int, default=4)
    ap.add_argument('--only', help="comma-separated names from the matrix")
    a = ap.parse_args()
    if a.one:
        return run_one(json.loads(a.one))
    out = Path(os.environ.get('FTKIT_BENCH_RESULTS', 'bench/results/dpo-speed.jsonl'))
    out.parent.mkdir(parents=True, exist_ok=True)
    results = []
    for c in MATRIX:
        if a.only and c['name'] not in a.only.split(','):
            continue
        c = dict(dict(shape='llama-1b', seq=2048, mb=a.mb, steps=a.steps), **c)
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
    for f, t in (('ftkit', 'trl'), ('ftkit', 'trl-nogc'), ('ftkit', 'trl-liger'), ('ftkit-gc', 'trl')):
        if f in by and t in by:
            print(
                f"{f} vs {t}: {by[f]['tokens_per_s'] / by[t]['tokens_per_s']:.2f}x tokens/s "
                f"at {by[f]['peak_gib'] / by[t]['peak_gib']:.2f}x peak memory"
            )


if __name__ == '__main__':
    main()
