# Sourced by the quick-start scripts: create .venv (once) and install ftkit with its dev extras into it.
# Safe to run again: it reinstalls only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
. .venv/bin/activate
stamp=.venv/.ftkit-installed
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "Setting up .venv (first run, or pyproject.toml changed): installing torch and ftkit..."
  python -m pip install -q --upgrade pip
  # torch first, pinned, so that the resolver does not pick a multi-GB CUDA build for a CPU machine.
  # Set TORCH_SPEC to install another build (e.g. TORCH_SPEC="torch==2.11.0" on a GPU machine).
  log=$(mktemp)   # pip's and setuptools' notices go to a log, shown only when the install fails
  { python -c "import torch" 2>/dev/null || python -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"; } >"$log" 2>&1 || { cat "$log"; exit 1; }
  python -m pip install -q -e ".[dev]" >>"$log" 2>&1 || { cat "$log"; exit 1; }
  rm -f "$log"
  echo "$want" > "$stamp"
fi
