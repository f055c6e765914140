"""GPU behaviour, run on a CUDA machine (skipped where there is none): bf16 training with packed batches on
PyTorch's native varlen attention, QLoRA (4-bit base through bitsandbytes) and its merge, 8-bit optimizers,
the out-of-memory message, and a 1B-shape model. Each test prints the figures it measured."""

import json, os, time
from pathlib import Path
import pytest, torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
RESULTS = Path(os.environ.get('FTKIT_GPU_RESULTS', '/tmp/ftkit-gpu-results.jsonl'))


def report(**kw):
    kw['gpu'] = torch.cuda.get_device_name(0)
    print(json.dumps(kw))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, 'a') as f:
        f.write(json.dumps(kw) + '\n')


def base(tmp, **kw):
    d = dict(
        base_model='ftkit:tiny-llama',
        adapter='lora',
        lora_r=16,
        lora_alpha=32,
        lora_target_linear=True,
        datasets=[dict(path='ftkit:samples/chat', type='chat_template')],
        sequence_len=512,
        micro_batch_size=4,
        learning_rate=3e-3,
        lr_scheduler='constant',
        logging_steps=1,
        save_strategy='no',
        max_steps=30,
        dataset_prepared_path=str(tmp / 'prep'),
        output_dir=str(tmp / 'run'),
    )
    d.update(kw)
    return d


def trend(losses):
    return sum(losses[-5:]) / 5, sum(losses[:3]) / 3


def test_bf16_packed_varlen(tmp_path):
    from ftkit.training import train
    from ftkit.packing import VARLEN

    r = train(base(tmp_path, sample_packing=True), log=None)
    m = r.model.base_model.model
    assert m.config._attn_implementation == VARLEN and next(m.parameters()).dtype == torch.bfloat16
    end, start = trend(r.losses)
    report(test='tiny bf16 lora packed varlen', loss_start=round(start, 3), loss_end=round(end, 3))
    assert end < 0.75 * start


def test_qlora_tiny_and_merge(tmp_path):
    from ftkit.training import train
    from ftkit.merge import merge_lora

    r = train(
        base(tmp_path, adapter='qlora', load_in_4bit=True, sample_packing=True, gradient_checkpointing=True), log=None
    )
    assert any(type(mod).__name__ == 'Linear4bit' for mod in r.model.modules())
    end, start = trend(r.losses)
    out = merge_lora(r.cfg, log=None)
    from transformers import AutoModelForCausalLM

    mm = AutoModelForCausalLM.from_pretrained(out, dtype=torch.bfloat16).cuda()
    report(
        test='tiny qlora packed varlen + gradient checkpointing, merged',
        loss_start=round(start, 3),
        loss_end=round(end, 3),
        merged_params=mm.num_parameters(),
    )
    assert end < 0.75 * start and not any('lora' in n for n, _ in mm.named_parameters())


@pytest.mark.parametrize('optim', ['adamw_8bit', 'paged_adamw_8bit'])
def test_8bit_optimizers(tmp_path, optim):
    from ftkit.training import train

    r = train(base(tmp_path, optimizer=optim), log=None)
    end, start = trend(r.losses)
    report(test=f'tiny lora bf16 {optim}', loss_start=round(start, 3), loss_end=round(end, 3))
    assert end < 0.75 * start


def test_oom_is_explained(tmp_path):
    from ftkit.training import train, TrainingStopped

    hog = []  # take the GPU's memory until almost nothing is left for training
    for chunk in (2**30, 2**26, 2**22):
        while True:
            try:
                hog.append(torch.empty(chunk, dtype=torch.uint8, device='cuda'))
            except torch.cuda.OutOfMemoryError:
                break
    try:
        with pytest.raises(TrainingStopped) as e:
            train(base(tmp_path, micro_batch_size=8, sequence_len=512), log=None)
    finally:
        del hog
        torch.cuda.empty_cache()
    msg = str(e.value)
    report(test='oom message', message=msg)
    assert 'out of GPU memory at step' in msg and 'micro_batch_size: 1' in msg and 'gradient_checkpointing: true' in msg


def _one_b(tmp):
    "A random-init model of the Llama-3.2-1B shape with the tiny tokenizer's vocabulary, saved once."
    d = Path(os.environ.get('FTKIT_1B', '/tmp/ftkit-llama-1b-shape'))
    if (d / 'config.json').exists():
        return d
    from transformers import LlamaConfig, LlamaForCausalLM, AutoTokenizer
    from ftkit.tiny import tiny_model

    tok = AutoTokenizer.from_pretrained(tiny_model('llama'))
    cfg = LlamaConfig(
        vocab_size=128256,
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=64,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        rope_parameters=dict(rope_type='default', rope_theta=500000.0),
        bos_token_id=tok.bos_token_id,
        eos_token_id=[tok.eos_token_id],
    )
    with torch.device('cuda'):
        m = LlamaForCausalLM(cfg).to(torch.bfloat16)
    m.save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.mark.parametrize('kind', ['lora', 'qlora'])
def test_1b_shape(tmp_path, kind):
    from ftkit.training import train

    d = _one_b(tmp_path)
    kw = dict(adapter='qlora', load_in_4bit=True, gradient_checkpointing=True) if kind == 'qlora' else {}
    torch.cuda.reset_peak_memory_stats()
    r = train(
        base(
            tmp_path,
            base_model=str(d),
            lora_r=32,
            lora_alpha=64,
            sample_packing=True,
            sequence_len=2048,
            micro_batch_size=8,
            learning_rate=2e-4,
            max_steps=12,
            datasets=[dict(path='ftkit:samples/text', type='completion')],
            **kw,
        ),
        log=None,
    )
    tps = [m['tokens_per_s'] for m in r.metrics if 'tokens_per_s' in m][3:]
    report(
        test=f'1B-shape {kind} packed varlen bf16',
        tokens_per_s=round(sum(tps) / len(tps)),
        peak_gib=round(torch.cuda.max_memory_allocated() / 2**30, 1),
        loss_start=round(r.losses[0], 3),
        loss_end=round(r.losses[-1], 3),
    )
    assert r.losses[-1] < r.losses[0]


def test_varlen_packed_logits_equal_per_sample():
    "PyTorch's native varlen attention on a packed row gives each sample's own logits (tiny GQA model, bf16)."
    from transformers import AutoModelForCausalLM
    from ftkit.packing import Collator, VARLEN, register_varlen, varlen_available
    from ftkit.tiny import tiny_model

    assert varlen_available()
    register_varlen()
    m = (
        AutoModelForCausalLM.from_pretrained(tiny_model('llama'), dtype=torch.bfloat16, attn_implementation=VARLEN)
        .cuda()
        .eval()
    )
    g = torch.Generator().manual_seed(0)
    ids = [torch.randint(0, 4000, (l,), generator=g) for l in (37, 100, 5, 64)]
    p = Collator(pad_id=0, packing=True, varlen=True)([dict(input_ids=x.tolist(), labels=x.tolist()) for x in ids])
    with torch.no_grad():
        packed = (
            m(**{k: (v.cuda() if torch.is_tensor(v) else v) for k, v in p.items() if k != 'labels'}, use_cache=False)
            .logits[0]
            .float()
        )
        m.set_attn_implementation('sdpa')
        sep = torch.cat([m(input_ids=x[None].cuda(), use_cache=False).logits[0] for x in ids]).float()
        wrong = (
            m(input_ids=p['input_ids'].cuda(), use_cache=False).logits[0].float()
        )  # no boundaries: samples attend across
    d, w = (packed - sep).abs().max().item(), (wrong - sep).abs().max().item()
    report(test='varlen packed vs per-sample logits', max_abs_diff=d, without_boundaries=w)
    assert d < 0.05 and w > 10 * max(d, 1e-3)


def _launch_cfg(tmp, **kw):
    import yaml

    c = base(tmp, max_steps=12, **kw)
    p = tmp / 'cfg.yml'
    p.write_text(yaml.safe_dump(c))
    return str(p)


def test_fsdp2_one_process(tmp_path):
    "An FSDP2 run through accelerate (one process on this machine) goes end to end and leaves an adapter."
    from ftkit.launch import launch

    logf = open(os.environ.get('FTKIT_GPU_LOGDIR', '/tmp') + '/fsdp2-run.log', 'w')
    r = launch(
        _launch_cfg(tmp_path, fsdp_version=2, fsdp_config=dict(fsdp_reshard_after_forward=True)),
        mode='accelerate',
        num_processes=1,
        log=logf.write,
    )
    import yaml

    acc = yaml.safe_load((tmp_path / 'run' / 'accelerate.yaml').read_text())
    end, start = trend(r.losses)
    report(
        test='fsdp2 1 process (tiny)',
        loss_start=round(start, 3),
        loss_end=round(end, 3),
        distributed_type=acc['distributed_type'],
        saved=sorted(p.name for p in (tmp_path / 'run').iterdir()),
    )
    assert (
        acc['distributed_type'] == 'FSDP'
        and end < 0.8 * start
        and (tmp_path / 'run' / 'adapter_model.safetensors').exists()
    )


def test_deepspeed_one_process(tmp_path):
    "A DeepSpeed ZeRO-2 run (ftkit's own config) through accelerate goes end to end."
    pytest.importorskip('deepspeed')
    from ftkit.launch import launch, fetch

    fetch('deepspeed_configs', tmp_path / 'ds', log=None)
    logf = open(os.environ.get('FTKIT_GPU_LOGDIR', '/tmp') + '/deepspeed-run.log', 'w')
    r = launch(
        _launch_cfg(tmp_path, deepspeed=str(tmp_path / 'ds' / 'zero2.json')),
        mode='accelerate',
        num_processes=1,
        log=logf.write,
    )
    end, start = trend(r.losses)
    report(test='deepspeed zero2 1 process (tiny)', loss_start=round(start, 3), loss_end=round(end, 3))
    assert end < 0.8 * start and (tmp_path / 'run' / 'adapter_model.safetensors').exists()


def test_qlora_merge_matches_with_nf4_roundtrip(tmp_path):
    "Merging a QLoRA adapter into the 16-bit base, with the base rounded through NF4 first, matches the model it was trained as."
    from ftkit.training import train
    from ftkit.merge import merge_lora
    from transformers import AutoModelForCausalLM

    r = train(base(tmp_path, adapter='qlora', load_in_4bit=True, max_steps=15), log=None)
    x = torch.tensor([r.tokenizer("The capital of France is Paris. What is 7 plus 5?")['input_ids']]).cuda()
    r.model.eval()
    with torch.no_grad():
        ref = r.model(input_ids=x).logits.float()
    diffs = {}
    for rt in (False, True):
        out = merge_lora(r.cfg, out=tmp_path / f'merged-{rt}', nf4_roundtrip=rt, log=None)
        m = AutoModelForCausalLM.from_pretrained(out, dtype=torch.bfloat16).cuda().eval()
        with torch.no_grad():
            diffs[rt] = (m(input_ids=x).logits.float() - ref).abs().max().item()
    report(test='qlora merge vs trained 4-bit model (max |logit diff|)', plain=diffs[False], nf4_roundtrip=diffs[True])
    assert diffs[True] < diffs[False] and diffs[True] < 0.25
