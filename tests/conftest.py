import os, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

@pytest.fixture(scope='session')
def root(): return ROOT

@pytest.fixture(scope='session')
def venv_bin():
    "The folder holding the `ftkit` and `nbdev-*` commands of this environment."
    return Path(sys.executable).parent
