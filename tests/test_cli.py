"""The quick-start path end to end through the `ftkit` command: train, then load the adapter with peft."""

import subprocess, sys, json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_train_quickstart(tmp_path, venv_bin):
    out = tmp_path / 'run'
    r = subprocess.run(
        [
            str(venv_bin / 'ftkit'),
            'train',
            'examples/quickstart.yml',
            f'--output_dir={out}',
            f'--dataset_prepared_path={tmp_path}/prep',
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert 'at the start' in r.stdout and 'Sample:' in r.stdout
    losses = [m['loss'] for m in map(json.loads, (out / 'metrics.jsonl').read_text().splitlines()) if 'loss' in m]
    assert losses[-1] < 0.75 * losses[0], losses
    from peft import PeftModel, PeftConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    pc = PeftConfig.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(_tiny_path())
    model = PeftModel.from_pretrained(base, out)
    tok = AutoTokenizer.from_pretrained(out)
    assert pc.r == 16 and tok.chat_template and any('lora_B' in n for n, _ in model.named_parameters())
    assert (out / 'config.yaml').exists() and json.loads((out / 'metrics.jsonl').read_text().splitlines()[0])[
        'step'
    ] >= 1


def _tiny_path():
    from ftkit.tiny import tiny_model

    return tiny_model('llama', log=None)


def test_config_error_is_short(tmp_path, venv_bin):
    bad = tmp_path / 'bad.yml'
    bad.write_text("base_model: ftkit:tiny-llama\nlora_alhpa: 3\nlearning_rate: [\n")
    r = subprocess.run([str(venv_bin / 'ftkit'), 'train', str(bad)], capture_output=True, text=True)
    assert r.returncode == 1 and 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) <= 3, r.stderr
    assert 'bad.yml' in r.stderr and 'line' in r.stderr


def test_train_tiny_qwen3(tmp_path, venv_bin):
    "The second tiny family fine-tunes end to end too (ChatML template, no BOS, its own pad token)."
    out = tmp_path / 'qwen'
    r = subprocess.run(
        [
            str(venv_bin / 'ftkit'),
            'train',
            'examples/quickstart.yml',
            '--base_model=ftkit:tiny-qwen3',
            f'--output_dir={out}',
            f'--dataset_prepared_path={tmp_path}/prep',
            '--max_steps=30',
            '--logging_steps=1',
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    losses = [m['loss'] for m in map(json.loads, (out / 'metrics.jsonl').read_text().splitlines()) if 'loss' in m]
    assert len(losses) == 30 and sum(losses[-5:]) / 5 < 0.75 * sum(losses[:3]) / 3, losses
    assert '<|im_start|>assistant' in r.stdout  # the sample prompt was rendered with ChatML
