"""The notebook UI on the versions a Colab runtime has (IPython 7.34, ipywidgets 7.7.1): installing ftkit there
must not upgrade them, and the magics, the live view, the inspector and the chat must work with them. A
separate virtual environment is built for this (the test environment itself has current releases)."""

import os, subprocess, sys, venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_colab_versions(tmp_path):
    env_dir = tmp_path / 'colab'
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / 'bin' / 'python'
    torch = subprocess.run(
        [sys.executable, '-c', 'import torch; print(torch.__version__.split("+")[0])'], capture_output=True, text=True
    ).stdout.strip()
    pip = [str(py), '-m', 'pip', 'install', '-q']
    subprocess.run(pip + [f'torch=={torch}'], check=True)
    subprocess.run(pip + ['-e', str(ROOT), 'ipython==7.34.0', 'ipywidgets==7.7.1'], check=True)
    got = subprocess.run(
        [str(py), '-c', 'import IPython, ipywidgets; print(IPython.__version__, ipywidgets.__version__)'],
        capture_output=True,
        text=True,
    ).stdout.split()
    assert got == ['7.34.0', '7.7.1'], got  # installing ftkit kept the runtime's versions
    r = subprocess.run(
        [str(py), str(ROOT / 'tests' / 'colab_versions_check.py')],
        capture_output=True,
        text=True,
        env=dict(os.environ, HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1'),
        timeout=900,
    )
    assert r.returncode == 0 and 'OK: magics, live view, inspector and chat work' in r.stdout, (r.stdout + r.stderr)[
        -3000:
    ]
