"""The Axolotl contract: every key of Axolotl's schema has an answer in ftkit, and every key ftkit accepts is read.

The key list is test data (tests/data/axolotl/schema-0.19.0.json, read from Axolotl 0.19.0's own pydantic models by
tests/data/axolotl/make_schema.py). Each key is implemented (a `Config` field), refused with a reason, accepted
with a stated no-effect note, or a legacy spelling read as today's key. A second test checks the other direction:
a field that validates but that no code of ftkit reads would be a silent no-op, which is what this contract rules out.
"""

import json, re
from pathlib import Path
import pytest
from ftkit import config as C
from ftkit.tracking import _PREFIXES

SCHEMA = json.loads((Path(__file__).parent / 'data' / 'axolotl' / 'schema-0.19.0.json').read_text())
PKG = Path(C.__file__).parent


def answered_top():
    return (
        C._known_keys(C.Config) | set(C.UNSUPPORTED) | set(C.IGNORED) | C.LEGACY_KEYS | set(C._RENAMED) | {'fsdp_version'}
    )


def answered_dataset():
    return C._known_keys(C.DatasetConfig) | set(C.DATASET_UNSUPPORTED) | set(C.DATASET_IGNORED)


def test_schema_is_axolotl_0_19():
    assert SCHEMA['axolotl_version'] == '0.19.0'
    assert len(SCHEMA['top_level']) == 390 and len(SCHEMA['dataset']) == 36


def test_every_top_level_key_has_an_answer():
    missing = sorted(set(SCHEMA['top_level']) - answered_top())
    assert not missing, f"Axolotl keys with no answer in ftkit: {missing}"


def test_every_dataset_key_has_an_answer():
    fields = set(SCHEMA['dataset']).union(*map(set, SCHEMA['dataset_models'].values()))
    missing = sorted(fields - answered_dataset())
    assert not missing, f"Axolotl dataset keys with no answer in ftkit: {missing}"


def test_every_plugin_key_has_an_answer():
    "Hatchery's keys are generic names (`api_key`, `lora_rank`) only its refused switch `hatchery` gives meaning to."
    keys = {k for name, fields in SCHEMA['plugins'].items() if name != 'hatchery' for k in fields}
    assert len(keys) > 80
    missing = sorted(keys - answered_top())
    assert not missing, f"Axolotl plugin keys with no answer in ftkit: {missing}"


def test_every_trl_key_has_an_answer():
    missing = sorted(set(SCHEMA['nested']['TRLConfig']) - C._known_keys(C.TrlConfig) - set(C.TRL_UNSUPPORTED))
    assert not missing, missing


def test_answers_do_not_overlap():
    fields = C._known_keys(C.Config)
    for name, table in [('UNSUPPORTED', C.UNSUPPORTED), ('IGNORED', C.IGNORED)]:
        assert not fields & set(table), f"{name} keys that are also fields: {sorted(fields & set(table))}"
    assert not set(C.UNSUPPORTED) & set(C.IGNORED)


def library_text():
    "The library's code, without the field declarations of the schema (a declaration is not a read)."
    text = '\n'.join(p.read_text() for p in PKG.rglob('*.py') if p.name != '_modidx.py')
    return re.sub(r"(?m)^    \w+: (Optional|Union|bool|int|float|str|list|dict|Literal).*$", '', text)


@pytest.mark.parametrize('model', [C.Config, C.DatasetConfig, C.TrlConfig])
def test_every_accepted_key_is_read(model):
    "A field is read when the library names it (`cfg.x`, `'x'`, `x=`) or reads it by its tracker prefix."
    text = library_text()
    unread = []
    for name in model.model_fields:
        if name.startswith(_PREFIXES):
            continue  # read through tracking_env, by prefix
        if not re.search(rf"(\.|['\"]){name}\b|\b{name}=", text):
            unread.append(name)
    assert not unread, f"{model.__name__} fields that validate but are never read: {unread}"


def refusal_or_note(text):
    try:
        cfg = C.load_config(text, warn=False)
    except C.ConfigError as e:
        return 'refused', e.problems
    return 'ok', cfg._notes


BASE = "base_model: m\nlearning_rate: 1e-4\ndatasets:\n  - path: d\n    type: alpaca\n"


def test_an_unknown_key_is_an_error_unless_strict_is_false():
    kind, said = refusal_or_note(BASE + "lora_alhpa: 16\n")
    assert kind == 'refused' and said == ["line 6: `lora_alhpa`: unknown key (did you mean `lora_alpha`?)"]
    kind, said = refusal_or_note(BASE + "lora_alhpa: 16\nstrict: false\n")
    assert kind == 'ok' and "line 6: `lora_alhpa`: unknown key (did you mean `lora_alpha`?); ignored (`strict: false`)" in said


@pytest.mark.parametrize(
    'line, kind, text',
    [
        ("use_pose: true", 'refused', "`use_pose`: ftkit does not support PoSE context extension"),
        ("sample_packing_bin_size: 300", 'ok', "`sample_packing_bin_size`: no effect in ftkit (a setting of Axolotl's packer"),
        ("trl:\n  use_data_producer: true", 'refused', "`trl.use_data_producer`: ftkit does not support this GRPO option"),
        ("trl:\n  reward_num_workers: 1", 'ok', None),
        ("plugins:\n  - axolotl.integrations.lm_eval.LMEvalPlugin", 'refused', "plugin `LMEvalPlugin`: ftkit does not support"),
        ("plugins:\n  - axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin", 'ok', "plugin `CutCrossEntropyPlugin`:"),
        ("gc_steps: 5", 'ok', "`gc_steps` is now called `gc_collect_steps`"),
    ],
)
def test_refusals_and_notes_name_the_key(line, kind, text):
    got, said = refusal_or_note(BASE + line + "\n")
    assert got == kind, said
    if text:
        assert any(text in s for s in said), said
    for s in said:
        assert '\n' not in s and len(s) < 260


def test_dataset_level_answers():
    kind, said = refusal_or_note(BASE + "    logprobs_field: lp\n")
    assert kind == 'refused' and said == ["line 6, column 5: `datasets[0].logprobs_field`: ftkit does not support knowledge-distillation data (`logprobs_field`)"]
    kind, said = refusal_or_note(BASE + "    conversation: vicuna_v1.1\n")
    assert kind == 'ok' and any('`datasets[0].conversation`: no effect in ftkit' in s for s in said)
