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


def bf16_ulp(x: float) -> float:
    "The spacing of bf16 numbers at magnitude `x` (8 significant bits): the rounding step of a bf16 logit there."
    import math

    return 2.0 ** (math.floor(math.log2(max(abs(x), 1e-30))) - 7)


def test_varlen_packed_logits_equal_per_sample():
    """PyTorch's native varlen attention on a packed row gives each sample's own logits (tiny GQA model, bf16).

    Compared in float32 against a tolerance that scales with the logits: two bf16 paths that differ only in how
    attention is scheduled may round a logit differently, one bf16 step (2^-4 = 0.0625 at |logit| 8..16: the 0.0625
    seen once in two runs against the old fixed 0.05). Allowed: 4 steps at the largest |logit|; measured and reported
    in steps. A leak across documents moves logits by units (about 6 in DESIGN §6), far beyond that."""
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
    step = bf16_ulp(sep.abs().max().item())
    d, w = (packed - sep).abs().max().item(), (wrong - sep).abs().max().item()
    report(
        test='varlen packed vs per-sample logits (bf16, compared in float32)',
        max_abs_diff=d,
        bf16_steps=d / step,
        max_abs_logit=sep.abs().max().item(),
        without_boundaries=w,
    )
    assert d <= 4 * step and w > 10 * 4 * step


# fused LoRA (ftkit.fused) and offloaded checkpointing (ftkit.offload) on the GPU


def _lora(model, **kw):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    c = dict(r=16, lora_alpha=4, target_modules='all-linear', init_lora_weights=False, use_rslora=True)  # scale 1
    return get_peft_model(model, LoraConfig(**{**c, **kw})).train()


def _fused_cfg(**kw):
    from types import SimpleNamespace

    c = dict(
        adapter='lora', lora_dropout=0.0, peft_use_dora=None, load_in_4bit=False, load_in_8bit=False,
        lora_fan_in_fan_out=None, deepspeed=None, fsdp=None, fsdp_config=None, fsdp_version=None,
        lora_qkv_kernel=True, lora_o_kernel=True, lora_mlp_kernel=True, gradient_checkpointing='offload',
        gradient_checkpointing_kwargs=None,
    )  # fmt: skip
    return SimpleNamespace(**{**c, **kw})


def _packed_batch(lens, vocab=4000, seed=0):
    from ftkit.packing import Collator

    g = torch.Generator().manual_seed(seed)
    rows = [torch.randint(0, vocab, (l,), generator=g).tolist() for l in lens]
    b = Collator(pad_id=0, packing=True, varlen=True)([dict(input_ids=r, labels=r) for r in rows])
    return {k: (v.cuda() if torch.is_tensor(v) else v) for k, v in b.items()}


def _step(m, batch, autocast=True):
    m.zero_grad(set_to_none=True)
    with torch.autocast('cuda', dtype=torch.bfloat16, enabled=autocast):
        out = m(**batch, use_cache=False)
    out.loss.backward()
    grads = {n: p.grad.double().clone() for n, p in m.named_parameters() if p.requires_grad}
    return out.loss.double().item(), grads


def _rel(a, b):
    "The largest difference of two gradient sets, relative to each tensor's largest entry (for exact comparisons)."
    return max(((a[k] - b[k]).abs().max() / b[k].abs().max().clamp_min(1e-30)).item() for k in b)


def _rel_norm(a, b):
    "|a - b| / |b| over all gradients at once (for bf16: not dominated by a tensor whose gradient is nearly zero)."
    num = sum(((a[k] - b[k]) ** 2).sum() for k in b)
    return (num / sum((b[k] ** 2).sum() for k in b)).sqrt().item()


def test_fused_lora_matches_peft_on_gpu():
    """The fused path on the GPU, as training runs it (bf16 weights, peft's fp32 adapters, bf16 autocast, packed rows
    on varlen attention, liger's kernels when installed): as close to a float64 reference of the same weights as peft's
    own path is (CPU), and in float32 within rounding of peft's float32 path (TF32 off)."""
    import copy
    from transformers import AutoModelForCausalLM
    from ftkit import fused
    from ftkit.model import apply_liger, liger_settings
    from ftkit.packing import VARLEN, register_varlen
    from ftkit.tiny import tiny_model

    register_varlen()
    batch = _packed_batch([300, 120, 700, 37, 860])
    torch.backends.cuda.matmul.allow_tf32 = False
    for family in ('llama', 'qwen3'):
        base = AutoModelForCausalLM.from_pretrained(
            tiny_model(family), dtype=torch.bfloat16, attn_implementation=VARLEN
        )
        cfg = _fused_cfg(liger_rope=None, liger_rms_norm=None, liger_glu_activation=None, liger_layer_norm=None,
                         liger_cross_entropy=None, liger_fused_linear_cross_entropy=None, plugins=None)  # fmt: skip
        liger = liger_settings(cfg)
        used = sorted(k for k in liger if liger[k])
        m = _lora(base.cuda())
        truth = copy.deepcopy(m).cpu().double()
        truth.base_model.model.set_attn_implementation('sdpa')
        cpu_batch = dict(
            input_ids=batch['input_ids'].cpu(), labels=batch['labels'].cpu(), position_ids=batch['position_ids'].cpu()
        )
        lt, gt = _step(truth, cpu_batch, autocast=False)  # before liger, whose kernels (and RoPE patch) are CUDA-only
        del truth
        apply_liger(m.base_model.model, cfg)
        l0, g0 = _step(m, batch)
        summary = fused.apply_fused_lora(m, cfg)
        l1, g1 = _step(m, batch)
        report(
            test=f'fused LoRA vs peft, tiny {family}, bf16 autocast, varlen, liger {used}',
            fused=summary,
            loss_float64=lt,
            loss_peft=l0,
            loss_fused=l1,
            grad_err_peft=_rel_norm(g0, gt),
            grad_err_fused=_rel_norm(g1, gt),
        )
        assert summary.startswith('fused LoRA kernels: q/k/v in 4/4 layers, o in 4/4 layers, mlp in 4/4 layers')
        assert abs(l1 - lt) <= 1.5 * abs(l0 - lt) + 2e-3 and _rel_norm(g1, gt) <= 1.5 * _rel_norm(g0, gt) + 1e-3

        m32 = _lora(AutoModelForCausalLM.from_pretrained(tiny_model(family), dtype=torch.float32).cuda())
        s32 = dict(input_ids=batch['input_ids'], labels=batch['labels'], position_ids=batch['position_ids'])
        l0, g0 = _step(m32, s32, autocast=False)
        fused.apply_fused_lora(m32, cfg)
        l1, g1 = _step(m32, s32, autocast=False)
        report(
            test=f'fused LoRA vs peft, tiny {family}, float32 on the GPU', loss_diff=abs(l1 - l0), grad_rel=_rel(g1, g0)
        )
        assert abs(l1 - l0) < 1e-4 and _rel(g1, g0) < 1e-3


def test_fused_lora_four_bit_on_gpu():
    """QLoRA as ftkit loads it (bitsandbytes NF4 with double quantization, peft's k-bit preparation: float32 hidden
    states): the fused path, which dequantizes as bitsandbytes' matmul does, against peft's `Linear4bit` adapters.
    float32 compute: equal to rounding; bf16 compute under autocast on varlen attention: within bf16 noise."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig
    from peft import prepare_model_for_kbit_training
    from ftkit import fused
    from ftkit.packing import VARLEN, register_varlen
    from ftkit.tiny import tiny_model

    register_varlen()
    batch = _packed_batch([300, 120, 700, 37, 860])
    torch.backends.cuda.matmul.allow_tf32 = False
    for compute in (torch.float32, torch.bfloat16):
        q = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type='nf4', bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute
        )
        bf16 = compute == torch.bfloat16
        base = AutoModelForCausalLM.from_pretrained(
            tiny_model('llama'), dtype=compute, quantization_config=q, device_map={'': 0},
            attn_implementation=VARLEN if bf16 else 'sdpa',
        )  # fmt: skip
        m = _lora(prepare_model_for_kbit_training(base, use_gradient_checkpointing=False))
        b = batch if bf16 else {k: batch[k] for k in ('input_ids', 'labels', 'position_ids')}
        l0, g0 = _step(m, b, autocast=bf16)
        summary = fused.apply_fused_lora(m, _fused_cfg(load_in_4bit=True))
        l1, g1 = _step(m, b, autocast=bf16)
        report(
            test=f'fused LoRA vs peft on a 4-bit base, compute {compute}',
            fused=summary,
            loss_peft=l0,
            loss_fused=l1,
            grad_rel_norm=_rel_norm(g1, g0),
        )
        assert summary.startswith('fused LoRA kernels: q/k/v in 4/4 layers, o in 4/4 layers, mlp in 4/4 layers')
        if bf16:
            assert abs(l1 - l0) < 5e-3 and _rel_norm(g1, g0) < 2e-2
        else:
            assert abs(l1 - l0) < 1e-4 and _rel_norm(g1, g0) < 1e-4


def _one_b_layers(n_layers=4):
    "A random-init model with the Llama-3.2-1B layer shape (hidden 2048, MLP 8192, GQA 32/8), `n_layers` layers, bf16."
    from transformers import LlamaConfig, LlamaForCausalLM
    from ftkit.packing import VARLEN, register_varlen

    register_varlen()
    c = LlamaConfig(
        vocab_size=32000, hidden_size=2048, intermediate_size=8192, num_hidden_layers=n_layers, num_attention_heads=32,
        num_key_value_heads=8, head_dim=64, max_position_embeddings=8192, tie_word_embeddings=True,
    )  # fmt: skip
    with torch.device('cuda'):
        torch.manual_seed(0)
        m = LlamaForCausalLM(c).to(torch.bfloat16)
    m.set_attn_implementation(VARLEN)
    return m


def _allocated():
    "Bytes allocated on the GPU once pending frees (tensors recorded on the copy stream) are settled."
    torch.cuda.synchronize()
    torch.empty(1, device='cuda')  # the allocator processes finished events on an allocation
    return torch.cuda.memory_allocated()


def test_fused_lora_memory_and_time_on_gpu():
    """Four layers of the 1B shape, 16k packed tokens, LoRA r=32 on every linear layer, bf16 autocast (liger's kernels
    when installed): activation memory after the forward and time of a step, peft's path vs fused."""
    from ftkit import fused
    from ftkit.model import apply_liger

    cfg = _fused_cfg(liger_rope=None, liger_rms_norm=None, liger_glu_activation=None, liger_layer_norm=None,
                     liger_cross_entropy=None, liger_fused_linear_cross_entropy=None, plugins=None)  # fmt: skip
    m = _lora(_one_b_layers(), r=32, lora_alpha=64, use_rslora=False, init_lora_weights=True)
    apply_liger(m.base_model.model, cfg)
    batch = _packed_batch([2048] * 4 + [1024] * 6 + [512] * 4, vocab=32000)  # 16,384 tokens

    def measure():
        for _ in range(2):  # warm-up (autotuning, allocator)
            _step(m, batch)
        torch.cuda.synchronize()
        m.zero_grad(set_to_none=True)
        before = _allocated()
        with torch.autocast('cuda', dtype=torch.bfloat16):
            out = m(**batch, use_cache=False)
        act = _allocated() - before
        torch.cuda.reset_peak_memory_stats()
        out.loss.backward()
        del out
        t = time.perf_counter()
        for _ in range(5):
            _step(m, batch)
        torch.cuda.synchronize()
        return act / 2**30, (time.perf_counter() - t) / 5

    a0, t0 = measure()
    summary = fused.apply_fused_lora(m, cfg)
    a1, t1 = measure()
    report(
        test='fused LoRA memory and time, 4 layers of the 1B shape, 16k packed tokens',
        fused=summary,
        activations_gib_peft=round(a0, 3),
        activations_gib_fused=round(a1, 3),
        step_ms_peft=round(t0 * 1000, 1),
        step_ms_fused=round(t1 * 1000, 1),
    )
    assert a1 <= 0.7 * a0


def test_offloaded_checkpointing_on_gpu():
    """Eight layers of the 1B shape, 16k packed tokens, checkpointed: with offloading the layer inputs leave the device
    (memory after the forward lower by about 7 layers x 16k x 2048 bf16 = 448 MiB), the gradients are plain
    checkpointing's, and the time of a step is reported beside plain checkpointing and torch's save_on_cpu."""
    from ftkit import fused, offload

    m = _lora(_one_b_layers(8), r=32, lora_alpha=64, use_rslora=False, init_lora_weights=True)
    fused.apply_fused_lora(m, _fused_cfg())
    m.gradient_checkpointing_enable(gradient_checkpointing_kwargs={'use_reentrant': False})
    batch = _packed_batch([2048] * 4 + [1024] * 6 + [512] * 4, vocab=32000)

    def measure():
        for _ in range(2):
            _step(m, batch)
        torch.cuda.synchronize()
        m.zero_grad(set_to_none=True)
        before = _allocated()
        with torch.autocast('cuda', dtype=torch.bfloat16):
            out = m(**batch, use_cache=False)
        act = _allocated() - before
        out.loss.backward()
        grads = {n: p.grad.double().clone() for n, p in m.named_parameters() if p.requires_grad}
        del out
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(5):
            _step(m, batch)
        torch.cuda.synchronize()
        return act / 2**20, (time.perf_counter() - t) / 5 * 1000, grads

    a0, t0, g0 = measure()
    with offload.activation_offloading(m, _fused_cfg()) as off:
        a1, t1, g1 = measure()
    layers = offload.checkpointed_layers(m)
    with_cpu = {}
    for (
        layer
    ) in layers:  # the baseline: torch's save_on_cpu around each checkpoint (what transformers' offload=True does)

        def f(function, *args, _cp=torch.utils.checkpoint.checkpoint, **kw):
            with torch.autograd.graph.save_on_cpu(pin_memory=True):
                return _cp(function, *args, use_reentrant=False)

        with_cpu[layer] = layer.__dict__.get('_gradient_checkpointing_func')
        layer._gradient_checkpointing_func = f
    a2, t2, g2 = measure()
    for layer, f in with_cpu.items():
        layer._gradient_checkpointing_func = f
    report(
        test='offloaded checkpointing, 8 layers of the 1B shape, 16k packed tokens',
        mib_after_forward_plain=round(a0),
        mib_after_forward_offloaded=round(a1),
        mib_after_forward_save_on_cpu=round(a2),
        step_ms_plain=round(t0, 1),
        step_ms_offloaded=round(t1, 1),
        step_ms_save_on_cpu=round(t2, 1),
        gib_offloaded=round(off.offloaded / 2**30, 2),
        grad_rel_diff=_rel_norm(g1, g0),
    )
    expected = 7 * 16384 * 2048 * 2 / 2**20  # layer 0's input is a leaf the graph holds
    assert a0 - a1 >= 0.9 * expected and _rel_norm(g1, g0) < 1e-2 and off.offloaded > 0


def test_offload_and_fused_in_training(tmp_path):
    "`gradient_checkpointing: offload` through train(): the layer inputs go to the host, and the loss goes down."
    from ftkit.config import load_config
    from ftkit.training import train

    kernels = dict(lora_qkv_kernel=True, lora_o_kernel=True, lora_mlp_kernel=True)  # opt-in until measured here
    cfg = load_config(base(tmp_path, sample_packing=True, gradient_checkpointing='offload', **kernels), warn=False)
    r = train(cfg, log=None)
    off = getattr(r.model, '_ftkit_offloader', None)
    end, start = trend(r.losses)
    report(
        test='tiny lora, packed varlen, fused, gradient_checkpointing offload',
        fused=getattr(r.model, '_ftkit_fused', None),
        gib_offloaded=off and round(off.offloaded / 2**30, 3),
        loss_start=round(start, 3),
        loss_end=round(end, 3),
    )
    assert off is not None and off.offloaded > 0 and end < 0.75 * start
    assert r.model._ftkit_fused.startswith('fused LoRA kernels: q/k/v')


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
