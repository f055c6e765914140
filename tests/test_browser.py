"""The notebook UI in a real browser: Voila serves test notebooks offline, Playwright drives Debian's
chromium (`executable_path`, no browser download). One browser session serves every test. Screenshots go
to a temporary folder; `bash scripts/screenshots.sh` runs these tests with `FTKIT_SCREENSHOTS=docs/images`
to refresh the documentation's images."""

import os, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / 'tests' / 'browser'


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='session')
def voila(tmp_path_factory):
    work = tmp_path_factory.mktemp('voila')
    port = _free_port()
    env = dict(os.environ, FTKIT_TEST_PREP=str(work / 'prep'), FTKIT_TEST_OUT='outputs/live', FTKIT_TEST_WORK=str(work))
    p = subprocess.Popen(
        [
            sys.executable,
            '-m',
            'voila',
            '--no-browser',
            f'--port={port}',
            '--Voila.ip=127.0.0.1',
            '--VoilaConfiguration.file_allowlist=[".*"]',
            str(PAGES),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=str(work),
    )
    base = f'http://127.0.0.1:{port}'
    for _ in range(120):
        try:
            urllib.request.urlopen(base + '/voila/tree', timeout=2)
            break
        except Exception:
            time.sleep(0.5)
    else:
        p.kill()
        raise RuntimeError(p.stdout.read().decode()[-2000:])
    yield base
    p.terminate()
    p.wait(10)


def test_inspector_in_the_browser(voila, browser, shots):
    page = browser.new_page(viewport={'width': 1400, 'height': 900})
    page.goto(voila + '/voila/render/inspector.ipynb', timeout=180_000)
    page.wait_for_selector('.ft-tokens .ft-trained', timeout=180_000)
    trained = page.locator('.ft-tokens .ft-trained')
    assert trained.count() > 3 and page.locator('.ft-tokens .ft-masked').count() > trained.count()
    bg = trained.first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert bg not in ('rgba(0, 0, 0, 0)', 'transparent'), bg
    before = page.locator('.ft-tokens').first.inner_text()
    page.get_by_role('button', name='next ▶').click()
    page.wait_for_function("b => document.querySelector('.ft-tokens').innerText !== b", arg=before, timeout=30_000)
    assert 'example 1' in page.content()
    page.screenshot(path=str(shots / 'inspector.png'), full_page=True)
    page.close()


def test_inspector_shows_images_in_the_browser(voila, browser, shots):
    "A multimodal example: its picture beside its tokens (loaded, not a broken image), the image tokens in one marked box."
    page = browser.new_page(viewport={'width': 1400, 'height': 900})
    page.goto(voila + '/voila/render/inspector_vision.ipynb', timeout=300_000)
    page.wait_for_selector('.ft-thumbs img', timeout=300_000)
    img = page.locator('.ft-thumbs img').first
    assert img.evaluate("e => e.complete && e.naturalWidth") == 32
    assert img.evaluate("e => e.getBoundingClientRect().width") >= 100  # scaled up to be seen
    marked = page.locator('.ft-tokens .ft-image')
    assert marked.count() == 1 and '×16' in marked.inner_text()
    assert page.locator('.ft-tokens .ft-trained').count() > 3
    before = img.get_attribute('src')
    page.get_by_role('button', name='next ▶').click()
    page.wait_for_function(
        "b => document.querySelector('.ft-thumbs img') && document.querySelector('.ft-thumbs img').src !== b",
        arg=before,
        timeout=30_000,
    )
    assert 'example 1' in page.content()
    page.screenshot(path=str(shots / 'inspector-vision.png'), full_page=True)
    page.close()


def test_live_view_in_the_browser(voila, browser, shots):
    page = browser.new_page(viewport={'width': 1200, 'height': 700})
    page.goto(voila + '/voila/render/liveview.ipynb', timeout=300_000)
    page.wait_for_selector('.ftkit-live', timeout=300_000)
    page.wait_for_function(
        "() => document.querySelector('.ftkit-live') && document.querySelector('.ftkit-live').innerText.includes('done:')",
        timeout=300_000,
    )
    live = page.locator('.ftkit-live')
    text = live.inner_text()
    assert (
        'loss' in text
        and 'eval' in text
        and live.locator('svg polyline').count() >= 2
        and live.locator('svg circle').count() >= 1
    )
    assert 'done: outputs/live' in text
    live.screenshot(path=str(shots / 'live-view.png'))
    page.close()
