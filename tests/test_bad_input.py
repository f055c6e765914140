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
        load_config(BASE + "lora_embedding_kernel: true\nnum_epochs: 0\n", warn=False)
    assert any('lora_embedding_kernel' in n for n in e.value.notes) and '(warning)' in str(e.value)


# ---- $var substitution from a notebook


def test_variables_keep_their_meaning():
    import numpy as np
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

    cfg = load_config(BASE + "comet_api_key: secret-123\nstrict: false\nlora_alhpa: 3\nlora_embedding_kernel: true\n", warn=False)
    text = dump_config(cfg)
    assert 'secret-123' not in text and 'lora_alhpa' not in text and 'lora_embedding_kernel' not in text
    assert load_config(text, warn=False).learning_rate == 1e-4  # what was written reads back


def test_an_undefined_variable_on_the_command_line(tmp_path):
    rc, err = validate(tmp_path, BASE + "output_dir: out/$run\n")
    assert rc == 1 and "line 6: `$run` is not defined in the environment" in err and 'Traceback' not in err, err


# ---- data files that cannot be read as their name says

TINY = "base_model: ftkit:tiny-llama\nlearning_rate: 1e-4\nsequence_len: 64\n"


def data_cfg(path, extra=''):
    return load_config(TINY + f"datasets:\n  - path: {path}\n    type: chat_template\n" + extra, warn=False)


@pytest.mark.parametrize(
    'name, content, said',
    [
        ('empty.jsonl', b'', 'the file is empty'),
        ('blank.jsonl', b'\n  \n\n', 'the file has only blank lines'),
        ('latin1.jsonl', b'{"messages": []}\n{"messages": [{"role": "user", "content": "caf\xe9"}]}\n',
         'line 2, column 47: byte 0xe9 is not UTF-8 text'),
        ('table.parquet', b'a,b\n1,2\n', 'not a Parquet file (it does not start with PAR1)'),
    ],
)
def test_bad_data_files_are_named_with_the_line(tmp_path, name, content, said):
    from ftkit.data import check_data, load_source
    from ftkit.errors import DataError

    f = tmp_path / name
    f.write_bytes(content)
    cfg = data_cfg(f)
    assert check_data(cfg) == [f"datasets[0]: {f}: {said}"]
    with pytest.raises(DataError) as e:
        load_source(cfg.datasets[0])
    assert str(e.value).startswith(f"{f}: {said}\n  -> ")


def tokenizer():
    from ftkit.tokenizer import load_tokenizer

    return load_tokenizer(data_cfg('ftkit:samples/quiz'))


def test_openai_style_content_parts_are_trained_as_text(tmp_path):
    from ftkit.data import prepare_dataset

    row = dict(messages=[dict(role='user', content=[dict(type='text', text='What is 2+2?')]),
                         dict(role='assistant', content=[dict(type='text', text='Four.')])])
    f = tmp_path / 'parts.jsonl'
    f.write_text('\n'.join([__import__('json').dumps(row)] * 4) + '\n')
    tok = tokenizer()
    dd, _ = prepare_dataset(data_cfg(f), tok, log=None)
    text = tok.decode(dd['train'][0]['input_ids'])
    assert 'What is 2+2?' in text and 'Four.' in text and "'type'" not in text and '[{' not in text, text


def test_val_set_size_at_or_above_the_row_count(tmp_path):
    from ftkit.data import prepare_dataset
    from ftkit.errors import DataError

    with pytest.raises(DataError, match=r"val_set_size: 1000.0 holds out 1000 rows, but the prepared data has \d+"):
        prepare_dataset(data_cfg('ftkit:samples/quiz', 'val_set_size: 1000\n'), tokenizer(), log=None)


def test_val_set_size_on_preference_data(tmp_path):
    "The same line for preference pairs, before any model loads."
    from ftkit.preference_data import prepare_preference, sample_pairs, write_pairs
    from ftkit.errors import DataError

    f = write_pairs(tmp_path / 'pairs.jsonl', sample_pairs(12, layout='intel'))
    cfg = load_config(TINY + f"rl: dpo\ndatasets:\n  - path: {f}\n    type: chatml.intel\nval_set_size: 12\n", warn=False)
    with pytest.raises(DataError, match=r"val_set_size: 12.0 holds out 12 rows, but the prepared data has 12"):
        prepare_preference(cfg, tokenizer(), log=None)


# ---- a model, an adapter or a package that is not what the config says


def test_an_unknown_lora_target_module():
    from transformers import AutoModelForCausalLM
    from ftkit.model import lora_config
    from ftkit.tiny import resolve_model
    from ftkit.errors import ModelError

    model = AutoModelForCausalLM.from_pretrained(resolve_model('ftkit:tiny-llama'))
    cfg = data_cfg('d.jsonl', 'adapter: lora\nlora_target_modules: [q_proj, qproj]\n')
    with pytest.raises(ModelError) as e:
        lora_config(cfg, model)
    assert str(e.value).startswith("lora_target_modules: `qproj` names no module of ftkit:tiny-llama"), e.value
    assert 'its linear layers are down_proj, gate_proj, k_proj, o_proj, q_proj' in str(e.value)


def _break_model(d):
    import json as j

    c = j.loads((d / 'config.json').read_text())
    c['model_type'] = 'nosuchmodel'
    (d / 'config.json').write_text(j.dumps(c))


def _cut_weights(d):
    (d / 'model.safetensors').write_bytes((d / 'model.safetensors').read_bytes()[:5000])


def _custom_code(d):
    import json as j

    c = j.loads((d / 'config.json').read_text())
    c.update(model_type='xmodel', auto_map=dict(AutoConfig='cfg_x.XConfig', AutoModelForCausalLM='model_x.XModel'))
    (d / 'config.json').write_text(j.dumps(c))
    (d / 'model_x.py').write_text('raise SystemExit("custom code ran")\n')


@pytest.mark.parametrize(
    'damage, said',
    [
        (_break_model, 'model type `nosuchmodel` but Transformers does not recognize this architecture'),
        (_cut_weights, '-> a weights file is damaged or incomplete'),
        (_custom_code, 'its folder has its own model code\n  -> read that code, then set `trust_remote_code: true`'),
    ],
)
def test_a_broken_model_folder(tmp_path, damage, said):
    import shutil
    from ftkit.model import load_model
    from ftkit.tiny import resolve_model
    from ftkit.errors import ModelError

    d = tmp_path / 'model'
    shutil.copytree(resolve_model('ftkit:tiny-llama'), d)
    damage(d)
    with pytest.raises(ModelError) as e:
        load_model(load_config(BASE.replace('base_model: m', f'base_model: {d}'), warn=False))
    assert str(e.value).startswith(f"cannot load the model `{d}`: ") and said in str(e.value), e.value
    assert len(str(e.value).splitlines()) == 2


@pytest.fixture
def adapter(tmp_path):
    "A LoRA adapter of the tiny model, saved as a run saves it (with the tokenizer), and the config of its run."
    from transformers import AutoModelForCausalLM
    from peft import LoraConfig, get_peft_model
    from ftkit.tiny import resolve_model

    cfg = data_cfg('ftkit:samples/quiz', f'adapter: lora\nlora_target_linear: true\noutput_dir: {tmp_path}/run\n')
    model = AutoModelForCausalLM.from_pretrained(resolve_model('ftkit:tiny-llama'))
    get_peft_model(model, LoraConfig(r=4, target_modules=['q_proj', 'v_proj'])).save_pretrained(tmp_path / 'run')
    tokenizer().save_pretrained(tmp_path / 'run')
    return cfg, tmp_path / 'run'


def _rank(d, r):
    import json as j

    c = j.loads((d / 'adapter_config.json').read_text())
    (d / 'adapter_config.json').write_text(j.dumps(dict(c, r=r)))


@pytest.mark.parametrize(
    'damage, said',
    [
        (lambda d: (d / 'adapter_model.safetensors').write_bytes(b'\x10\x00'), 'adapter_model.safetensors is damaged or incomplete'),
        (lambda d: (d / 'adapter_config.json').write_text('{"r": 8, "lora_alpha":\n'), 'adapter_config.json is not valid JSON (Expecting value, line 2)'),
        (lambda d: _rank(d, 0), 'adapter_config.json has the LoRA rank 0; a rank is a positive integer'),
    ],
)
def test_a_damaged_adapter_is_not_merged(adapter, damage, said):
    from ftkit.merge import merge_lora
    from ftkit.errors import FtkitError

    cfg, run = adapter
    damage(run)
    with pytest.raises(FtkitError) as e:
        merge_lora(cfg, log=None)
    assert str(e.value).startswith(f"{run}: {said}") and '-> train again, or point --lora-model-dir' in str(e.value), e.value
    assert not (run / 'merged').exists()


def test_a_merge_without_the_tokenizer_files_still_writes_one(adapter):
    from transformers import AutoTokenizer
    from ftkit.merge import merge_lora

    cfg, run = adapter
    for f in ('tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja'):
        (run / f).unlink(missing_ok=True)
    said = []
    out = merge_lora(cfg, log=said.append)
    assert said[0].startswith(f"No tokenizer in {run}: the merged folder gets the one the config builds"), said
    assert len(AutoTokenizer.from_pretrained(out)) == len(tokenizer())


def test_deepspeed_without_the_package(tmp_path):
    import importlib.util

    if importlib.util.find_spec('deepspeed') is not None:
        pytest.skip('deepspeed is installed here')
    (tmp_path / 'ds.json').write_text('{"zero_optimization": {"stage": 2}}')
    cfg = tmp_path / 'cfg.yml'
    cfg.write_text(TINY + f"datasets:\n  - path: ftkit:samples/quiz\n    type: chat_template\ndeepspeed: {tmp_path}/ds.json\noutput_dir: {tmp_path}/run\n")
    t = time.time()
    p = subprocess.run([sys.executable, '-m', 'ftkit.cli', 'train', str(cfg)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and 'deepspeed: needs the deepspeed package' in p.stderr and 'Traceback' not in p.stderr, p.stderr
    assert time.time() - t < 60 and not (tmp_path / 'run').exists()
