"""Token-for-token agreement with Axolotl.

tests/data/golden holds `input_ids` and `labels` that Axolotl itself produced (see its README and
make_golden.py) for every dataset format and the label options of each, on ftkit's tiny tokenizers
(copied beside the fixtures). ftkit's data pipeline, driven by the same config, must give the same ids
and labels for every row. Where Axolotl fails on a row, ftkit either drops it (a conversation left empty)
or stops with a one-line `DataError` that names the row (a chat template that refuses the conversation).
The preference fixtures (`rl_*`) are checked by tests/test_preference.py."""

import json, re
from collections import defaultdict
from datetime import datetime
from pathlib import Path
import pytest
from ftkit.config import load_config
from ftkit.data import row_tokenizer
from ftkit.errors import DataError
from ftkit.tokenizer import load_tokenizer

GOLDEN = Path(__file__).parent / 'data' / 'golden'
CASES = sorted(c for c in GOLDEN.glob('*.json') if not c.name.startswith('rl_'))


def _cfg(fx):
    tokdir = str(GOLDEN / 'tokenizers' / fx['tokenizer'])
    return load_config(
        dict(
            base_model=tokdir,
            learning_rate=1e-4,
            datasets=[dict(path='golden.jsonl', **fx['dataset_config'])],
            **fx['config'],
        ),
        warn=False,
    )


def _fixture_date(fx, tok):
    "The day the fixture was made, when its template printed it (`strftime_now`: Llama 3.x, Mistral), else None."
    for r in fx['rows']:
        text = tok.decode(r.get('input_ids') or [])
        for pat, fmt in ((r'Today Date: (\d{2} \w{3} \d{4})', '%d %b %Y'), (r'current date is (\d{4}-\d{2}-\d{2})', '%Y-%m-%d')):
            if m := re.search(pat, text):
                return datetime.strptime(m.group(1), fmt)
    return None


@pytest.mark.parametrize('case', CASES, ids=[c.stem for c in CASES])
def test_matches_axolotl(case, monkeypatch):
    fx = json.loads(case.read_text())
    cfg = _cfg(fx)
    tok = load_tokenizer(cfg)
    if day := _fixture_date(fx, tok):  # templates that print today's date render the fixture's day
        import transformers.utils.chat_template_utils as ctu

        monkeypatch.setattr(ctu, 'datetime', type('FixtureDay', (), {'now': staticmethod(lambda tz=None: day)}))
    if fx['error'] and not any('input_ids' in r for r in fx['rows']):
        with pytest.raises(DataError):
            row_tokenizer(cfg.datasets[0], cfg, tok)
        return
    fn = row_tokenizer(cfg.datasets[0], cfg, tok)
    expected = defaultdict(list)
    for r in _as_arrow_rows(fx['rows']):
        expected[(r['source'], r['index'])].append(r)
    checked = 0
    for (src, idx), rs in expected.items():
        where = f"{src} row {idx}"
        if 'error' in rs[0]:
            try:
                got = fn(rs[0]['row'], where)
            except DataError as e:
                assert where in str(e) and '\n' not in e.msg, f"the error should be one line naming the row: {e}"
                continue
            assert got == [], f"row {idx}: Axolotl failed ({rs[0]['error'][:80]}); ftkit should drop it or name it"
            continue
        got = fn(rs[0]['row'], where)
        assert len(got) == len(rs), f"row {idx}: {len(got)} pieces, Axolotl made {len(rs)}"
        for (ids, labels), r in zip(got, rs):
            assert ids == r['input_ids'], (
                f"row {idx}: input_ids differ\n ftkit:   {tok.decode(ids)!r}\n axolotl: {tok.decode(r['input_ids'])!r}"
            )
            # Axolotl's pygmalion strategy appends the previous message's labels again for a message of an
            # unknown role, so its labels outgrow its input_ids; a label past the last token labels nothing
            want = r['labels'][: len(r['input_ids'])]
            assert labels == want, (
                f"row {idx}: labels differ\n ftkit:   {_show(tok, ids, labels)}\n axolotl: {_show(tok, ids, want)}"
            )
            checked += 1
    assert checked >= 1


def _as_arrow_rows(rows):
    "The fixture rows as `datasets` gives them from the one JSONL file they came from: every row has every column."
    keys = list(dict.fromkeys(k for r in rows for k in r['row']))
    return [dict(r, row={k: r['row'].get(k) for k in keys}) for r in rows]


def _show(tok, ids, labels):
    return ''.join(f"[{tok.decode([i])}]" if l != -100 else tok.decode([i]) for i, l in zip(ids, labels))


def test_fixture_tokenizers_are_the_tiny_ones():
    "The golden tokenizers are ftkit's tiny ones; if the tiny recipe changes, regenerate the fixtures."
    from ftkit.tiny import tiny_model

    for fam in ('llama', 'qwen3'):
        a = json.loads((GOLDEN / 'tokenizers' / fam / 'tokenizer.json').read_text())['model']['vocab']
        b = json.loads((tiny_model(fam, log=None) / 'tokenizer.json').read_text())['model']['vocab']
        assert a == b, fam
