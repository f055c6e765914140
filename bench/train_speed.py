"""Training throughput, peak GPU memory, MFU and loss: ftkit and the tools a user would otherwise pick (TRL's
SFTTrainer, TRL + liger, Unsloth), in one run, on the same random-init model shapes, the same data, the same LoRA
config, counted the same way.

    python bench/train_speed.py --matrix 1b       # Llama-3.2-1B shape, LoRA r=32 all-linear, seq 2048, 8 bins a step
    python bench/train_speed.py --matrix 8b       # Llama-3.1-8B shape, seq 4096, 2 bins a step; QLoRA 8B
    python bench/train_speed.py --part 1 --budget 420 --sites trl=/tmp/siteA,unsloth=/tmp/siteB:/tmp/siteA
    python bench/train_speed.py --one '{"name": ..., "tool": "ftkit", "shape": "llama-1b", ...}'   # one configuration
    python bench/train_speed.py --table results.jsonl                                             # the table again

Each configuration runs in its own process (liger and Unsloth patch model classes globally), with PYTHONPATH set to
the site folder its tool needs (`--sites`; Unsloth pins trl <= 1.15 and datasets < 5). Data: 3,000 pre-tokenized
documents with long-tailed lengths (log-uniform between 64 and sequence_len), every token trained. Every tool packs
padding-free: ftkit its bins with PyTorch's native varlen attention; TRL `packing=True` (rows of seq x mb tokens,
SDPA); Unsloth `packing=True` (mb bins of seq tokens).

Counted the same way for every tool (`StepClock`): a forward pre-hook on the decoder stack counts the real tokens of
each training forward (attention_mask.sum() with a 2-D mask, else input_ids.numel()) and stamps the time after
synchronising (the trainers log every step's loss, so the GPU is idle there already). `tokens_per_s` is the steady
state: from the start of step warmup+1 to the start of the last step (compilation and autotuning happen in the
first steps); `tokens_per_s_all` counts from the first step. MFU counts 4N FLOPs per token (frozen-base LoRA:
forward and input gradients) plus 3 x 4·L·H·c for attention (c: the mean causal context of a token), against the
790 TFLOP/s bf16 matmul peak measured on one H200. Results: one JSON line each in `--out` (default
bench/results/train-speed.jsonl), and a table."""

import argparse, json, math, os, random, subprocess, sys, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
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
    'llama-tiny': dict(  # for a smoke test of this script on a machine without a GPU
        vocab_size=128256,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        tie_word_embeddings=True,
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
    tmp = p.with_suffix('.tmp')
    with open(tmp, 'w') as f:
        for l in lengths(3000, 64, seq):
            f.write(json.dumps(dict(input_ids=[r.randrange(128256) for _ in range(l)])) + '\n')
    tmp.rename(p)
    return p


def model_dir(shape):
    "A random-init model of `shape` in bf16, saved once, with a tokenizer for its pad/eos ids."
    d = WORK / shape
    if (d / 'config.json').exists():
        return d
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, AutoTokenizer
    from ftkit.tiny import tiny_model

    cfg = LlamaConfig(
        max_position_embeddings=8192, rope_parameters=dict(rope_type='default', rope_theta=500000.0), **SHAPES[shape]
    )
    with torch.device('cuda' if torch.cuda.is_available() else 'cpu'):
        torch.manual_seed(0)
        m = LlamaForCausalLM(cfg).to(torch.bfloat16)
    tmp = d.with_name(d.name + '.tmp')
    m.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(tiny_model('llama', log=None)).save_pretrained(tmp)
    tmp.rename(d)
    del m
    if torch.cuda.is_available():
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


def cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def gib(x) -> float:
    return round(x / 2**30, 1)


class StepClock:
    """Real tokens and a timestamp at each training forward of the decoder stack (the module holding `layers` and
    `embed_tokens`): the same count for every tool, wherever its trainer counts."""

    def __init__(self, model):
        dec = next(m for m in model.modules() if hasattr(m, 'layers') and hasattr(m, 'embed_tokens'))
        dec.register_forward_pre_hook(self._hook, with_kwargs=True)
        self.times, self.tokens = [], []

    def _hook(self, module, args, kwargs):
        import torch

        if not (torch.is_grad_enabled() and module.training):
            return
        ids = kwargs.get('input_ids', args[0] if args else None)
        shape = tuple(ids.shape) if ids is not None else tuple(kwargs['inputs_embeds'].shape[:-1])
        am = kwargs.get('attention_mask')
        real = isinstance(am, torch.Tensor) and am.dim() == 2 and tuple(am.shape) == shape
        n = int(am.sum()) if real else math.prod(shape)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter())
        self.tokens.append(n)

    def window(self, warmup: int):
        "(tokens, seconds) of the steps after `warmup` up to the last one whose end is seen (the start of the next)."
        if len(self.times) <= warmup + 1:
            raise RuntimeError(f"only {len(self.times)} training forwards were seen; need more than {warmup + 1}")
        return sum(self.tokens[warmup : len(self.times) - 1]), self.times[-1] - self.times[warmup]


def ftkit_config(c: dict):
    "The ftkit `Config` of a benchmark configuration (the same model, data, LoRA and schedule as the peers)."
    from ftkit.config import load_config

    d = dict(
        base_model=str(model_dir(c['shape'])),
        adapter='qlora' if c.get('qlora') else 'lora',
        load_in_4bit=bool(c.get('qlora')),
        lora_r=32,
        lora_alpha=64,
        lora_dropout=0.0,
        lora_target_linear=True,
        datasets=[dict(path=str(data_file(c['seq'])))],
        sequence_len=c['seq'],
        sample_packing=True,
        micro_batch_size=c['mb'],
        max_steps=c['steps'],
        learning_rate=1e-4,
        lr_scheduler='constant',
        bf16=cuda(),
        save_strategy='no',
        gradient_checkpointing=c.get('gc') in (True, 'saveoncpu'),
        output_dir=str(WORK / 'runs' / c['name']),
        logging_steps=1,
        dataset_prepared_path=str(WORK / 'prep'),
        optimizer='adamw_torch_fused',
    )
    if c.get('gc') == 'saveoncpu':  # transformers' own offload: torch's save_on_cpu around each checkpoint
        d['gradient_checkpointing_kwargs'] = {'use_reentrant': False, 'offload': True}
    if c.get('liger') is not None:
        d.update(
            {
                k: c['liger']
                for k in ('liger_rope', 'liger_rms_norm', 'liger_glu_activation', 'liger_fused_linear_cross_entropy')
            }
        )
    fused = c.get('fused', None if c.get('qlora') else True)  # ftkit's runs fuse unless named otherwise (QLoRA: opt-in)
    if fused is not None:
        d.update({k: fused for k in ('lora_qkv_kernel', 'lora_o_kernel', 'lora_mlp_kernel')})
    cfg = load_config(d, warn=False)
    if c.get('gc') == 'offload':  # the value the config keeps once it accepts it (today it reads it as `true`)
        cfg = cfg.model_copy(update=dict(gradient_checkpointing='offload'))
    return cfg


def run_ftkit(c: dict) -> dict:
    import torch
    import ftkit.model, ftkit.fused
    from ftkit.training import train

    if c.get('norm_recompute') is not None:
        ftkit.fused.RECOMPUTE_NORM = c['norm_recompute']
    cfg = ftkit_config(c)
    held, load = {}, ftkit.model.load_model

    def load_and_count(*a, **k):  # the clock goes on the model train() loads
        m = load(*a, **k)
        held['clock'], held['model'] = StepClock(m), m
        return m

    ftkit.model.load_model = load_and_count
    if cuda():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    r = train(cfg, log=None)
    m = held['model']
    off = getattr(m, '_ftkit_offloader', None)
    versions = dict(
        torch=torch.__version__,
        transformers=__import__('transformers').__version__,
        peft=__import__('peft').__version__,
    )
    return dict(
        losses=r.losses,
        load_s=None,
        run_s=round(time.perf_counter() - t0, 1),
        clock=held['clock'],
        versions=versions,
        attn=getattr(m.config, '_attn_implementation', None),
        fused_summary=getattr(m, '_ftkit_fused', None),
        offloaded_gib=round(off.offloaded / 2**30, 2) if off is not None else None,
    )


def run_one(c: dict):
    "Run one configuration in this process and print its RESULT line."
    import torch

    c = {**DEFAULTS, **c}
    out = run_ftkit(c) if c['tool'] == 'ftkit' else __import__('peers').run(c)
    clock, losses, w = out.pop('clock'), out.pop('losses'), c['warmup']
    tok, secs = clock.window(w)
    tok_all, secs_all = clock.window(0)
    tps = tok / secs
    res = dict(
        name=c['name'],
        tool=c['tool'],
        shape=c['shape'],
        seq=c['seq'],
        mb=c['mb'],
        gc=c.get('gc', False),
        qlora=bool(c.get('qlora')),
        liger=c.get('liger'),
        steps=c['steps'],
        warmup=w,
        tokens_per_s=round(tps),
        tokens_per_s_all=round(tok_all / secs_all),
        peak_gib=gib(torch.cuda.max_memory_allocated()) if cuda() else 0.0,
        reserved_gib=gib(torch.cuda.max_memory_reserved()) if cuda() else 0.0,
        mfu=round(tps * flops_per_token(c['shape'], c['seq']) / PEAK, 3),
        loss=round(float(losses[-1]), 4),
        loss_last10=round(sum(losses[-10:]) / len(losses[-10:]), 4),
        first_loss=round(float(losses[0]), 4),
        tokens_timed=tok,
        secs_timed=round(secs, 2),
        forwards=len(clock.times),
        gpu=torch.cuda.get_device_name(0) if cuda() else 'cpu',
    )
    res.update({k: v for k, v in c.items() if k in ('fused', 'norm_recompute', 'mode')})
    res.update(out)
    print('RESULT ' + json.dumps(res), flush=True)


DEFAULTS = dict(steps=60, warmup=10)
M1 = dict(shape='llama-1b', seq=2048, mb=8)
M8 = dict(shape='llama-8b', seq=4096, mb=2)
# part: which call of bench/gpu_batch.sh runs it (1: the 1B comparison; 2: the 8B shape; 3: levers and the rest), in
# this order; est: the seconds it takes there (process start, model load, steps), to skip what cannot finish in a call
CONFIGS = [
    dict(name='ftkit-1b', tool='ftkit', part=1, est=70, **M1),
    dict(name='unsloth-1b', tool='unsloth', part=1, est=90, **M1),
    dict(name='unsloth-1b-gc', tool='unsloth', gc='unsloth', part=1, est=100, **M1),
    dict(name='trl-liger-1b', tool='trl', liger=True, steps=40, part=1, est=90, **M1),
    dict(name='ftkit-1b-offload', tool='ftkit', gc='offload', part=1, est=70, **M1),
    dict(name='ftkit-1b-nofused', tool='ftkit', fused=False, part=1, est=60, **M1),
    dict(
        name='ftkit-8b', tool='ftkit', steps=30, part=2, est=130, **M8
    ),  # the first 8B run also writes the model (16 GB)
    dict(name='ftkit-8b-offload', tool='ftkit', gc='offload', steps=30, part=2, est=75, **M8),
    dict(name='unsloth-8b-gc', tool='unsloth', gc='unsloth', steps=30, part=2, est=100, **M8),
    dict(name='ftkit-qlora-8b-fused', tool='ftkit', gc=True, qlora=True, fused=True, steps=30, part=2, est=100, **M8),
    dict(name='unsloth-qlora-8b', tool='unsloth', gc='unsloth', qlora=True, steps=30, part=2, est=110, **M8),
    dict(name='ftkit-qlora-8b', tool='ftkit', gc=True, qlora=True, steps=30, part=3, est=100, **M8),
    dict(name='ftkit-1b-gc', tool='ftkit', gc=True, steps=40, part=3, est=55, **M1),
    dict(name='ftkit-1b-gc-saveoncpu', tool='ftkit', gc='saveoncpu', steps=40, part=3, est=60, **M1),
    dict(name='ftkit-1b-offload-nofused', tool='ftkit', gc='offload', fused=False, steps=40, part=3, est=60, **M1),
    dict(name='ftkit-1b-nonorm', tool='ftkit', norm_recompute=False, steps=40, part=3, est=50, **M1),
    dict(name='ftkit-1b-noliger', tool='ftkit', liger=False, steps=40, part=3, est=55, **M1),
    dict(name='trl-1b', tool='trl', steps=30, part=3, est=90, **M1),
    dict(name='ftkit-8b-nofused', tool='ftkit', fused=False, steps=30, part=3, est=80, **M8),
    dict(name='ftkit-8b-gc', tool='ftkit', gc=True, steps=30, part=3, est=80, **M8),
    dict(name='trl-liger-8b-gc', tool='trl', liger=True, gc=True, steps=20, part=3, est=120, **M8),
    dict(name='unsloth-8b', tool='unsloth', steps=30, part=3, est=110, **M8),
]
MATRICES = {
    '1b': [c for c in CONFIGS if c['shape'] == 'llama-1b'],
    '8b': [c for c in CONFIGS if c['shape'] == 'llama-8b'],
}

# what each comparison line of the table checks: (ftkit run, peer run, target speed ratio, target memory ratio)
TARGETS = [
    ('ftkit-1b', 'unsloth-1b', 1.5, 1.0),
    ('ftkit-1b-offload', 'unsloth-1b-gc', 1.3, 1.2),
    ('ftkit-8b-offload', 'unsloth-8b-gc', 1.5, 1.0),
    ('ftkit-qlora-8b-fused', 'unsloth-qlora-8b', 1.0, 1.0),
    ('ftkit-qlora-8b', 'unsloth-qlora-8b', 1.0, 1.0),
    ('ftkit-1b', 'trl-liger-1b', None, None),
    ('ftkit-1b', 'trl-1b', None, None),
    ('ftkit-1b', 'ftkit-1b-nofused', None, None),
    ('ftkit-1b-offload', 'ftkit-1b-gc-saveoncpu', None, None),
    ('ftkit-8b', 'ftkit-8b-nofused', None, None),
    ('ftkit-qlora-8b-fused', 'ftkit-qlora-8b', None, None),
]
FLOORS = [  # (run, tokens/s it must reach, where the figure comes from)
    ('ftkit-8b', 12000, '8B without checkpointing (48% MFU)'),
    ('ftkit-qlora-8b-fused', 1.5 * 4542, 'QLoRA 8B: 1.5x the stock peft path'),
    ('ftkit-qlora-8b', 1.5 * 4542, 'QLoRA 8B: 1.5x the stock peft path'),
]


def run_batch(configs, sites: dict, out: Path, budget: float, log=print, copy: Path = None):
    "Each configuration in its own process and environment, within `budget` seconds; a failure is reported and skipped."
    t_end = time.time() + budget
    out.parent.mkdir(parents=True, exist_ok=True)
    for c in configs:
        left = t_end - time.time()
        if c.get('est', 60) > left:
            log(f"SKIP {c['name']}: needs about {c['est']}s, {left:.0f}s left in this call")
            continue
        env = dict(os.environ)
        env['PYTHONPATH'] = ':'.join(p for p in (sites.get(c['tool'], ''), str(HERE.parent), str(HERE)) if p)
        spec = {k: v for k, v in c.items() if k not in ('part', 'est')}
        log(f"RUN {c['name']} ({c['tool']}, up to {min(left, 3 * c.get('est', 60)):.0f}s): {json.dumps(spec)}")
        t0 = time.time()
        try:
            p = subprocess.run(
                [sys.executable, str(HERE / 'train_speed.py'), '--one', json.dumps(spec)],
                env=env, capture_output=True, text=True, timeout=min(left, 3 * c.get('est', 60)),
            )  # fmt: skip
            text, rc = p.stdout + p.stderr, p.returncode
        except subprocess.TimeoutExpired as e:
            text, rc = (
                (e.stdout or b'').decode(errors='replace') + (e.stderr or b'').decode(errors='replace'),
                'timeout',
            )
        log(text, full=True)
        line = next((l for l in text.splitlines() if l.startswith('RESULT ')), None)
        row = (
            json.loads(line[7:]) if line else dict(name=c['name'], tool=c['tool'], error=f"rc={rc}", tail=text[-1500:])
        )
        row['wall_s'] = round(time.time() - t0)
        for path in (out, copy):
            if path is not None:
                with open(path, 'a') as f:
                    f.write(json.dumps(row) + '\n')
        log(
            f"{'FAILED' if not line else 'DONE'} {c['name']} in {row['wall_s']}s"
            + ('' if line else f":\n{text[-2500:]}")
        )


def table(rows) -> str:
    "The results as a table, then each target's comparison."
    by = {}
    for r in rows:
        by[r['name']] = r  # the last run of a name wins
    lines = [
        f"{'run':<26} {'tok/s':>8} {'(all)':>8} {'peak GiB':>9} {'MFU':>6} {'loss':>7} {'last10':>7}  notes",
    ]
    for r in by.values():
        if 'error' in r:
            lines.append(f"{r['name']:<26} {'failed: ' + r['error']}")
            continue
        note = ' '.join(
            x
            for x in (
                f"gc={r['gc']}" if r.get('gc') else '',
                'qlora' if r.get('qlora') else '',
                (r.get('fused_summary') or '')[:60] if r['tool'] == 'ftkit' else '',
                f"offloaded {r['offloaded_gib']} GiB/run" if r.get('offloaded_gib') else '',
                f"{r['steps']} steps" if r['steps'] != DEFAULTS['steps'] else '',
            )
            if x
        )
        lines.append(
            f"{r['name']:<26} {r['tokens_per_s']:>8,} {r['tokens_per_s_all']:>8,} {r['peak_gib']:>9} {r['mfu']:>6.1%} "
            f"{r['loss']:>7.3f} {r['loss_last10']:>7.3f}  {note}"
        )
    for a, b, speed, mem in TARGETS:
        if a in by and b in by and 'error' not in by[a] and 'error' not in by[b]:
            s = by[a]['tokens_per_s'] / by[b]['tokens_per_s']
            m = by[a]['peak_gib'] / by[b]['peak_gib']
            verdict = ''
            if speed is not None:
                ok = s >= speed and m <= mem
                verdict = f"  target >= {speed}x speed at <= {mem}x memory: {'MET' if ok else 'not met'}"
            lines.append(f"{a} vs {b}: {s:.2f}x tokens/s at {m:.2f}x peak memory{verdict}")
    for a, floor, what in FLOORS:
        if a in by and 'error' not in by[a]:
            t = by[a]['tokens_per_s']
            lines.append(f"{a}: {t:,} tokens/s, target {floor:,.0f} ({what}): {'MET' if t >= floor else 'not met'}")
    return '\n'.join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--matrix', choices=sorted(MATRICES))
    ap.add_argument('--part', type=int, help="the configurations of one call of bench/gpu_batch.sh (1, 2 or 3)")
    ap.add_argument('--one', help="one configuration (JSON), in this process")
    ap.add_argument('--only', help="comma-separated names")
    ap.add_argument('--steps', type=int, help="override the steps of every configuration")
    ap.add_argument(
        '--budget', type=float, default=1e9, help="seconds for the whole run: later configurations are skipped"
    )
    ap.add_argument('--sites', default='', help="tool=PYTHONPATH,... (e.g. unsloth=/tmp/siteB:/tmp/siteA)")
    ap.add_argument('--out', default=os.environ.get('FTKIT_BENCH_RESULTS', 'bench/results/train-speed.jsonl'))
    ap.add_argument('--log', help="also append every process's full output to this file")
    ap.add_argument('--table', help="print the table of a results file")
    ap.add_argument('--missing', help="first run the configurations of earlier parts that this results file lacks")
    ap.add_argument('--copy', help="append each result to this file too (every part's results on one machine)")
    a = ap.parse_args()
    if a.one:
        return run_one(json.loads(a.one))
    out = Path(a.out)
    if a.table:
        return print(table([json.loads(l) for l in open(a.table) if l.strip()]))
    configs = MATRICES[a.matrix] if a.matrix else [c for c in CONFIGS if a.part is None or c['part'] == a.part]
    if a.only:
        names = a.only.split(',')
        configs = [c for c in CONFIGS if c['name'] in names]
    if a.missing and a.part:
        done = {json.loads(l).get('name') for l in open(a.missing) if l.strip()} if Path(a.missing).exists() else set()
        configs = [c for c in CONFIGS if c['part'] < a.part and c['name'] not in done] + configs
    if a.steps:
        configs = [dict(c, steps=a.steps) for c in configs]
    sites = dict(kv.split('=', 1) for kv in a.sites.split(',') if '=' in kv)
    if a.log:
        Path(a.log).parent.mkdir(parents=True, exist_ok=True)
    logf = open(a.log, 'a') if a.log else None

    def log(text, full=False):
        if logf:
            logf.write(text + '\n')
            logf.flush()
        if not full:
            print(text, flush=True)

    first = sum(1 for _ in open(out)) if out.exists() else 0
    run_batch(configs, sites, out, a.budget, log, Path(a.copy) if a.copy else None)
    rows = [json.loads(l) for l in list(open(out))[first:] if l.strip()] if out.exists() else []
    print(table(rows), flush=True)


if __name__ == '__main__':
    main()
