"""Peak host memory of merging a LoRA adapter into a multi-shard model: ftkit's shard-by-shard merge
against the usual in-memory way (load the base, attach the adapter with peft, merge_and_unload, save).

    python bench/merge_memory.py [--layers 16] [--shard 250MB]

Builds a random model of the Llama-3.2-1B shape (bf16, saved in shards) and a rank-16 adapter on all its
linear layers (random, non-zero), then merges it both ways, each in a fresh process, on the CPU."""

import argparse, json, os, resource, subprocess, sys, tempfile, time
from pathlib import Path


def _hwm_mb():
    "Peak resident memory of this process (VmHWM): unlike ru_maxrss it does not carry over the parent's peak across fork+exec."
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) / 1024
    return 0.0


def build(d, layers, shard):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, AutoTokenizer
    from peft import LoraConfig, get_peft_model
    from ftkit.tiny import tiny_model

    cfg = LlamaConfig(
        vocab_size=128256,
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=layers,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=64,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    m = LlamaForCausalLM(cfg).to(torch.bfloat16)
    m.save_pretrained(d / 'base', max_shard_size=shard)
    tok = AutoTokenizer.from_pretrained(tiny_model('llama', log=None))
    tok.save_pretrained(d / 'base')
    p = get_peft_model(m, LoraConfig(r=16, lora_alpha=32, target_modules='all-linear', init_lora_weights=False))
    p.save_pretrained(d / 'adapter')
    tok.save_pretrained(d / 'adapter')
    (d / 'cfg.yml').write_text(
        f"base_model: {d / 'base'}\nlearning_rate: 1e-4\nadapter: lora\nlora_target_linear: true\n"
        f"output_dir: {d / 'adapter'}\ndatasets:\n  - path: x\n"
    )
    return sum(t.numel() for t in m.parameters())


def run(mode, d):
    t0 = time.time()
    if mode == 'ftkit':
        from ftkit.merge import merge_lora

        merge_lora(str(d / 'cfg.yml'), out=d / 'merged-ftkit', max_shard_size='250MB', log=None)
    else:
        import torch
        from transformers import AutoModelForCausalLM
        from peft import PeftModel

        m = AutoModelForCausalLM.from_pretrained(d / 'base', dtype=torch.bfloat16)
        m = PeftModel.from_pretrained(m, d / 'adapter').merge_and_unload()
        m.save_pretrained(d / 'merged-peft', max_shard_size='250MB')
    print(json.dumps(dict(mode=mode, seconds=round(time.time() - t0, 1), peak_rss_mb=round(_hwm_mb()))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--layers', type=int, default=16)
    ap.add_argument('--shard', default='250MB')
    ap.add_argument('--_run', nargs=2)
    a = ap.parse_args()
    if a._run:
        return run(a._run[0], Path(a._run[1]))
    d = Path(tempfile.mkdtemp(prefix='ftkit-merge-bench-'))
    n = build(d, a.layers, a.shard)
    shards = sorted((d / 'base').glob('model-*.safetensors'))
    print(
        f"base: {n / 1e9:.2f}B parameters in {len(shards)} shards of <= {a.shard}, {sum(s.stat().st_size for s in shards) / 2**30:.2f} GiB"
    )
    res = []
    for mode in ('ftkit', 'peft'):
        r = subprocess.run(
            [sys.executable, __file__, '--_run', mode, str(d)],
            capture_output=True,
            text=True,
            env=dict(os.environ, HF_HUB_OFFLINE='1'),
        )
        if r.returncode:
            print(r.stderr[-2000:])
            continue
        res.append(json.loads(r.stdout.strip().splitlines()[-1]))
        print(res[-1])
    import torch
    from safetensors.torch import load_file

    a_, b_ = {}, {}
    for f in sorted((d / 'merged-ftkit').glob('*.safetensors')):
        a_.update(load_file(f))
    for f in sorted((d / 'merged-peft').glob('*.safetensors')):
        b_.update(load_file(f))
    diff = max((a_[k].float() - b_[k].float()).abs().max().item() for k in a_ if k in b_)
    print(f"same weights as peft's merge: max |diff| = {diff:.3g} over {len(set(a_) & set(b_))} tensors")
    Path('bench/results/merge-memory.json').write_text(
        json.dumps(dict(results=res, max_abs_diff=diff, shards=len(shards)), indent=1)
    )


if __name__ == '__main__':
    main()
