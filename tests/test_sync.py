"""The library must be exactly what the notebooks export, and the notebooks must be clean.

`check_sync` runs nbdev-export and nbdev-clean on a copy of the project and reports every file they
would change. The second test proves the check goes red when a notebook and the library disagree."""

import shutil, subprocess, filecmp
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _copy(dst):
    for name in ('nbs', 'ftkit', 'pyproject.toml'):
        src = ROOT / name
        (
            shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns('__pycache__', '.ipynb_checkpoints'))
            if src.is_dir()
            else shutil.copy2(src, dst / name)
        )


def _snapshot(d):
    return {
        p.relative_to(d): p.read_bytes()
        for p in d.rglob('*')
        if p.is_file() and '__pycache__' not in p.parts and '.ipynb_checkpoints' not in p.parts
    }


def check_sync(work, venv_bin):
    "Files that nbdev-export / nbdev-clean change in the project copy at `work`."
    before = _snapshot(work)
    for cmd in ('nbdev-export', 'nbdev-clean'):
        r = subprocess.run([str(venv_bin / cmd)], cwd=work, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    after = _snapshot(work)
    return sorted(str(k) for k in set(before) | set(after) if before.get(k) != after.get(k))


def test_library_matches_notebooks(tmp_path, venv_bin):
    _copy(tmp_path)
    changed = check_sync(tmp_path, venv_bin)
    assert not changed, f"nbdev-export/nbdev-clean would change: {changed}. Run them and commit the result."


def test_check_catches_a_mismatch(tmp_path, venv_bin):
    _copy(tmp_path)
    lib = tmp_path / 'ftkit' / 'errors.py'
    lib.write_text(lib.read_text().replace('class DataError(FtkitError):', 'class DataError(Exception):'))
    assert check_sync(tmp_path, venv_bin) == ['ftkit/errors.py']


def test_check_catches_an_uncleaned_notebook(tmp_path, venv_bin):
    import json

    _copy(tmp_path)
    nb = tmp_path / 'nbs' / '00_errors.ipynb'
    d = json.loads(nb.read_text())
    code = next(c for c in d['cells'] if c['cell_type'] == 'code')
    code['execution_count'] = 7
    code['metadata']['scrolled'] = True
    nb.write_text(json.dumps(d, indent=1))
    assert check_sync(tmp_path, venv_bin) == ['nbs/00_errors.ipynb']


def test_readme_is_generated_from_index():
    import subprocess, sys

    r = subprocess.run(
        [sys.executable, str(ROOT / 'scripts' / 'make_readme.py'), '--check'], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout


def test_ci_runs_the_readme_test_command():
    readme, ci = (ROOT / 'README.md').read_text(), (ROOT / '.ci' / 'run').read_text()
    assert 'bash scripts/test.sh' in readme and 'bash scripts/test.sh' in ci
    assert 'bash scripts/quickstart.sh' in readme
