"""The README's first command, `bash scripts/quickstart.sh`, as a new user runs it: it shows the notebook's progress
while it runs (not only at the end), ends with `learned: K/N` at K/N >= 0.8, and saves the executed notebook."""

import json, os, re, subprocess, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_streams_and_teaches():
    env = dict(os.environ, FTKIT_SETUP=os.environ.get('FTKIT_SETUP', 'dev'))  # the tests' .venv is a dev install
    t0 = time.time()
    p = subprocess.Popen(
        ['bash', 'scripts/quickstart.sh'],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    lines = [(time.time() - t0, l.rstrip('\n')) for l in p.stdout]  # each line with when it arrived
    p.wait()
    end = time.time() - t0
    text = '\n'.join(l for _, l in lines)
    assert p.returncode == 0, text[-4000:]
    assert '\x1b' not in text  # not a terminal: no colour or cursor codes

    # streamed: cell announcements and training progress (step, ETA) arrive while the notebook runs
    cells = [t for t, l in lines if re.match(r'\[\d+/\d+\] ', l)]
    steps = [t for t, l in lines if re.match(r'step \d+/\d+ .*ETA', l)]
    assert len(cells) >= 5 and steps, text[-4000:]
    assert steps[0] < end - 10, (steps, end)  # the first training line came well before the end

    # it teaches: the last line counts the answers learned, from a table of before and after
    last = text.strip().splitlines()[-1]
    k, n = map(int, re.fullmatch(r'learned: (\d+)/(\d+) .*', last).groups())
    assert n == 16 and k >= 0.8 * n, text[-4000:]
    assert 'before fine-tuning' in text and text.count('✓') == k

    # the executed notebook is saved with its outputs
    nb = json.loads((ROOT / 'outputs' / 'quickstart.ipynb').read_text())
    texts = [o.get('text', '') for c in nb['cells'] for o in c.get('outputs', [])]
    outs = ''.join(''.join(t) if isinstance(t, list) else t for t in texts)  # a saved notebook splits text into lines
    assert f'learned: {k}/{n}' in outs
