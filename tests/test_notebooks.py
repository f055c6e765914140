"""Every notebook under nbs/ runs as a pytest item: its example and test cells must pass.

Cells flagged `#| slow` or `#| gpu` are skipped here (tst_flags in pyproject.toml)."""

from pathlib import Path
import pytest
from nbdev import test as nbtest  # the module, not the function: pytest would collect `test_nb`

ROOT = Path(__file__).resolve().parents[1]
NBS = sorted(p for p in (ROOT / 'nbs').rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)


@pytest.mark.parametrize('nb', NBS, ids=[str(p.relative_to(ROOT / 'nbs')) for p in NBS])
def test_notebook(nb):
    ok, secs = nbtest.test_nb(nb, skip_flags=['slow', 'gpu'], basepath=ROOT)
    assert ok, f"{nb.name} failed (its error is printed above)"


def test_there_are_notebooks():
    assert len(NBS) >= 10
