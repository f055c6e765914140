"""Preference and RL training: Axolotl's RL dataset types rendered exactly as Axolotl 0.19 renders them
(tests/data/golden/rl_*.json, produced by Axolotl itself), and every method training on the tiny model:
DPO learns a learnable preference, ORPO, KTO, SimPO, GRPO (with a reward function from a local .py file),
the reward model and the process reward model train, log their metrics and save."""

import json, math, importlib.util
from pathlib import Path
import pytest
from ftkit.config import load_config, preference_kind
from ftkit.errors import FtkitError
from ftkit.tokenizer import load_tokenizer

GOLDEN = Path(__file__).parent / 'data' / 'golden'
# the preference fixtures; one `rl_` fixture records Axolotl's SFT data path (no `rl:`) and is not a preference type
CASES = [c for c in sorted(GOLDEN.glob('rl_*.json')) if 'SFT data path' not in json.loads(c.read_text()).get('description', '')]
needs_trl = pytest.mark.skipif(importlib.util.find_spec('trl') is None, reason="TRL is not installed")

# ---------------------------------------------------------------------------------------------------------
# Golden fixtures
# ---------------------------------------------------------------------------------------------------------

_TOP = dict(dpo=dict(rl='dpo'), ipo=dict(rl='ipo'), orpo=dict(rl='orpo'), kto=dict(rl='kto'), simpo=dict(rl='simpo'),
            rm=dict(reward_model=True), prm=dict(process_reward_model=True))


def _cfg(fx, tmp):
    top = {**fx.get('config', {}), **fx.get('config_fixed', {})}
    sp = (fx.get('config_validated') or {}).get('special_tokens')
    if sp and 'special_tokens' not in top:
        top['special_tokens'] = sp
    method = fx.get('method')
    if method in _TOP and not any(k in top for k in ('rl', 'reward_model', 'process_reward_model')):
        top.update(_TOP[method])
    path = tmp / 'rows.jsonl'
    path.write_text(''.join(json.dumps(r['row'], ensure_ascii=False) + '\n' for r in fx['rows']))
    return load_config(
        dict(
            base_model=str(GOLDEN / 'tokenizers' / fx['tokenizer']),
            learning_rate=1e-5,
            datasets=[dict(path=str(path), **_dataset_entry(fx))],
            dataset_prepared_path=str(tmp / 'prep'),
            **top,
        ),
        warn=False,
    )


def _dataset_entry(fx):
    """The dataset entry as Axolotl used it: its validation drops keys its schema lacks (`step_separator`,
    `max_completion_length`, `train_on_last_step_only` of `stepwise_supervised`), which ftkit honours; the
    comparison is of the same effective settings."""
    entry = dict(fx['dataset_config'])
    validated = fx.get('dataset_config_validated')
    if validated:
        entry = {k: v for k, v in entry.items() if k in validated}
    return entry


def _rows(cfg, fx):
    "The fixture rows as the datasets library reads them (missing keys as None, as Axolotl saw them)."
    from ftkit.data import load_source

    try:
        return [dict(r) for r in load_source(cfg.datasets[0])]
    except Exception:  # mixed types in a column: the rows one by one, as the generator also ran them
        keys = {k for r in fx['rows'] for k in r['row']}
        return [{k: r['row'].get(k) for k in keys} for r in fx['rows']]


def _known_deviation(field, axo, ours, row):
    """Where ftkit deliberately differs from Axolotl's `chat_template` answer cut: Axolotl's search for the
    answer missed (it keeps the rendering's last character), or hit the answer's text in the markup first
    (ftkit's answer is then a proper suffix of Axolotl's)."""
    return field in ('chosen', 'rejected') and (len(axo) <= 1 or (axo.endswith(ours) and len(ours) < len(axo)))


@needs_trl
@pytest.mark.parametrize('case', CASES, ids=[c.stem for c in CASES])
def test_matches_axolotl(case, tmp_path):
    from ftkit.preference_data import renderer, finish_row, BadRow, PrefDrop

    from ftkit.templates import SHIPPED_TEMPLATES

    fx = json.loads(case.read_text())
    name = fx['dataset_config'].get('chat_template') or fx.get('config', {}).get('chat_template')
    if name and name not in SHIPPED_TEMPLATES and not name.startswith('tokenizer_default'):
        pytest.skip(f"ftkit does not ship the `{name}` chat template yet")
    from ftkit.errors import ConfigError

    try:
        cfg = _cfg(fx, tmp_path)
    except ConfigError as e:
        if 'is not a type for this method' in str(e):
            pytest.xfail(f"config validation refuses Axolotl's `{fx['dataset_config']['type']}` ({e.problems[0]})")
        raise
    kind = preference_kind(cfg)
    tok = load_tokenizer(cfg)
    has_output = [r for r in fx['rows'] if 'output' in r or 'chosen_ids' in r or 'input_ids' in r]
    if fx.get('error') and not has_output:
        # Axolotl could not load the type at all; ftkit either refuses it too or (chatml.argilla: Axolotl's
        # old name for the layout `default` reads) renders it as its documented alias
        try:
            renderer(cfg.datasets[0], cfg, tok)
        except FtkitError:
            pass
        return
    render, _ = renderer(cfg.datasets[0], cfg, tok)
    checked, deviations = 0, 0
    for r, row in zip(fx['rows'], _rows(cfg, fx)):
        try:
            got = finish_row(kind, render(dict(row)), cfg, tok)
            dropped = None
        except BadRow as e:
            got, dropped = None, str(e)
        where = f"row {r['index']} {json.dumps(r['row'], ensure_ascii=False)[:120]}"
        if r.get('bad') or 'error' in r:
            assert dropped, f"{where}: Axolotl {'failed' if 'error' in r else 'keeps a bad row'}; ftkit must drop it"
            checked += 1
            continue
        if 'output' in r:  # a string transform (rl: dpo/orpo/kto ...)
            want = r.get('after_truncate') or r['output']
            if not r.get('kept', True):
                assert dropped, f"{where}: Axolotl drops it (too long); ftkit keeps {got}"
                checked += 1
                continue
            if dropped == PrefDrop.SAME and want.get('chosen') == want.get('rejected'):
                deviations += 1  # Axolotl keeps a pair whose answers came out identical; ftkit drops it
                continue
            assert not dropped, f"{where}: ftkit drops it ({dropped}); Axolotl keeps {want}"
            for k in ('prompt', 'chosen', 'rejected', 'completion', 'label'):
                if k not in want or k not in got:
                    continue
                if got[k] != want[k] and _known_deviation(k, want[k], got[k], r['row']):
                    deviations += 1
                    continue
                assert got[k] == want[k], f"{where}: {k} differs\n ftkit:   {got[k]!r}\n axolotl: {want[k]!r}"
        else:  # a tokenizing strategy (reward models)
            assert not dropped, f"{where}: ftkit drops it ({dropped})"
            for k in ('chosen_ids', 'rejected_ids', 'input_ids', 'labels'):
                if k in r:
                    show = (lambda x: tok.decode(x)) if k.endswith('ids') else (lambda x: x)
                    assert got[k] == r[k], f"{where}: {k} differ\n ftkit:   {show(got[k])!r}\n axolotl: {show(r[k])!r}"
        checked += 1
    assert checked + deviations >= 1 or not has_output


def test_fixture_rows_are_the_handcrafted_ones():
    "Every RL fixture names its method and marks its deliberately bad rows (the generator's contract)."
    for case in CASES:
        fx = json.loads(case.read_text())
        assert fx.get('method') and 'rows' in fx, case.name


# ---------------------------------------------------------------------------------------------------------
# Training: every method on the tiny model, from the example configs (run from the repository root, as a
# user would), with small overrides for time
# ---------------------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / 'examples'


def test_example_data_matches_its_generator():
    from ftkit.preference_data import example_data

    for name, rows in example_data().items():
        lines = (EXAMPLES / 'data' / name).read_text().splitlines()
        assert [json.loads(l) for l in lines] == rows, name


@pytest.fixture
def in_root(monkeypatch, tmp_path):
    "Run from the repository root (the examples' data paths and reward modules are relative to it)."
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    return tmp_path


def _train(name, tmp, **ov):
    import ftkit

    ov = {'output_dir': str(tmp / name), 'dataset_prepared_path': str(tmp / 'prep'), 'save_strategy': 'no', **ov}
    return ftkit.train(str(EXAMPLES / f"{name}.yml"), overrides=ov, log=None)


@needs_trl
def test_dpo_learns_the_preference(in_root):
    res = _train('dpo', in_root, num_epochs=3)
    rows = [r for r in res.metrics if 'loss' in r]
    first, last = rows[0], rows[-3:]
    assert abs(first['loss'] - math.log(2)) < 1e-3  # the policy starts as the reference
    assert sum(r['loss'] for r in last) / len(last) < math.log(2) - 0.1, [r['loss'] for r in rows]
    acc = [r['rewards/accuracies'] for r in rows]
    assert acc[0] == 0 and sum(acc[-3:]) / 3 >= 0.7, acc  # no pair won at the start (equal rewards), most at the end
    assert {'rewards/chosen', 'rewards/rejected', 'rewards/margins'} <= set(rows[-1]) and rows[-1]['tokens'] > 0
    out = Path(res.output_dir)
    assert (out / 'adapter_config.json').exists() and (out / 'metrics.jsonl').exists()
    assert isinstance(res.generate('What is the capital of Peru?', max_new_tokens=8), str)
    merged = res.merge(log=None)
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(merged).config.vocab_size > 0


METHOD_METRICS = dict(
    ipo=['rewards/margins'],
    simpo=['rewards/accuracies', 'nll_loss'],
    orpo=['log_odds_ratio', 'nll_loss'],
    kto=['kl', 'rewards/chosen'],
    grpo=['reward', 'completions/mean_length'],
)


@needs_trl
@pytest.mark.parametrize('name', list(METHOD_METRICS))
def test_method_trains_logs_and_saves(name, in_root):
    res = _train(name, in_root, max_steps=3)
    rows = [r for r in res.metrics if 'loss' in r]
    assert len(rows) == 3 and all(math.isfinite(r['loss']) for r in rows), rows
    assert set(METHOD_METRICS[name]) <= set(rows[-1]), sorted(rows[-1])
    assert (Path(res.output_dir) / 'adapter_config.json').exists()
    from ftkit.methods import method_for

    flat = {n for g in method_for(res.cfg).metrics for n in ((g,) if isinstance(g, str) else g)}
    assert flat & set(rows[-1]), "the live view would plot none of the logged metrics"


@needs_trl
def test_reward_model_trains_and_loads_as_a_classifier(in_root, monkeypatch):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification
    res = _train('reward_model', in_root, max_steps=4)
    rows = [r for r in res.metrics if 'loss' in r]
    assert len(rows) == 4 and {'accuracy', 'margin'} <= set(rows[-1])
    rm = AutoModelForSequenceClassification.from_pretrained(res.output_dir)
    assert rm.config.num_labels == 1
    ids = torch.tensor([res.tokenizer('What is 2 plus 2?')['input_ids']])
    assert rm(input_ids=ids).logits.shape == (1, 1)
    res = _train('process_reward_model', in_root, max_steps=3)
    assert len([r for r in res.metrics if 'loss' in r]) == 3
    assert AutoModelForTokenClassification.from_pretrained(res.output_dir).config.num_labels == 2


@needs_trl
def test_dry_run_plans_a_dpo_run(in_root):
    from ftkit.training import plan, format_plan

    p = plan(str(EXAMPLES / 'dpo.yml'))
    assert p['rows'] == 64 and p['trained_tokens'] > 0 and p['optimizer_steps'] == 12
    assert '64 rows' in format_plan(p)
    from ftkit.methods import method_for

    lines = method_for(load_config(EXAMPLES / 'dpo.yml', warn=False)).plan_lines(load_config(EXAMPLES / 'dpo.yml', warn=False), p)
    assert lines[0].startswith('pairs: 64') and 'adapter disabled' in lines[1], lines


def test_without_trl_an_rl_run_fails_at_once_with_one_line(monkeypatch, tmp_path):
    import importlib.util as iu
    import ftkit

    real = iu.find_spec
    monkeypatch.setattr(iu, 'find_spec', lambda name, *a, **k: None if name == 'trl' else real(name, *a, **k))
    cfg = load_config(EXAMPLES / 'dpo.yml', overrides={'output_dir': str(tmp_path / 'o')}, warn=False)
    with pytest.raises(FtkitError) as e:
        ftkit.train(cfg, log=None)
    assert str(e.value) == "rl: dpo needs TRL: pip install 'ftkit[rl]'"


def test_grpo_refuses_use_vllm_without_vllm(in_root):
    if importlib.util.find_spec('vllm') is not None:
        pytest.skip('vllm is installed')
    from ftkit.methods.grpo import grpo_kwargs

    cfg = load_config(EXAMPLES / 'grpo.yml', overrides={'trl.use_vllm': True}, warn=False)
    with pytest.raises(FtkitError, match=r"pip install 'ftkit\[vllm\]'"):
        grpo_kwargs(cfg)


# ---------------------------------------------------------------------------------------------------------
# A `%%finetune` cell running DPO in a real kernel: the live view plots DPO's metrics; an interrupt leaves a
# checkpoint the next cell resumes from
# ---------------------------------------------------------------------------------------------------------

DPO_CELL = """%%finetune --name {name} {line}
base_model: ftkit:tiny-llama
rl: dpo
rl_beta: 0.5
datasets:
  - path: {data}
    type: llama3.intel
adapter: lora
lora_r: 8
lora_alpha: 16
lora_target_linear: true
sequence_len: 256
micro_batch_size: 4
learning_rate: 5e-3
logging_steps: 1
dataset_prepared_path: {out}/prep
output_dir: {out}/run
"""


@needs_trl
def test_finetune_cell_runs_dpo_with_the_live_view_and_resumes(tmp_path):
    import time
    from jupyter_client.manager import start_new_kernel
    from test_kernel import run

    km, kc = start_new_kernel(kernel_name='python3', cwd=str(tmp_path))
    try:
        cell = lambda name, line: DPO_CELL.format(
            name=name, line=line, data=EXAMPLES / 'data' / 'pairs.jsonl', out=tmp_path
        )
        run(kc, "%load_ext ftkit")
        msg_id = kc.execute(cell('r1', 'max_steps=1000 save_strategy=steps save_steps=1000'))
        metrics = tmp_path / 'run' / 'metrics.jsonl'
        deadline = time.time() + 120
        while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
            time.sleep(0.2)
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=60)
        while reply['parent_header'].get('msg_id') != msg_id:
            reply = kc.get_shell_msg(timeout=60)
        assert reply['content']['status'] == 'ok', reply['content']
        cps = sorted((tmp_path / 'run').glob('checkpoint-*'), key=lambda p: int(p.name.split('-')[1]))
        assert cps, "no checkpoint after the interrupt"
        step = int(cps[-1].name.split('-')[1])
        out, err, disp, exc = run(kc, cell('r2', f'--resume max_steps={step + 2} save_strategy=steps save_steps=1000'))
        assert exc is None, (exc, err)
        live = [d['text/html'] for d in disp if 'ftkit-live' in d.get('text/html', '')]
        assert 'done:' in live[-1] and 'rewards: chosen' in live[-1] and 'rewards/accuracies' in live[-1]
        assert live[-1].count('<svg') >= 5  # loss, learning rate, rewards, margins, accuracies
        steps = [json.loads(l)['step'] for l in metrics.read_text().splitlines() if '"loss"' in l]
        assert steps == list(range(1, step + 3)), steps
        out, err, _, exc = run(kc, "print(type(r2).__name__, r2.interrupted, r1.interrupted)")
        assert out.split() == ['TrainResult', 'None', 'SIGINT'], (out, err, exc)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
