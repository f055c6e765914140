"""Fused LoRA (ftkit.fused) and offloaded checkpointing (ftkit.offload) on the CPU: exactness against peft's own path
(float64 to the last bits; float32 and bf16 no farther from the float64 result than peft's path is), packed and padded
batches, rsLoRA, per-module ranks, partial targets, fallbacks, saving and merging, and the memory each one frees
(bytes saved for the backward, counted with saved_tensors_hooks)."""

import copy, gc, weakref
from types import SimpleNamespace
import pytest, torch

from ftkit import fused, offload

RUN = dict(
    adapter='lora',
    lora_dropout=0.0,
    peft_use_dora=None,
    load_in_4bit=False,
    load_in_8bit=False,
    lora_fan_in_fan_out=None,
    deepspeed=None,
    fsdp=None,
    fsdp_config=None,
    fsdp_version=None,
    lora_qkv_kernel=True,
    lora_o_kernel=True,
    lora_mlp_kernel=True,
    gradient_checkpointing='offload',
    gradient_checkpointing_kwargs=None,
)


def run_cfg(**kw):
    return SimpleNamespace(**{**RUN, **kw})


@pytest.fixture(scope='module')
def bases():
    "The tiny Llama and Qwen3 models (float32), loaded once."
    from transformers import AutoModelForCausalLM
    from ftkit.tiny import tiny_model

    return {
        f: AutoModelForCausalLM.from_pretrained(tiny_model(f, log=None), dtype=torch.float32)
        for f in ('llama', 'qwen3')
    }


def lora(base, dtype=torch.float64, targets='all-linear', seed=0, **kw):
    "A LoRA model on a copy of `base`: random A and B (B = 0 makes dA vanish), rsLoRA, per-module ranks and alphas."
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    cfg = dict(
        r=8,
        lora_alpha=16,
        target_modules=targets,
        use_rslora=True,
        init_lora_weights=False,
        rank_pattern={'q_proj': 4, 'down_proj': 12},
        alpha_pattern={'v_proj': 7},
    )
    m = get_peft_model(copy.deepcopy(base).to(dtype), LoraConfig(**{**cfg, **kw}))
    return m.train()


IDS = torch.randint(0, 4000, (1, 96), generator=torch.Generator().manual_seed(1))
PACKED = dict(
    input_ids=IDS, labels=IDS, position_ids=torch.cat([torch.arange(40), torch.arange(30), torch.arange(26)])[None]
)
_mask = torch.ones(2, 48, dtype=torch.long)
_mask[1, 30:] = 0
_labels = IDS.view(2, 48).clone()
_labels[1, 30:] = -100
PADDED = dict(input_ids=IDS.view(2, 48), attention_mask=_mask, labels=_labels)


def step(m, batch, autocast=False):
    "Loss, logits and the gradient of every trainable parameter (as float64) of one forward/backward."
    m.zero_grad(set_to_none=True)
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
        out = m(**batch, use_cache=False)
    out.loss.backward()
    grads = {n: p.grad.double().clone() for n, p in m.named_parameters() if p.requires_grad}
    return out.loss.double().item(), out.logits.double().detach(), grads


def rel(a: dict, b: dict) -> float:
    "The largest difference between two gradient sets, relative to each tensor's largest entry."
    assert a.keys() == b.keys() and a
    return max(((a[k] - b[k]).abs().max() / b[k].abs().max().clamp_min(1e-30)).item() for k in a)


def fused_and_reference(m, batch, autocast=False):
    fused.unfuse_lora(m)
    ref = step(m, batch, autocast)
    summary = fused.apply_fused_lora(m, run_cfg())
    return ref, step(m, batch, autocast), summary


@pytest.mark.parametrize('family', ['llama', 'qwen3'])
@pytest.mark.parametrize('batch', ['packed', 'padded'])
def test_float64_exact(bases, family, batch):
    "In float64 the fused functions and peft's layers agree to the last bits: the algebra is the same."
    m = lora(bases[family])
    (l0, o0, g0), (l1, o1, g1), summary = fused_and_reference(m, PACKED if batch == 'packed' else PADDED)
    assert summary == "fused LoRA kernels: q/k/v in 4/4 layers, o in 4/4 layers, mlp in 4/4 layers"
    assert len(g0) == 4 * 7 * 2  # every A and B of the 7 adapted layers of 4 layers got a gradient
    assert abs(l0 - l1) < 1e-12 and (o0 - o1).abs().max() < 1e-10 and rel(g1, g0) < 1e-12


@pytest.mark.parametrize('family', ['llama', 'qwen3'])
def test_float32_within_rounding(bases, family):
    """float32: the loss to 1e-5, and gradients no farther from the float64 result than peft's own float32
    gradients are (and within 1e-3 of their size of peft's)."""
    m = lora(bases[family], dtype=torch.float32)
    truth = step(copy.deepcopy(m).double(), PACKED)
    (l0, _, g0), (l1, _, g1), _ = fused_and_reference(m, PACKED)
    assert abs(l0 - l1) < 1e-5 and abs(l1 - truth[0]) < 1e-5
    assert rel(g1, truth[2]) <= 2 * rel(g0, truth[2]) + 1e-6 and rel(g1, g0) < 1e-3


@pytest.mark.parametrize('autocast', [True, False])
def test_bf16_as_accurate_as_peft(bases, autocast):
    """bf16 base weights with peft's fp32 adapters, under bf16 autocast (what training runs) and without it (the
    adapter path then runs in fp32, as in peft): the fused path is as close to the float64 result as peft's."""
    m = lora(bases["llama"], dtype=torch.bfloat16)  # get_peft_model keeps the adapter in fp32 (autocast_adapter_dtype)
    assert m.base_model.model.model.layers[0].mlp.up_proj.lora_A.default.weight.dtype == torch.float32
    tl, to, tg = step(copy.deepcopy(m).double(), PACKED)
    (l0, o0, g0), (l1, o1, g1), _ = fused_and_reference(m, PACKED, autocast)
    assert abs(l1 - tl) <= 1.5 * abs(l0 - tl) + 2e-3
    assert (o1 - to).abs().max() <= 1.5 * (o0 - to).abs().max()
    assert rel(g1, tg) <= 1.5 * rel(g0, tg)
    assert rel(g1, g0) > 0  # bf16 rounds differently: the comparison above is not vacuous


def test_partial_targets(bases):
    "Adapters on q, v and down only: k, gate and up join the fused groups as frozen plain layers; still exact."
    m = lora(bases['llama'], targets=['q_proj', 'v_proj', 'down_proj'])
    (l0, _, g0), (l1, _, g1), summary = fused_and_reference(m, PACKED)
    assert (
        summary == "fused LoRA kernels: q/k/v in 4/4 layers, mlp in 4/4 layers; "
        "peft's path for o: no adapter on these layers (4 layers)"
    )
    assert len(g0) == 4 * 3 * 2 and abs(l0 - l1) < 1e-12 and rel(g1, g0) < 1e-12


def test_gradient_checkpointing_and_inference(bases):
    "Under non-reentrant gradient checkpointing (the layer is recomputed, norm included), and without gradients."
    m = lora(bases['llama'])
    l0, o0, g0 = step(m, PACKED)
    fused.apply_fused_lora(m, run_cfg())
    m.gradient_checkpointing_enable(gradient_checkpointing_kwargs={'use_reentrant': False})
    l1, o1, g1 = step(m, PACKED)
    assert abs(l0 - l1) < 1e-12 and rel(g1, g0) < 1e-12
    m.eval()
    with torch.inference_mode():
        assert (m(input_ids=IDS, position_ids=PACKED['position_ids'], use_cache=False).logits - o0).abs().max() < 1e-10


def test_falls_back_where_not_exact(bases):
    "Disabled or merged adapters, a second active adapter, dropout, DoRA: peft's path, with the reason."
    from peft import LoraConfig

    m = lora(bases['llama'])
    fused.apply_fused_lora(m, run_cfg())
    _, o_fused, _ = step(m, PACKED)
    with torch.no_grad():
        with m.disable_adapter():
            base = m(input_ids=IDS).logits
        m.merge_adapter()
        merged = m(input_ids=IDS, position_ids=PACKED['position_ids'], use_cache=False).logits
        m.unmerge_adapter()
    fused.unfuse_lora(m)
    with torch.no_grad():
        with m.disable_adapter():
            assert torch.equal(base, m(input_ids=IDS).logits)
    assert (merged - o_fused).abs().max() < 1e-9

    m.add_adapter('two', LoraConfig(r=4, target_modules='all-linear', init_lora_weights=False))
    m.base_model.set_adapter(['default', 'two'])
    q = m.base_model.model.model.layers[0].self_attn.q_proj
    assert fused.why_not(q) == "not exactly one active adapter"

    for kw, reason in (
        (dict(lora_dropout=0.1), "lora_dropout > 0"),
        (dict(use_dora=True), "DoRA or another LoRA variant"),
    ):
        d = lora(bases['llama'], **kw)
        s = fused.apply_fused_lora(d, run_cfg())
        assert (
            f"peft's path for q/k/v: {reason} (4 layers)" in s
            and 'forward' not in d.base_model.model.model.layers[0].mlp.__dict__
        )


def test_settings_and_config_blockers(bases):
    "Unset keys: off without a GPU. A config that rules the path out says why, and warns when the keys asked for it."
    assert fused.kernel_settings(run_cfg(lora_qkv_kernel=None, lora_o_kernel=None, lora_mlp_kernel=None)) == dict(
        qkv=torch.cuda.is_available(), o=torch.cuda.is_available(), mlp=torch.cuda.is_available()
    )
    assert fused.kernel_settings(run_cfg(lora_o_kernel=False)) == dict(qkv=True, o=False, mlp=True)
    m = lora(bases['llama'])
    with pytest.warns(UserWarning, match='lora_dropout is 0.05'):
        s = fused.apply_fused_lora(m, run_cfg(lora_dropout=0.05))
    assert (
        s == "fused LoRA kernels: lora_dropout is 0.05 (the fused path is exact only without dropout); peft's LoRA path"
    )
    keys_unset = dict(lora_qkv_kernel=None, lora_o_kernel=None, lora_mlp_kernel=None)
    for kw, why in (
        (dict(load_in_4bit=True, **keys_unset), 'the base is 4-bit'),  # asked for explicitly, a 4-bit base is fused
        (dict(load_in_8bit=True), 'the base is 8-bit'),
        (dict(peft_use_dora=True), 'DoRA'),
        (dict(fsdp_version=2), 'FSDP'),
        (dict(adapter=None), 'no LoRA adapter'),
    ):
        assert why in fused.config_blocker(run_cfg(**kw))
    assert fused.config_blocker(run_cfg(load_in_4bit=True)) is None
    s = fused.apply_fused_lora(m, run_cfg(lora_qkv_kernel=False, lora_o_kernel=False, lora_mlp_kernel=False))
    assert s.startswith("fused LoRA kernels: off") and not any('forward' in x.__dict__ for x in m.modules())


def test_state_dict_saving_and_merging_unchanged(bases, tmp_path):
    "Same parameter names and values; the saved adapter is byte for byte peft's; merging gives peft's merged model."
    from peft import PeftModel

    m = lora(bases['llama'], dtype=torch.float32)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    m.save_pretrained(tmp_path / 'peft')
    fused.apply_fused_lora(m, run_cfg())
    after = m.state_dict()
    assert list(after) == list(before) and all(torch.equal(after[k], before[k]) for k in before)
    m.save_pretrained(tmp_path / 'fused')
    a, b = (tmp_path / d / 'adapter_model.safetensors' for d in ('peft', 'fused'))
    assert a.read_bytes() == b.read_bytes()

    loaded = PeftModel.from_pretrained(copy.deepcopy(bases['llama']), tmp_path / 'fused', is_trainable=True)
    fused.apply_fused_lora(loaded, run_cfg())
    with torch.no_grad():
        assert (loaded(input_ids=IDS).logits - m(input_ids=IDS).logits).abs().max() < 1e-5
        merged = m.merge_and_unload()  # the LoRA layers give way to their (merged) base layers
        ref = PeftModel.from_pretrained(copy.deepcopy(bases['llama']), tmp_path / 'peft').merge_and_unload()
        assert not any(fused._is_lora_linear(x) for x in merged.modules())
        assert (merged(input_ids=IDS).logits - ref(input_ids=IDS).logits).abs().max() < 1e-5


def four_bit(model, compute):
    "`model` with bitsandbytes NF4 (double-quantized) layers for the decoder's linear layers, as QLoRA loads it."
    import bitsandbytes as bnb

    for layer in model.model.layers:
        for parent in (layer.self_attn, layer.mlp):
            for name, lin in list(parent.named_children()):
                if type(lin) is torch.nn.Linear:
                    q = bnb.nn.Linear4bit(
                        lin.in_features, lin.out_features, bias=False, compute_dtype=compute, quant_type='nf4'
                    )
                    q.weight = bnb.nn.Params4bit(
                        lin.weight.data.clone(), requires_grad=False, quant_type='nf4', compress_statistics=True
                    )
                    setattr(parent, name, q.to(lin.weight.device))  # quantized on the move
    model.is_loaded_in_4bit = True
    return model


@pytest.mark.parametrize('compute', ['float32', 'bfloat16'])
def test_four_bit_base(bases, compute):
    """A QLoRA-style base (bitsandbytes NF4, peft's `Linear4bit` adapters, float32 hidden states): the fused path
    dequantizes as bitsandbytes does. float32 compute: equal to peft's to rounding; bf16 autocast: within bf16 noise.
    Needs bitsandbytes (with its CPU library; in the `dev` extra)."""
    import bitsandbytes  # noqa: F401
    from peft import LoraConfig, get_peft_model

    dt = getattr(torch, compute)
    torch.manual_seed(0)
    m = four_bit(copy.deepcopy(bases['llama']), dt)
    m = get_peft_model(m, LoraConfig(r=8, lora_alpha=8, target_modules='all-linear', init_lora_weights=False)).train()
    assert type(m.base_model.model.model.layers[0].mlp.up_proj).__name__ == 'Linear4bit'
    (l0, _, g0), (l1, _, g1), summary = fused_and_reference(m, PACKED, autocast=dt == torch.bfloat16)
    assert summary == "fused LoRA kernels: q/k/v in 4/4 layers, o in 4/4 layers, mlp in 4/4 layers"
    norm = (sum(((g1[k] - g0[k]) ** 2).sum() for k in g0) / sum((g0[k] ** 2).sum() for k in g0)).sqrt().item()
    if dt == torch.float32:
        assert abs(l0 - l1) < 1e-5 and norm < 1e-5 and rel(g1, g0) < 1e-4
    else:
        assert abs(l0 - l1) < 5e-3 and norm < 2e-2


def saved_bytes(m, ids, autocast=False) -> int:
    "Bytes of the distinct storages (parameters aside: kept anyway) saved for the backward by a forward of `m`."
    seen, params = {}, {p.untyped_storage()._cdata for p in m.parameters()}

    def pack(t):
        s = t.untyped_storage()
        if s._cdata not in params:
            seen[s._cdata] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast('cpu', torch.bfloat16, autocast):
        m(input_ids=ids, position_ids=torch.arange(ids.shape[1])[None], use_cache=False)
    return sum(seen.values())


def test_saves_less_for_the_backward():
    """A mid-size random Llama (hidden 1024, MLP 4096, GQA 16/4 heads, 2 layers, 256 tokens) in bf16 with peft's fp32
    adapters (r=32, every linear layer) under bf16 autocast, as training runs it: the fused path saves at most
    1/1.6 of the bytes peft's path saves for the backward (parameters aside). Measured: 1.76x on one layer of the
    Llama-3.2-1B shape with 1024 tokens (60,164 vs 34,212 bf16 values per token); the CPU's RMSNorm and attention
    save more than liger's and the varlen kernel do on a GPU, where the ratio is larger (nbs/08a_fused_lora.ipynb)."""
    from transformers import LlamaConfig, LlamaForCausalLM
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    c = LlamaConfig(
        vocab_size=1024, hidden_size=1024, intermediate_size=4096, num_hidden_layers=2, num_attention_heads=16,
        num_key_value_heads=4, head_dim=64, max_position_embeddings=1024, tie_word_embeddings=True,
    )  # fmt: skip
    base = LlamaForCausalLM(c).to(torch.bfloat16)
    m = get_peft_model(base, LoraConfig(r=32, lora_alpha=64, target_modules='all-linear')).train()
    ids = torch.randint(0, 1024, (1, 256))
    peft_bytes = saved_bytes(m, ids, autocast=True)
    fused.apply_fused_lora(m, run_cfg())
    fused_bytes = saved_bytes(m, ids, autocast=True)
    print(f"saved for the backward: peft {peft_bytes / 2**20:.1f} MiB, fused {fused_bytes / 2**20:.1f} MiB")
    assert fused_bytes * 1.6 <= peft_bytes


# offloaded checkpointing (ftkit.offload)


def test_offloaded_checkpointing_exact_and_off_the_device(bases):
    """Checkpointing with offloaded inputs gives plain checkpointing's loss and gradients, and the layer inputs that
    plain checkpointing keeps alive until the backward are replaced by copies (on CUDA: pinned host memory)."""
    m = lora(bases['llama'], dtype=torch.float32)
    fused.apply_fused_lora(m, run_cfg())
    l0, _, g0 = step(m, PACKED)
    m.gradient_checkpointing_enable(gradient_checkpointing_kwargs={'use_reentrant': False})
    l1, _, g1 = step(m, PACKED)
    assert l0 == l1 and rel(g1, g0) == 0

    def alive_after_forward(off):
        "Ids of the layers whose saved input is still alive after the forward."
        refs, pack = [], off.pack
        off.pack = lambda t: (refs.append(weakref.ref(t)), pack(t))[1]
        out = m(**PACKED, use_cache=False)
        gc.collect()
        alive = [i for i, r in enumerate(refs) if r() is not None]
        out.loss.backward()
        return alive, len(refs)

    with offload.activation_offloading(m, run_cfg(), on_cpu=True, min_bytes=0) as off:
        m.zero_grad(set_to_none=True)
        l2, _, g2 = step(m, PACKED)
        assert l2 == l1 and rel(g2, g1) == 0
        assert off.offloaded == 4 * 96 * 128 * 4  # each layer's input, float32
        # layer 0's input is the embedding output, which transformers may make a leaf requiring grad: the graph holds it
        alive, n = alive_after_forward(off)
        assert n == 4 and set(alive) <= {0}
    with offload.activation_offloading(m, run_cfg(), on_cpu=True, min_bytes=2**40) as keep:  # nothing offloaded
        assert alive_after_forward(keep) == ([0, 1, 2, 3], 4)
    funcs = [x.__dict__.get('_gradient_checkpointing_func') for x in offload.checkpointed_layers(m)]
    assert not any(getattr(f, 'offloader', None) is not None for f in funcs)  # plain checkpointing again


def test_offload_refusals_and_cpu_fallback(bases):
    from ftkit.errors import FtkitError

    m = lora(bases['llama'], dtype=torch.float32)
    with pytest.raises(FtkitError, match='not supported with FSDP or DeepSpeed'):
        with offload.activation_offloading(m, run_cfg(deepspeed='zero2.json')):
            pass
    with pytest.raises(FtkitError, match='to disk is not supported'):
        with offload.activation_offloading(m, run_cfg(gradient_checkpointing='offload_disk')):
            pass
    with pytest.raises(FtkitError, match='has none'):
        with offload.activation_offloading(torch.nn.Linear(2, 2), run_cfg()):
            pass
    assert offload.offload_mode(run_cfg(gradient_checkpointing=True, activation_offloading=True))
    assert not offload.offload_mode(run_cfg(gradient_checkpointing=True))
    if not torch.cuda.is_available():
        with pytest.warns(UserWarning, match='plain checkpointing'):
            with offload.activation_offloading(m, run_cfg()) as off:
                assert off is None
