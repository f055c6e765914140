"""Preprocessing throughput and peak memory: ftkit, and Axolotl in the same run when its Python is given.

    python bench/preprocess.py                                   # ftkit only
    python bench/preprocess.py --axolotl-python /path/to/axolotl-venv/bin/python

Synthetic chat (OpenAI `messages`) and alpaca sets are generated with ftkit's seeded sample generator
(20k and 200k conversations of 1-3 exchanges, 20k conversations of 8 exchanges, 20k alpaca rows by
default) and tokenized with the tiny Llama tokenizer.
Each tool prepares each set from an empty cache in a fresh process with the same number of worker
processes, as `ftkit preprocess` / `axolotl preprocess` would (load, tokenize and label, filter, save).
Prints rows/s, tokens/s and peak resident memory (the main process and the largest worker), and writes
the table as JSON.

    python bench/preprocess.py --curve                           # peak memory against the number of rows

`--curve` prepares 20k, 200k and 2M generated chats (`--curve-sizes`), each from an empty cache in its own
process, and prints the curve: wall time, rows/s, and the peak resident memory of the main process (VmHWM,
which counts the pages of memory-mapped Arrow files it touched) beside its peak anonymous memory (heap, the
part that could exhaust RAM), sampled every 50 ms."""

import argparse, json, os, resource, shutil, subprocess, sys, tempfile, time
from pathlib import Path


def _hwm_mb():
    "Peak resident memory of this process (VmHWM): unlike ru_maxrss it does not carry over the parent's peak across fork+exec."
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) / 1024
    return 0.0


HERE = Path(__file__).resolve().parent


def _peak_mb():
    me = _hwm_mb()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return round(me), round(kids)


def _anon_mb():
    "Resident anonymous memory of this process now (heap and the like; not the pages of memory-mapped files)."
    for line in open('/proc/self/status'):
        if line.startswith('RssAnon:'):
            return int(line.split()[1]) / 1024
    return 0.0


def _watch_anon(peak):
    "Sample `_anon_mb` every 50 ms into `peak[0]` (a daemon thread)."
    import threading

    def loop():
        while True:
            peak[0] = max(peak[0], _anon_mb())
            time.sleep(0.05)

    threading.Thread(target=loop, daemon=True).start()


def run_ftkit(cfg_path):
    "Runs inside a fresh process: prepare the dataset of `cfg_path` with ftkit; print one JSON line."
    anon = [0.0]
    _watch_anon(anon)
    t0 = time.time()
    import datasets, transformers  # imported before the clock starts, as the peer's are
    from ftkit.data import preprocess

    t1 = time.time()
    dd, stats = preprocess(cfg_path, log=None)
    t2 = time.time()
    anon[0] = max(anon[0], _anon_mb())
    print(
        json.dumps(
            dict(
                rows_in=stats['rows_in'],
                rows_out=stats['rows_out'],
                tokens=stats['tokens'],
                seconds=round(t2 - t1, 2),
                import_s=round(t1 - t0, 2),
                peak_mb=_peak_mb(),
                peak_anon_mb=round(anon[0]),
            )
        )
    )


def long_chats(n, seed, turns=8):
    "Conversations of `turns` exchanges (one system prompt, then user/assistant pairs), like real multi-turn chat data."
    from ftkit.tiny import sample_rows

    base = sample_rows('chat', n=n * turns, seed=seed)
    out = []
    for i in range(n):
        msgs = [m for c in base[i * turns : (i + 1) * turns] for m in c['messages'] if m['role'] != 'system']
        out.append(dict(messages=[dict(role='system', content='You are a helpful assistant.')] + msgs))
    return out


def many_chats(path, n, seed=7, pool=20_000):
    """Write `n` chats fast (2M in about a minute): a pool of generated conversations, each row one of them with its
    own number in the first question, so that every row differs and lengths keep the pool's distribution."""
    from ftkit.tiny import sample_rows

    base = [json.dumps(c['messages'], ensure_ascii=False) for c in sample_rows('chat', n=min(n, pool), seed=seed)]
    with open(path, 'w', encoding='utf-8') as f:
        for i in range(n):
            f.write('{"id": %d, "messages": %s}\n' % (i, base[i % len(base)].replace('"content": "', f'"content": "#{i} ', 1)))
    return Path(path)


def make_sets(work, sizes, fast=False):
    "The data files of `sizes` under `work` (made once); `fast`: chats by `many_chats` (the curve's, every size alike)."
    from ftkit.tiny import sample_rows, write_jsonl

    out = {}
    for kind, n in sizes:
        p = work / f"{kind}{'-fast' if fast else ''}-{n}.jsonl"
        if not p.exists():
            if kind == 'chat' and fast:
                many_chats(p, n)
            else:
                write_jsonl(long_chats(n, 99) if kind == 'longchat' else sample_rows(kind, n=n, seed=1234 + n), p)
        out[(kind, n)] = p
    return out


def config_for(data, kind, tok_dir, prep, nproc):
    t = 'alpaca' if kind == 'alpaca' else 'chat_template'
    return dict(
        base_model=str(tok_dir),
        learning_rate=1e-4,
        sequence_len=2048,
        dataset_num_proc=nproc,
        dataset_prepared_path=str(prep),
        output_dir=str(prep / 'out'),
        micro_batch_size=1,
        gradient_accumulation_steps=1,
        special_tokens=dict(pad_token='<|finetune_right_pad_id|>'),
        datasets=[dict(path=str(data), type=t)],
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--sizes', default='chat:20000,chat:200000,alpaca:20000,longchat:20000')
    ap.add_argument('--num-proc', type=int, default=os.cpu_count())
    ap.add_argument('--axolotl-python', help="Python of a virtual environment with axolotl installed (the peer)")
    ap.add_argument('--workdir', default=None)
    ap.add_argument('--json', default=None, help="where the table goes (default bench/preprocess-results.json, "
                    "bench/preprocess-curve.json with --curve)")
    ap.add_argument('--curve', action='store_true', help="peak memory against rows: ftkit on --curve-sizes")
    ap.add_argument('--curve-sizes', default='chat:20000,chat:200000,chat:2000000')
    ap.add_argument('--_run', nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._run:
        return run_ftkit(a._run[1])
    import yaml
    from ftkit.tiny import tiny_model

    tok_dir = tiny_model('llama')
    work = Path(a.workdir or tempfile.mkdtemp(prefix='ftkit-bench-'))
    spec = a.curve_sizes if a.curve else a.sizes
    sizes = [(s.split(':')[0], int(s.split(':')[1])) for s in spec.split(',')]
    t0 = time.time()
    sets = make_sets(work, sizes, fast=a.curve)
    print(f"data generated in {time.time() - t0:.0f}s under {work}", flush=True)
    a.json = a.json or f"bench/preprocess-{'curve' if a.curve else 'results'}.json"
    tools = [('ftkit', [sys.executable, __file__, '--_run', 'ftkit'])]
    if a.axolotl_python and not a.curve:
        tools.append(('axolotl', [a.axolotl_python, str(HERE / 'axolotl_preprocess.py')]))
    results = []
    for (kind, n), data in sets.items():
        for name, cmd in tools:
            prep = work / f"prep-{name}-{kind}-{n}"
            shutil.rmtree(prep, ignore_errors=True)
            prep.mkdir()
            cfg = prep / 'cfg.yml'
            cfg.write_text(yaml.safe_dump(config_for(data, kind, tok_dir, prep, a.num_proc)))
            env = dict(
                os.environ,
                HF_DATASETS_CACHE=str(prep / 'hf-cache'),
                HF_HUB_OFFLINE='1',
                HF_DATASETS_OFFLINE='1',
                TOKENIZERS_PARALLELISM='false',
                AXOLOTL_DO_NOT_TRACK='1',
                DO_NOT_TRACK='1',
            )
            t0 = time.time()
            r = subprocess.run(cmd + [str(cfg)], capture_output=True, text=True, env=env)
            wall = time.time() - t0
            if r.returncode != 0:
                print(f"{name} failed on {kind} {n}:\n{r.stderr[-3000:]}", file=sys.stderr)
                continue
            m = json.loads(r.stdout.strip().splitlines()[-1])
            row = dict(
                tool=name,
                data=f"{kind} {n:,}",
                rows=m['rows_in'],
                kept=m['rows_out'],
                tokens=m['tokens'],
                seconds=m['seconds'],
                wall_s=round(wall, 1),
                rows_per_s=round(m['rows_in'] / m['seconds']),
                tokens_per_s=round(m['tokens'] / m['seconds']),
                peak_main_mb=m['peak_mb'][0],
                peak_worker_mb=m['peak_mb'][1],
                peak_main_anon_mb=m.get('peak_anon_mb'),
            )
            results.append(row)
            print(
                f"{row['tool']:<8} {row['data']:<14} {row['seconds']:>7.1f}s  {row['rows_per_s']:>8,} rows/s  {row['tokens_per_s']:>10,} tok/s"
                f"  peak {row['peak_main_mb']:>5} MB main, {row['peak_worker_mb']:>5} MB worker",
                flush=True,
            )
    if a.curve:
        print(f"\nPeak memory against rows (num_proc {a.num_proc}; generated chats; tiny Llama tokenizer):")
        print(f"{'rows':>10} {'wall s':>8} {'rows/s':>8} {'VmHWM MB':>9} {'anon MB':>8} {'worker MB':>10}")
        for r in results:
            print(
                f"{r['rows']:>10,} {r['wall_s']:>8.0f} {r['rows_per_s']:>8,} {r['peak_main_mb']:>9} "
                f"{r['peak_main_anon_mb']:>8} {r['peak_worker_mb']:>10}"
            )
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(dict(num_proc=a.num_proc, results=results), indent=1))
        return
    by = {(r['tool'], r['data']): r for r in results}
    print(f"\nnum_proc {a.num_proc}; tokenizer: ftkit tiny Llama; sequence_len 2048")
    for (tool, data), r in by.items():
        if tool == 'ftkit' and ('axolotl', data) in by:
            p = by[('axolotl', data)]
            print(
                f"{data}: ftkit {r['rows_per_s'] / p['rows_per_s']:.1f}x Axolotl's rows/s, peak memory {r['peak_main_mb']} vs {p['peak_main_mb']} MB"
            )
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(dict(num_proc=a.num_proc, results=results), indent=1))


if __name__ == '__main__':
    main()
