"""Token-for-token agreement with Axolotl.

tests/data/golden holds `input_ids` and `labels` that Axolotl itself produced (see its README and
make_golden.py) for every dataset format and the label options of each, on ftkit's tiny tokenizers
(copied beside the fixtures). ftkit's data pipeline, driven by the same config, must give the same ids
and labels for every row. Where Axolotl fails a whole dataset on one bad row, ftkit drops that row."""

import json
from collections import defaultdict
from pathlib import Path
import pytest
from ftkit.config import load_config
from ftkit.data import row_tokenizer
from ftkit.errors import DataError
from ftkit.tokenizer import load_tokenizer

GOLDEN = Path(__file__).parent / 'data' / 'golden'
CASES = sorted(GOLDEN.glob('*.json'))


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


@pytest.mark.parametrize('case', CASES, ids=[c.stem for c in CASES])
def test_matches_axolotl(case):
    fx = json.loads(case.read_text())
    cfg = _cfg(fx)
    tok = load_tokenizer(cfg)
    if fx['error'] and not any('input_ids' in r for r in fx['rows']):
        with pytest.raises(DataError):
            row_tokenizer(cfg.datasets[0], cfg, tok)
        return
    fn = row_tokenizer(cfg.datasets[0], cfg, tok)
    expected = defaultdict(list)
    for r in fx['rows']:
        expected[(r['source'], r['index'])].append(r)
    checked = 0
    for (src, idx), rs in expected.items():
        got = fn(rs[0]['row'], f"{src} row {idx}")
        if 'error' in rs[0]:
            assert got == [], f"row {idx}: Axolotl failed ({rs[0]['error'][:80]}); ftkit should drop it"
            continue
        assert len(got) == len(rs), f"row {idx}: {len(got)} pieces, Axolotl made {len(rs)}"
        for (ids, labels), r in zip(got, rs):
            assert ids == r['input_ids'], (
                f"row {idx}: input_ids differ\n ftkit:   {tok.decode(ids)!r}\n axolotl: {tok.decode(r['input_ids'])!r}"
            )
            assert labels == r['labels'], (
                f"row {idx}: labels differ\n ftkit:   {_show(tok, ids, labels)}\n axolotl: {_show(tok, ids, r['labels'])}"
            )
            checked += 1
    assert checked >= 5


def _show(tok, ids, labels):
    return ''.join(f"[{tok.decode([i])}]" if l != -100 else tok.decode([i]) for i, l in zip(ids, labels))


def test_fixture_tokenizers_are_the_tiny_ones():
    "The golden tokenizers are ftkit's tiny ones; if the tiny recipe changes, regenerate the fixtures."
    from ftkit.tiny import tiny_model

    for fam in ('llama', 'qwen3'):
        a = json.loads((GOLDEN / 'tokenizers' / fam / 'tokenizer.json').read_text())['model']['vocab']
        b = json.loads((tiny_model(fam, log=None) / 'tokenizer.json').read_text())['model']['vocab']
        assert a == b, fam
