"""Several processes on the CPU: a 2-process DDP run through `accelerate launch` (gloo) trains with the ranks
in sync and leaves an adapter peft loads; interrupting it from a Jupyter kernel, or killing the kernel,
leaves no process behind."""

import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest, yaml
from jupyter_client.manager import start_new_kernel


def cfg_file(tmp, **kw):
    c = dict(
        base_model='ftkit:tiny-llama',
        adapter='lora',
        lora_target_linear=True,
        learning_rate=5e-3,
        datasets=[dict(path='ftkit:samples/chat', type='chat_template')],
        sequence_len=256,
        micro_batch_size=4,
        max_steps=8,
        logging_steps=1,
        save_strategy='no',
        output_dir=str(tmp / 'run'),
        dataset_prepared_path=str(tmp / 'prep'),
    )
    c.update(kw)
    p = tmp / 'cfg.yml'
    p.write_text(yaml.safe_dump(c))
    return p


def ftkit_procs(marker):
    "Live processes whose command line mentions `marker` (zombies excluded)."
    out = subprocess.run(['ps', '-ww', '-eo', 'pid=,stat=,args='], capture_output=True, text=True).stdout.splitlines()
    return [l for l in out if marker in l and not l.split()[1].startswith('Z') and 'ps -eo' not in l]


def test_ddp_two_processes_on_cpu(tmp_path):
    from ftkit.launch import launch

    r = launch(str(cfg_file(tmp_path)), mode='accelerate', num_processes=2, log=None)
    d = json.loads((tmp_path / 'run' / 'distributed.json').read_text())
    assert d["world_size"] == 2 and d["ranks_in_sync"] and len(set(d["checksums"])) == 1
    # the ranks trained together: a process group (gloo) and each rank its own share of the rows
    assert d["distributed_type"] == "MULTI_CPU" and len(set(d["tokens_per_rank"])) == 2, d
    assert [m['step'] for m in r.metrics if 'loss' in m] == list(range(1, 9)) and r.losses[-1] < r.losses[0]
    assert (tmp_path / 'run' / 'accelerate.yaml').exists() and yaml.safe_load(
        (tmp_path / 'run' / 'accelerate.yaml').read_text()
    )['num_processes'] == 2
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    from ftkit.tiny import tiny_model

    m = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model('llama', log=None)), tmp_path / 'run')
    assert any('lora_B' in n for n, _ in m.named_parameters())


def _kernel(tmp):
    km, kc = start_new_kernel(kernel_name='python3', cwd=str(tmp))
    kc.execute_interactive("%load_ext ftkit", timeout=60)
    return km, kc


def _wait_steps(metrics, n, timeout=180):
    t = time.time()
    while time.time() - t < timeout:
        if metrics.exists() and sum('"loss"' in l for l in metrics.read_text().splitlines()) >= n:
            return True
        time.sleep(0.2)
    return False


CELL = "%%finetune --launch accelerate --num-processes 2 --name r\n" + "\n".join(
    [
        "base_model: ftkit:tiny-llama",
        "adapter: lora",
        "lora_target_linear: true",
        "learning_rate: 5e-3",
        "datasets:",
        "  - path: ftkit:samples/chat",
        "    type: chat_template",
        "sequence_len: 256",
        "micro_batch_size: 4",
        "max_steps: 100000",
        "logging_steps: 1",
        "save_strategy: steps",
        "save_steps: 100000",
        "output_dir: {out}",
        "dataset_prepared_path: {prep}",
    ]
)


def test_interrupting_a_multi_process_run_from_the_kernel(tmp_path):
    km, kc = _kernel(tmp_path)
    try:
        out = tmp_path / 'ddp-int'
        msg_id = kc.execute(CELL.format(out=out, prep=tmp_path / 'prep'))
        assert _wait_steps(out / 'metrics.jsonl', 3), "training did not start"
        km.interrupt_kernel()
        t0 = time.time()
        reply = kc.get_shell_msg(timeout=90)
        while reply['parent_header'].get('msg_id') != msg_id:
            reply = kc.get_shell_msg(timeout=90)
        assert time.time() - t0 < 60
        time.sleep(1)
        assert ftkit_procs(str(out)) == [], ftkit_procs(str(out))
        assert list(out.glob('checkpoint-*')), "no checkpoint after the interrupt"
        said = []
        ok = kc.execute_interactive(
            "print(type(r).__name__, r.interrupted, r.steps > 0)",
            timeout=30,
            output_hook=lambda m: said.append(m['content'].get('text', '')) if m['msg_type'] == 'stream' else None,
        )
        assert ok['content']['status'] == 'ok' and ''.join(said).split() == ['TrainResult', 'SIGINT', 'True'], said
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_no_orphans_when_the_kernel_dies(tmp_path):
    km, kc = _kernel(tmp_path)
    out = tmp_path / 'ddp-kill'
    kc.execute(CELL.format(out=out, prep=tmp_path / 'prep'))
    assert _wait_steps(out / 'metrics.jsonl', 2)
    assert ftkit_procs(str(out))
    os.kill(km.provisioner.process.pid, signal.SIGKILL)
    t = time.time()
    while time.time() - t < 60 and ftkit_procs(str(out)):
        time.sleep(0.5)
    kc.stop_channels()
    assert ftkit_procs(str(out)) == [], ftkit_procs(str(out))


def test_notebook_launcher_refuses_after_cuda_init(monkeypatch, tmp_path):
    import torch
    from ftkit.launch import notebook_launch
    from ftkit.config import load_config
    from ftkit.errors import FtkitError

    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'is_initialized', lambda: True)
    with pytest.raises(FtkitError, match='CUDA has not been used yet'):
        notebook_launch(load_config(str(cfg_file(tmp_path))), 2)


def test_ftkit_train_launches_every_process(tmp_path):
    "`ftkit train --num-processes 2` goes through `accelerate launch` (gloo on CPUs); its ranks train together."
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'HF_DATASETS_OFFLINE': '1'}
    p = subprocess.run(
        [sys.executable, '-m', 'ftkit.cli', 'train', str(cfg_file(tmp_path)), '--num-processes', '2'],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    d = json.loads((tmp_path / 'run' / 'distributed.json').read_text())
    assert d['world_size'] == 2 and d['distributed_type'] == 'MULTI_CPU' and d['ranks_in_sync']
    assert yaml.safe_load((tmp_path / 'run' / 'accelerate.yaml').read_text())['num_processes'] == 2
    assert (tmp_path / 'run' / 'adapter_model.safetensors').exists()


def test_sigint_to_ftkit_train_stops_every_rank(tmp_path):
    "Ctrl-C on `ftkit train` (several ranks): every rank saves a checkpoint and stops, nothing is left, the exit is 130."
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'HF_DATASETS_OFFLINE': '1'}
    cfg = cfg_file(tmp_path, max_steps=100_000, save_steps=100_000, save_strategy='steps')
    p = subprocess.Popen(
        [sys.executable, '-m', 'ftkit.cli', 'train', str(cfg), '--num-processes', '2'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    try:
        assert _wait_steps(tmp_path / 'run' / 'metrics.jsonl', 3), "training did not start"
        p.send_signal(signal.SIGINT)
        out = p.communicate(timeout=120)[0]
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, out[-2000:]
    time.sleep(1)
    assert ftkit_procs(str(tmp_path / 'run')) == [], ftkit_procs(str(tmp_path / 'run'))
    from ftkit.files import latest_checkpoint

    assert latest_checkpoint(tmp_path / 'run'), "no complete checkpoint after the interrupt"


def test_inside_a_launch_ftkit_train_trains_in_place(monkeypatch):
    from ftkit.cli import in_distributed_launch

    for var, value in [('WORLD_SIZE', '2'), ('LOCAL_RANK', '0'), ('SLURM_NTASKS', '4')]:
        monkeypatch.delenv('WORLD_SIZE', raising=False)
        monkeypatch.delenv('LOCAL_RANK', raising=False)
        monkeypatch.delenv('SLURM_NTASKS', raising=False)
        assert not in_distributed_launch()
        monkeypatch.setenv(var, value)
        assert in_distributed_launch()
