"""Bad input gets one clear line (key or line, what to do), never a traceback, and never trains something else.

Config-level cases run in-process (`load_config`); cases that need the command line run `ftkit validate` as a
user would, and check the exit status and that stderr is short and has no traceback."""

import os, subprocess, sys, time
from pathlib import Path
import pytest, yaml
from ftkit.config import load_config, interpolate
from ftkit.errors import ConfigError

BASE = "base_model: m\nlearning_rate: 1e-4\ndatasets:\n  - path: d.jsonl\n    type: alpaca\n"


def problems(src, **kw):
    with pytest.raises(ConfigError) as e:
        load_config(src, warn=False, **kw)
    for p in e.value.problems:
        assert '\n' not in p and len(p) < 260 and 'Traceback' not in p
    return e.value.problems


def validate(tmp, text_or_bytes, args=()):
    "Run `ftkit validate` on a file holding `text_or_bytes`; return (exit status, stderr)."
    f = tmp / 'cfg.yml'
    f.write_bytes(text_or_bytes if isinstance(text_or_bytes, bytes) else text_or_bytes.encode())
    p = subprocess.run([sys.executable, '-m', 'ftkit.cli', 'validate', str(f), *args], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stderr


# ---- YAML that attacks the reader


def test_alias_bomb_is_refused_at_once():
    bomb = 'a: &a [' + ','.join(['"lol"'] * 9) + ']\n'
    bomb += ''.join(f"{c}: &{c} [{','.join([f'*{p}'] * 9)}]\n" for p, c in zip('abcdefgh', 'bcdefghi'))
    t = time.time()
    assert problems(bomb) == ["line 1: its YAML aliases (`*name`) expand to more than 1,000,000 values; a config never needs that"]
    assert time.time() - t < 5


def test_deep_nesting_is_refused():
    assert problems('a: ' + '[' * 100_000 + ']' * 100_000) == [
        "line 1: nested more than 50 levels deep; a config never needs that"
    ]


def test_anchors_and_aliases_still_work():
    cfg = load_config(BASE + "test_datasets:\n  - &d {path: e.jsonl, type: alpaca}\n", warn=False)
    assert cfg.test_datasets[0].path == 'e.jsonl'


@pytest.mark.parametrize(
    'content, said',
    [
        (b'base_model: m\n# caf\xe9 (Latin-1)\n', "line 2, column 6: byte 0xe9 is not UTF-8 text"),
        (b'\x89PNG\r\n\x1a\n\x00\x00', "line 1, column 1: byte 0x89 is not UTF-8 text"),
        (b'base_model: m\x00\n', "line 1: a control character (code 0x0) that YAML does not allow"),
    ],
)
def test_binary_and_non_utf8_files(tmp_path, content, said):
    rc, err = validate(tmp_path, content)
    assert rc == 1 and said in err and 'Traceback' not in err, err
    assert len(err.strip().splitlines()) <= 3


def test_a_folder_or_a_missing_file(tmp_path):
    (tmp_path / 'run').mkdir()
    (tmp_path / 'run' / 'config.yaml').write_text(BASE)
    p = subprocess.run([sys.executable, '-m', 'ftkit.cli', 'validate', str(tmp_path / 'run')], capture_output=True, text=True)
    assert p.returncode == 1 and 'is a folder; give the YAML file (e.g.' in p.stderr and 'config.yaml' in p.stderr, p.stderr
    p = subprocess.run([sys.executable, '-m', 'ftkit.cli', 'validate', str(tmp_path / 'nope.yml')], capture_output=True, text=True)
    assert p.returncode == 1 and 'config file not found:' in p.stderr and 'Traceback' not in p.stderr


# ---- values that would train wrongly without a word


@pytest.mark.parametrize(
    'extra, key',
    [
        ('num_epochs: 0', 'num_epochs'),
        ('num_epochs: -1', 'num_epochs'),
        ('max_steps: -3', 'max_steps'),
        ('warmup_ratio: 2', 'warmup_ratio'),
        ('val_set_size: 1.5', 'val_set_size'),
        ('learning_rate: .nan', 'learning_rate'),
        ('gradient_accumulation_steps: 0', 'gradient_accumulation_steps'),
        ('adapter: lora\nlora_target_linear: true\nlora_r: 0', 'lora_r'),
        ('adapter: lora\nlora_target_linear: true\nlora_r: -8', 'lora_r'),
        ('adapter: lora\nlora_target_linear: true\nlora_alpha: 0', 'lora_alpha'),
        ('adapter: lora\nlora_target_linear: true\nlora_dropout: 1.5', 'lora_dropout'),
    ],
)
def test_out_of_range_values_name_the_key_and_line(extra, key):
    text = BASE.replace('learning_rate: 1e-4\n', '') + ('' if key == 'learning_rate' else 'learning_rate: 1e-4\n') + extra + '\n'
    said = [p for p in problems(text) if f"`{key}:" in p]
    assert said and said[0].startswith('line ') and 'is out of range' in said[0], said


def test_an_override_past_the_end_of_a_list():
    assert problems(BASE, overrides={'datasets.5.path': 'x'}) == [
        "`datasets.5.path`: `datasets` has 1 entries (indices 0 to 0), no `5`"
    ]


def test_a_typo_in_a_required_key_points_at_the_typo():
    assert problems(BASE.replace('learning_rate', 'learing_rate')) == [
        "line 2: `learing_rate`: unknown key (did you mean `learning_rate`?)"
    ]


def test_warnings_come_with_the_errors():
    with pytest.raises(ConfigError) as e:
        load_config(BASE + "lora_mlp_kernel: true\nnum_epochs: 0\n", warn=False)
    assert any('lora_mlp_kernel' in n for n in e.value.notes) and '(warning)' in str(e.value)


# ---- $var substitution from a notebook


def test_variables_keep_their_meaning():
    np = pytest.importorskip('numpy')
    text = interpolate(
        "output_dir: out/run_${v}\nlearning_rate: $lr\nmicro_batch_size: $mb\nwandb_name: \"a ${w}\"\n",
        dict(v='2024', lr=np.float32(2e-4), mb=np.int64(4), w='say "hi"'),
    )
    cfg = load_config(BASE.replace('learning_rate: 1e-4\n', '') + text, warn=False)
    assert cfg.output_dir == 'out/run_2024' and cfg.micro_batch_size == 4 and abs(cfg.learning_rate - 2e-4) < 1e-9
    assert cfg.wandb_name == 'a say "hi"'
    assert load_config(BASE + interpolate("output_dir: $v\n", dict(v='x #c')), warn=False).output_dir == 'x #c'
    with pytest.raises(ConfigError) as e:
        interpolate("output_dir: out/run_${v}\n", dict(v='x #c'))
    assert 'put that value in double quotes' in str(e.value)


def test_secrets_and_typos_never_reach_the_run_folder(tmp_path):
    from ftkit.config import dump_config

    cfg = load_config(BASE + "comet_api_key: secret-123\nstrict: false\nlora_alhpa: 3\nlora_mlp_kernel: true\n", warn=False)
    text = dump_config(cfg)
    assert 'secret-123' not in text and 'lora_alhpa' not in text and 'lora_mlp_kernel' not in text
    assert load_config(text, warn=False).learning_rate == 1e-4  # what was written reads back
