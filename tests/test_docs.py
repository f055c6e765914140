"""The documentation site: built from the notebooks by the documented command (every notebook executed), its
pages hold the tutorials' outputs and the API reference, and a real browser renders the home page and a tutorial."""

import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='session')
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('site')
    r = subprocess.run(
        [sys.executable, str(ROOT / 'scripts' / 'build_docs.py'), '--out', str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    return out


def test_site_pages(site):
    names = {p.relative_to(site).as_posix() for p in site.rglob('*.html')}
    assert {
        'index.html',
        'api.html',
        'troubleshooting.html',
        'tutorials/01_quickstart.html',
        'tutorials/07_from_axolotl.html',
        '06_data.html',
        'methods/01_sft.html',
    } <= names
    assert len([n for n in names if n.startswith('tutorials/')]) == len(list((ROOT / 'nbs' / 'tutorials').glob('*.ipynb')))
    quick = (site / 'tutorials' / '01_quickstart.html').read_text()
    assert (
        'ftkit run' in quick and 'ftkit-live' in quick and 'done:' in quick
    )  # executed: the run's summary and the live view's final state
    api = (site / 'api.html').read_text()
    assert 'load_config(' in api and 'merge_lora(' in api and 'ftkit.inspector' in api
    assert (site / 'images' / 'live-view.png').exists() and "src='images/live-view.png'" in (
        site / 'index.html'
    ).read_text().replace('"', "'")


def test_site_in_the_browser(site, browser, shots):
    page = browser.new_page(viewport={'width': 1300, 'height': 900})
    page.goto((site / 'index.html').as_uri())
    assert page.locator('main h1').first.inner_text() == 'ftkit'
    assert page.locator('nav a').count() >= 20 and page.locator('main img').first.evaluate('i => i.naturalWidth') > 100
    page.locator('nav a', has_text='Quick start').click()
    page.wait_for_load_state()
    assert 'Quick start' in page.locator('main h1').first.inner_text()
    assert page.locator('.ftkit-live svg polyline').count() >= 2 and page.locator('.cell-in').count() >= 5
    page.screenshot(path=str(shots / 'docs-quickstart.png'))
    page.close()
