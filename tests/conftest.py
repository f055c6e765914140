import os, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='session')
def root():
    return ROOT


@pytest.fixture(scope='session')
def venv_bin():
    "The folder holding the `ftkit` and `nbdev-*` commands of this environment."
    return Path(sys.executable).parent


CHROMIUM = os.environ.get('FTKIT_CHROMIUM', '/usr/bin/chromium')


@pytest.fixture(scope='session')
def browser():
    "One headless chromium for every browser test (Debian's, through Playwright; no browser download)."
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                '--no-sandbox',
                '--disable-gpu',
                '--disable-background-networking',
                '--disable-component-update',
                '--disable-sync',
                '--no-first-run',
                '--disable-quic',
            ],
        )
        yield b
        b.close()


@pytest.fixture(scope='session')
def shots(tmp_path_factory):
    "Where the browser tests save their screenshots: a temporary folder, or `$FTKIT_SCREENSHOTS` (docs/images, by scripts/screenshots.sh)."
    d = (
        Path(os.environ['FTKIT_SCREENSHOTS'])
        if os.environ.get('FTKIT_SCREENSHOTS')
        else tmp_path_factory.mktemp('screenshots')
    )
    d.mkdir(parents=True, exist_ok=True)
    return d
