"""Config validation against real-world input.

- Every Axolotl example config either validates or is refused with one line per unsupported feature;
  nothing raises anything else.
- Each broken config in tests/data/broken gives the short message its `# expect:` comment states, with the
  right line number (`# expect-warning:` for problems that are warnings unless `strict: true`)."""

import re
from pathlib import Path
import pytest
from ftkit.config import load_config
from ftkit.errors import ConfigError

DATA = Path(__file__).parent / 'data'
EXAMPLES = sorted((DATA / 'axolotl-examples').glob('*.y*ml'))
BROKEN = sorted((DATA / 'broken').glob('*.yml'))
REFUSAL = re.compile(r"does not support|is not supported|not supported by ftkit")
TYPO = re.compile(r"`([\w.\[\]]+)`: unknown key \(did you mean `(\w+)`\?\)")  # a typo in the example itself


def test_axolotl_examples_validate_or_are_refused():
    valid, refused, crashed = [], {}, {}
    for f in EXAMPLES:
        try:
            load_config(f, warn=False)
            valid.append(f.name)
        except ConfigError as e:
            refused[f.name] = e.problems
        except Exception as e:
            crashed[f.name] = repr(e)
    print(
        f"\n{len(EXAMPLES)} Axolotl example configs: {len(valid)} validate, {len(refused)} refused, {len(crashed)} crashed"
    )
    assert not crashed, crashed
    assert len(EXAMPLES) == 122
    for name, problems in refused.items():
        for p in problems:
            assert '\n' not in p and len(p) < 240, (name, p)
            assert REFUSAL.search(p) or TYPO.search(p), f"{name} was refused for something other than an unsupported feature: {p}"
    assert len(valid) >= 84 and len(valid) + len(refused) == 122


@pytest.mark.parametrize('f', BROKEN, ids=[f.stem for f in BROKEN])
def test_broken_config_message(f):
    text = f.read_text()
    errors = [l.split(':', 1)[1].strip() for l in text.splitlines() if l.startswith('# expect:')]
    warns = [l.split(':', 1)[1].strip() for l in text.splitlines() if l.startswith('# expect-warning:')]
    assert errors or warns, f"{f.name} states no expectation"
    if errors:
        with pytest.raises(ConfigError) as ei:
            load_config(f, namespace={}, warn=False)
        e = ei.value
        assert str(e).splitlines()[0].endswith(f"in {f}:"), str(e)
        for want in errors:
            assert any(p.startswith(want) for p in e.problems), (want, e.problems)
        assert len(e.problems) == len(errors), e.problems
        assert 'Traceback' not in str(e) and all('\n' not in p for p in e.problems)
    else:
        notes = load_config(f, namespace={}, warn=False)._notes
        for want in warns:
            assert want in notes, (want, notes)
