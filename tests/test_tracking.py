"""Trackers and the Hub, end to end through `ftkit train` on the tiny model, with the real packages and no network:

- W&B in offline mode logs the run under the configured project, entity and name, with the losses of metrics.jsonl;
- MLflow with a local file store gets the experiment, the run name and the same losses;
- Comet in offline mode writes its experiment archive, and its API key never reaches the run folder;
- a Hub push without a token is refused before the model loads; with a token but no network, it stops with one line.
"""

import glob, json, os, struct, subprocess, sys, zipfile
from pathlib import Path
import pytest, yaml

BASE = dict(
    base_model='ftkit:tiny-llama',
    adapter='lora',
    lora_target_linear=True,
    learning_rate=5e-3,
    datasets=[dict(path='ftkit:samples/chat', type='chat_template')],
    sequence_len=256,
    micro_batch_size=8,
    max_steps=3,
    logging_steps=1,
    save_strategy='no',
)


def train(tmp, env=None, **keys):
    "Run `ftkit train` on a config of BASE + keys in `tmp`; return (process, run folder)."
    cfg = dict(BASE, output_dir=str(tmp / 'run'), dataset_prepared_path=str(tmp / 'prep'), **keys)
    (tmp / 'cfg.yml').write_text(yaml.safe_dump(cfg))
    full_env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'HF_DATASETS_OFFLINE': '1', **(env or {})}
    p = subprocess.run(
        [sys.executable, '-m', 'ftkit.cli', 'train', str(tmp / 'cfg.yml')],
        cwd=tmp,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return p, tmp / 'run'


def losses(run):
    return [r['loss'] for r in map(json.loads, (run / 'metrics.jsonl').read_text().splitlines()) if 'loss' in r]


def wandb_records(path):
    "The records of a W&B offline run file: a 7-byte header, then the LevelDB log format (32 KiB blocks)."
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, block, buf = Path(path).read_bytes(), 7, 32768, b''
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack('<IHB', data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (1, 4):
            r = pb.Record()
            r.ParseFromString(buf + chunk if kind == 4 else chunk)
            yield r
        elif kind == 2:
            buf = chunk
        elif kind == 3:
            buf += chunk


def test_wandb_offline_logs_under_the_configured_project(tmp_path):
    keys = dict(wandb_project='ftkit-tests', wandb_entity='ftkit-team', wandb_name='tiny-run', wandb_mode='offline')
    p, run = train(tmp_path, env={'WANDB_DIR': str(tmp_path), 'WANDB_API_KEY': ''}, **keys)
    assert p.returncode == 0, p.stdout + p.stderr
    (f,) = glob.glob(str(tmp_path / 'wandb' / 'offline-run-*' / 'run-*.wandb'))
    records = list(wandb_records(f))
    (info,) = [r.run for r in records if r.WhichOneof('record_type') == 'run']
    assert (info.project, info.entity, info.display_name) == ('ftkit-tests', 'ftkit-team', 'tiny-run')
    logged = [
        float(i.value_json)
        for r in records
        if r.WhichOneof('record_type') == 'history'
        for i in r.history.item
        if (i.key or '/'.join(i.nested_key)) == 'train/loss'
    ]
    assert logged == pytest.approx(losses(run), rel=1e-6)


def test_wandb_online_without_a_key_is_refused_before_loading(tmp_path):
    env = {'WANDB_API_KEY': '', 'NETRC': str(tmp_path / 'no-netrc'), 'HOME': str(tmp_path)}
    p, run = train(tmp_path, env=env, wandb_project='ftkit-tests')
    assert p.returncode == 1 and 'wandb_mode: offline' in p.stderr and 'Traceback' not in p.stderr, p.stderr
    assert not (run / 'metrics.jsonl').exists()


def test_mlflow_file_store_gets_the_run(tmp_path):
    store = tmp_path / 'mlruns'
    p, run = train(tmp_path, mlflow_tracking_uri=str(store), mlflow_experiment_name='ftkit-exp', mlflow_run_name='r1')
    assert p.returncode == 0, p.stdout + p.stderr
    env = {**os.environ, 'MLFLOW_ALLOW_FILE_STORE': 'true'}
    code = (
        "import mlflow, json, sys; mlflow.set_tracking_uri(sys.argv[1]); c = mlflow.MlflowClient();"
        "e = c.get_experiment_by_name('ftkit-exp'); (r,) = c.search_runs([e.experiment_id]);"
        "h = c.get_metric_history(r.info.run_id, 'loss');"
        "print(json.dumps([r.info.run_name, [m.value for m in sorted(h, key=lambda m: m.step)]]))"
    )
    out = subprocess.run([sys.executable, '-c', code, str(store)], capture_output=True, text=True, env=env)
    name, logged = json.loads(out.stdout.strip().splitlines()[-1])
    assert name == 'r1' and logged == pytest.approx(losses(run), rel=1e-6)


def test_comet_offline_and_its_key_stays_out_of_the_run_folder(tmp_path):
    keys = dict(
        use_comet=True,
        comet_api_key='secret-comet-key-123',
        comet_project_name='ftkit-comet',
        comet_online=False,
        comet_experiment_config=dict(offline_directory=str(tmp_path / 'comet')),
    )
    p, run = train(tmp_path, env={'COMET_API_KEY': ''}, **keys)
    assert p.returncode == 0, p.stdout + p.stderr
    (archive,) = glob.glob(str(tmp_path / 'comet' / '*.zip'))
    z = zipfile.ZipFile(archive)
    assert json.loads(z.read('experiment.json'))['project_name'] == 'ftkit-comet'
    messages = [json.loads(l) for l in z.read('messages.json').decode().splitlines()]
    logged = [m['payload']['metric'] for m in messages if m['type'] == 'metric_msg']
    assert [m['metricValue'] for m in logged if m['metricName'] == 'train/loss'] == pytest.approx(losses(run), rel=1e-6)
    for f in run.rglob('*'):
        if f.is_file():
            assert b'secret-comet-key-123' not in f.read_bytes(), f


def test_hub_push_needs_a_token_and_the_network(tmp_path):
    env = {'HF_TOKEN': '', 'HF_HOME': str(tmp_path / 'hf')}
    p, run = train(tmp_path, env=env, hub_model_id='me/tiny-run')
    assert p.returncode == 1 and 'hf auth login' in p.stderr and 'Traceback' not in p.stderr, p.stderr
    assert not (run / 'metrics.jsonl').exists()
    p, run = train(tmp_path, env={**env, 'HF_TOKEN': 'hf_not_a_real_token'}, hub_model_id='me/tiny-run')
    assert p.returncode == 1 and 'cannot create or push to me/tiny-run' in p.stderr, p.stderr
    assert 'Traceback' not in p.stderr and len(p.stderr.strip().splitlines()) <= 3, p.stderr
