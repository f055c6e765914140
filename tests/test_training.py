"""Training behaviour end to end on the tiny model: packing, gradient accumulation, interruption and
resume, divergence, early stopping, full fine-tuning, continuing an adapter."""

import json, os, signal, subprocess, sys
from pathlib import Path
import pytest, torch
from ftkit.training import train, TrainingStopped
from ftkit.files import latest_checkpoint
from ftkit.tiny import tiny_model

ROOT = Path(__file__).resolve().parents[1]


def base(tmp, **kw):
    d = dict(
        base_model='ftkit:tiny-llama',
        adapter='lora',
        lora_r=8,
        lora_alpha=16,
        lora_target_linear=True,
        datasets=[dict(path='ftkit:samples/chat', type='chat_template')],
        sequence_len=256,
        micro_batch_size=4,
        learning_rate=3e-3,
        lr_scheduler='constant',
        logging_steps=1,
        save_strategy='no',
        dataset_prepared_path=str(tmp / 'prep'),
        output_dir=str(tmp / 'run'),
    )
    d.update(kw)
    return d


def adapter_weights(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if 'lora' in n}


def test_gradient_accumulation_normalises_the_loss(tmp_path):
    "One optimizer step of 4 x 2 accumulated micro-batches equals one step of a micro-batch of 8 (same rows, SGD)."
    kw = dict(optimizer='sgd', learning_rate=0.5, max_steps=1, warmup_steps=0, max_grad_norm=1e9)
    a = train(
        base(tmp_path, micro_batch_size=8, gradient_accumulation_steps=1, output_dir=str(tmp_path / 'a'), **kw),
        log=None,
    )
    b = train(
        base(tmp_path, micro_batch_size=2, gradient_accumulation_steps=4, output_dir=str(tmp_path / 'b'), **kw),
        log=None,
    )
    wa, wb = adapter_weights(a.model), adapter_weights(b.model)
    diff = max((wa[k] - wb[k]).abs().max().item() for k in wa)
    assert diff < 1e-5 and abs(a.losses[0] - b.losses[0]) < 1e-4, (diff, a.losses, b.losses)


def test_padding_free_batch_gives_the_padded_loss():
    "The loss of a micro-batch is the same padded or flattened padding-free (same rows)."
    from transformers import AutoModelForCausalLM
    from ftkit.packing import Collator
    from ftkit.config import load_config
    from ftkit.data import prepare_dataset
    from ftkit.tokenizer import load_tokenizer

    cfg = load_config(base(Path('/tmp')), warn=False)
    tok = load_tokenizer(cfg)
    dd, _ = prepare_dataset(cfg, tok, log=None)
    rows = [dd['train'][i] for i in range(6)]
    m = AutoModelForCausalLM.from_pretrained(tiny_model('llama')).eval()
    with torch.no_grad():
        pad = Collator(tok.pad_token_id)(rows)
        packed = Collator(tok.pad_token_id, packing=True)(rows)
        # the padded loss counts each row's first label, the packed one cannot: compare on the same labels
        pad['labels'][:, 0] = -100
        lp = m(**pad, use_cache=False).loss.item()
        lq = m(**packed, use_cache=False).loss.item()
    assert abs(lp - lq) < 1e-4, (lp, lq)


def test_packed_run_learns_like_an_unpacked_one(tmp_path):
    "One epoch packed into bins reaches an eval loss close to one epoch unpacked."
    kw = dict(num_epochs=1, val_set_size=0.1, evals_per_epoch=1, lr_scheduler='cosine', warmup_steps=0)
    u = train(base(tmp_path, sample_packing=False, output_dir=str(tmp_path / 'u'), micro_batch_size=4, **kw), log=None)
    p = train(base(tmp_path, sample_packing=True, output_dir=str(tmp_path / 'p'), micro_batch_size=1, **kw), log=None)
    eu = [m['eval_loss'] for m in u.metrics if 'eval_loss' in m][-1]
    ep = [m['eval_loss'] for m in p.metrics if 'eval_loss' in m][-1]
    first = u.losses[0]
    assert eu < 0.8 * first and ep < 0.8 * first and abs(eu - ep) / eu < 0.15, (first, eu, ep)
    assert len(p.losses) < len(u.losses)  # fewer, fuller steps


def test_interrupt_then_resume_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    from transformers import TrainerCallback
    import ftkit.training as T

    full = train(base(tmp_path, max_steps=16, output_dir=str(tmp_path / 'full')), log=None)

    class Kill(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 6:
                os.kill(os.getpid(), signal.SIGINT)

    orig = T.guard_callback
    monkeypatch.setattr(T, 'guard_callback', lambda cfg: _chain(orig(cfg), Kill()))
    part = train(base(tmp_path, max_steps=16, output_dir=str(tmp_path / 'int')), log=None)
    monkeypatch.setattr(T, 'guard_callback', orig)
    assert part.interrupted == 'SIGINT' and latest_checkpoint(tmp_path / 'int').endswith('checkpoint-6')
    assert not (tmp_path / 'int' / 'adapter_model.safetensors').exists()
    rest = train(
        base(tmp_path, max_steps=16, output_dir=str(tmp_path / 'int'), auto_resume_from_checkpoints=True), log=None
    )
    wf, wr = adapter_weights(full.model), adapter_weights(rest.model)
    assert max((wf[k] - wr[k]).abs().max().item() for k in wf) < 1e-5
    lf, lr = full.losses, rest.losses
    assert len(lr) == 16 and max(abs(a - b) for a, b in zip(lf, lr)) < 1e-4, (lf, lr)
    steps = [
        json.loads(l)['step'] for l in (tmp_path / 'int' / 'metrics.jsonl').read_text().splitlines() if '"loss"' in l
    ]
    assert steps == list(range(1, 17))


def _chain(guard, extra):
    "A guard callback that also runs `extra`'s step hook first."
    on_end = guard.on_step_end

    def both(args, state, control, **kw):
        extra.on_step_end(args, state, control, **kw)
        return on_end(args, state, control, **kw)

    guard.on_step_end = both
    return guard


def test_sigterm_from_outside_saves_a_checkpoint(tmp_path):
    cfg = tmp_path / 'cfg.yml'
    import yaml

    cfg.write_text(yaml.safe_dump(base(tmp_path, max_steps=100000, num_epochs=1000)))
    p = subprocess.Popen(
        [str(Path(sys.executable).parent / 'ftkit'), 'train', str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for line in p.stdout:
        if line.startswith('step') and int(line.split()[1].split('/')[0]) >= 3:
            break
    p.send_signal(signal.SIGTERM)
    out = p.communicate(timeout=120)[0]
    assert p.returncode == 143, out  # stopped by SIGTERM: 128 + 15, as shells expect
    assert (
        'Stopped by SIGTERM' in out
        and '--auto_resume_from_checkpoints=true' in out
        and latest_checkpoint(tmp_path / 'run')
    )


def test_diverging_loss_stops_the_run(tmp_path):
    with pytest.raises(TrainingStopped) as e:
        train(
            base(
                tmp_path,
                learning_rate=0.9,
                optimizer='sgd',
                max_grad_norm=1e9,
                max_steps=40,
                loss_watchdog_threshold=1.0,  # below any loss this tiny model reaches: the watchdog must fire at step 2
                loss_watchdog_patience=2,
            ),
            log=None,
        )
    assert 'loss_watchdog_threshold 1.0 for 2 logged steps' in str(e.value) and 'at step 2)' in str(e.value), e.value


def test_early_stopping(tmp_path):
    r = train(
        base(tmp_path, learning_rate=0.05, max_steps=60, val_set_size=0.1, eval_steps=2, early_stopping_patience=1),
        log=None,
    )
    assert r.metrics[-1]['step'] < 60


def test_full_finetune_and_continuing_an_adapter(tmp_path):
    ff = train(base(tmp_path, adapter=None, learning_rate=1e-3, max_steps=8, output_dir=str(tmp_path / 'ff')), log=None)
    assert (tmp_path / 'ff' / 'model.safetensors').exists() and ff.losses[-1] < ff.losses[0]
    first = train(base(tmp_path, max_steps=6, output_dir=str(tmp_path / 'a1')), log=None)
    more = train(
        base(tmp_path, max_steps=6, lora_model_dir=str(tmp_path / 'a1'), output_dir=str(tmp_path / 'a2')), log=None
    )
    assert more.losses[0] < first.losses[0] - 0.2, (first.losses, more.losses)
    card = (tmp_path / 'a2' / 'README.md').read_text()
    assert 'LoRA adapter for `ftkit:tiny-llama`' in card and 'ftkit merge-lora' in card
