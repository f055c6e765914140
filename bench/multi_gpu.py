"""Several GPUs of one host: the launcher's strategies end to end, throughput per GPU, and an interrupt.

    python bench/multi_gpu.py [--gpus 2]

1. The tiny model through `accelerate launch` on every GPU with DDP, FSDP2, DeepSpeed ZeRO-2 and ZeRO-3:
   loss, ranks in sync, peak memory per GPU, the adapter merged and loaded.
2. LoRA on the Llama-3.1-8B shape (random init, seq 4096, micro-batch 2, packed) with DDP: tokens/s per GPU
   (rank 0's share) and peak memory per GPU, to compare with the one-GPU figure of bench/train_speed.py.
3. An interrupt (SIGINT to the launching process, as a notebook's stop button does) during a multi-GPU run:
   every rank gone within seconds, a checkpoint left.
Keep NVLink multicast off on shared hosts: NCCL_NVLS_ENABLE=0."""

import argparse, json, os, signal, subprocess, sys, time
from pathlib import Path

WORK = Path(os.environ.get('FTKIT_BENCH_DIR', '/tmp/ftkit-bench'))
OUT = Path(os.environ.get('FTKIT_BENCH_RESULTS', 'bench/results/multi-gpu.jsonl'))


def report(**kw):
    print('RESULT ' + json.dumps(kw), flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT, 'a') as f:
        f.write(json.dumps(kw) + '\n')


def tiny_cfg(name, **kw):
    d = dict(
        base_model='ftkit:tiny-llama',
        adapter='lora',
        lora_r=16,
        lora_alpha=32,
        lora_target_linear=True,
        learning_rate=3e-3,
        lr_scheduler='constant',
        datasets=[dict(path='ftkit:samples/chat', type='chat_template')],
        sequence_len=512,
        micro_batch_size=4,
        max_steps=20,
        logging_steps=1,
        save_strategy='no',
        sample_packing=True,
        output_dir=str(WORK / 'mg' / name),
        dataset_prepared_path=str(WORK / 'prep'),
    )
    d.update(kw)
    return d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--gpus', type=int, default=2)
    ap.add_argument('--skip-8b', action='store_true')
    a = ap.parse_args()
    os.environ.setdefault('NCCL_NVLS_ENABLE', '0')
    from ftkit.launch import launch, fetch
    from ftkit.config import load_config
    from ftkit.merge import merge_lora

    fetch('deepspeed_configs', WORK / 'ds', log=None)
    for name, kw in [
        ('ddp', {}),
        ('fsdp2', dict(fsdp_version=2)),
        ('zero2', dict(deepspeed=str(WORK / 'ds' / 'zero2.json'))),
        ('zero3', dict(deepspeed=str(WORK / 'ds' / 'zero3_bf16.json'))),
    ]:
        t0 = time.time()
        try:
            with open(OUT.parent / f'{name}.log', 'w') as lf:  # each run's full output, for the root cause of a failure
                r = launch(
                    load_config(tiny_cfg(name, **kw), warn=False), mode='accelerate', num_processes=a.gpus, log=lf.write
                )
            dj = json.loads((WORK / 'mg' / name / 'distributed.json').read_text())
            merged = merge_lora(r.cfg, log=None)
            from transformers import AutoModelForCausalLM

            n = AutoModelForCausalLM.from_pretrained(merged).num_parameters()
            report(
                test=f'tiny {name} x{a.gpus}',
                loss_start=round(r.losses[0], 3),
                loss_end=round(r.losses[-1], 3),
                ranks_in_sync=dj['ranks_in_sync'],
                peak_gib_per_rank=[round(x, 2) for x in dj.get('peak_gib_per_rank') or []],
                merged_params=n,
                seconds=round(time.time() - t0),
            )
        except Exception as e:
            report(test=f'tiny {name} x{a.gpus}', error=str(e)[-1500:])
    if not a.skip_8b:
        sys.path.insert(0, str(Path(__file__).parent))
        import train_speed as T

        d, data = T.model_dir('llama-8b'), T.data_file(4096)
        c = dict(
            base_model=str(d),
            adapter='lora',
            lora_r=32,
            lora_alpha=64,
            lora_target_linear=True,
            datasets=[dict(path=str(data))],
            sequence_len=4096,
            sample_packing=True,
            micro_batch_size=2,
            max_steps=16,
            learning_rate=1e-4,
            lr_scheduler='constant',
            bf16=True,
            logging_steps=2,
            save_strategy='no',
            output_dir=str(WORK / 'mg' / 'ddp-8b'),
            dataset_prepared_path=str(WORK / 'prep'),
        )
        try:
            with open(OUT.parent / 'ddp-8b.log', 'w') as lf:
                r = launch(load_config(c, warn=False), mode='accelerate', num_processes=a.gpus, log=lf.write)
            rows = [m for m in r.metrics if 'loss' in m]
            s0 = next(m for m in rows if m['step'] >= 4)
            tps = (rows[-1]['tokens'] - s0['tokens']) / (rows[-1]['elapsed_s'] - s0['elapsed_s'])
            dj = json.loads((WORK / 'mg' / 'ddp-8b' / 'distributed.json').read_text())
            report(
                test=f'8B LoRA DDP x{a.gpus} seq 4096 mb 2',
                tokens_per_s_per_gpu=round(tps),
                tokens_per_s_total=round(tps * a.gpus),
                peak_gib_per_rank=[round(x, 1) for x in dj.get('peak_gib_per_rank') or []],
                ranks_in_sync=dj['ranks_in_sync'],
            )
        except Exception as e:
            report(test=f'8B LoRA DDP x{a.gpus}', error=str(e)[-1500:])
    # interrupt: a child Python runs launch(); SIGINT to it is what a notebook's stop button delivers
    import yaml

    cfgp = WORK / 'mg' / 'int.yml'
    cfgp.parent.mkdir(parents=True, exist_ok=True)
    cfgp.write_text(yaml.safe_dump(tiny_cfg('interrupt', max_steps=100000, save_strategy='steps', save_steps=100000)))
    p = subprocess.Popen(
        [
            sys.executable,
            '-c',
            f"from ftkit.launch import launch; r = launch({str(cfgp)!r}, mode='accelerate', num_processes={a.gpus}, log=None); print('INTERRUPTED', r.interrupted)",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    met = WORK / 'mg' / 'interrupt' / 'metrics.jsonl'
    t = time.time()
    while time.time() - t < 240 and not (
        met.exists() and sum('"loss"' in l for l in met.read_text().splitlines()) >= 5
    ):
        time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    t0 = time.time()
    out = p.communicate(timeout=120)[0]
    gone = time.time() - t0
    time.sleep(1)
    left = [
        l
        for l in subprocess.run(['ps', '-ww', '-eo', 'stat=,args='], capture_output=True, text=True).stdout.splitlines()
        if str(WORK / 'mg' / 'interrupt') in l and not l.startswith('Z')
    ]
    report(
        test=f'interrupt x{a.gpus}',
        stopped_after_s=round(gone, 1),
        processes_left=len(left),
        checkpoints=sorted(x.name for x in (WORK / 'mg' / 'interrupt').glob('checkpoint-*')),
        said=out.strip().splitlines()[-1:] if out else [],
    )


if __name__ == '__main__':
    main()
