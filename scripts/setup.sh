# Sourced by the quick-start scripts: create .venv (once) and install ftkit into it, with a CPU-only torch
# where the platform allows.
#   FTKIT_SETUP=quickstart  ftkit and what runs a notebook (nbclient, ipykernel): what scripts/quickstart.sh needs
#   FTKIT_SETUP=dev         (the default) ftkit[dev]: every development and test tool, for scripts/test.sh
#   TORCH_SPEC="torch==2.11.0"   install this torch instead (e.g. a CUDA build on a GPU machine); torch already in
#                                .venv is kept as it is
# Safe to run again: it installs only when .venv lacks what was asked for, or pyproject.toml changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
TORCH_VERSION=2.13.0
TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
kind=${FTKIT_SETUP:-dev}
case "$kind" in
  quickstart) want_pkgs=(-e . "nbclient>=0.10" "nbformat>=5.9" "ipykernel>=6.17" "jupyter_client>=8") ;;
  dev) want_pkgs=(-e ".[dev]") ;;
  *) echo "FTKIT_SETUP must be quickstart or dev, not '$kind'" >&2; exit 1 ;;
esac
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
. .venv/bin/activate
stamp=.venv/.ftkit-installed
hash=$(sha256sum pyproject.toml | cut -c1-16)
have=$(cat "$stamp" 2>/dev/null || true)   # "<hash> <kind>"; a dev install holds everything quickstart needs
[ "$have" = "$hash" ] && have="$hash dev"   # the stamp of an older setup.sh, which always installed dev
if [ "$have" != "$hash $kind" ] && [ "$have" != "$hash dev" ]; then
  t0=$SECONDS
  log=$(mktemp)   # pip's notices go to a log, shown only when an install fails
  pip_install() { python -m pip install -q --no-compile "$@" >>"$log" 2>&1 || { cat "$log"; exit 1; }; }
  if ! python -c "import torch" 2>/dev/null; then
    if [ -n "${TORCH_SPEC:-}" ]; then
      echo "Installing ${TORCH_SPEC} into .venv..."
      pip_install "$TORCH_SPEC"
    elif [ "$(uname -s)" = Linux ] && python -c "import urllib.request as u; u.urlopen('$TORCH_CPU_INDEX/torch/', timeout=5)" 2>/dev/null; then
      # PyPI's Linux wheels of torch are CUDA builds (torch plus ~18 nvidia-* packages, several GB); the
      # PyTorch CPU index has the CPU-only build (about 200 MB), all a CPU needs.
      echo "Installing torch $TORCH_VERSION, CPU-only build, from $TORCH_CPU_INDEX into .venv..."
      pip_install "torch==$TORCH_VERSION" --index-url "$TORCH_CPU_INDEX" --extra-index-url https://pypi.org/simple
    else
      # No CPU index here: say exactly what torch==$TORCH_VERSION resolves to before downloading it.
      cuda=$(python -m pip install --dry-run -q --report - "torch==$TORCH_VERSION" 2>/dev/null | python -c "
import json, sys
names = [i['metadata']['name'] for i in json.load(sys.stdin)['install']]
print(' '.join(n for n in names if n.startswith(('nvidia', 'cuda', 'triton'))))" || true)
      if [ -n "$cuda" ]; then
        [ "$(uname -s)" = Linux ] && why="the PyTorch CPU index ($TORCH_CPU_INDEX) cannot be reached" || why="this platform"
        echo "Installing torch $TORCH_VERSION into .venv: for $why the package index offers only its CUDA build,"
        echo "  torch with $(wc -w <<<"$cuda") CUDA packages (several GB): $cuda"
        echo "  To avoid it, set TORCH_SPEC to a CPU build you can reach (a wheel file or an index), e.g."
        echo "  TORCH_SPEC=/path/to/torch-$TORCH_VERSION+cpu-...whl bash $0"
      else
        echo "Installing torch $TORCH_VERSION (a CPU build: no CUDA packages) into .venv..."
      fi
      pip_install "torch==$TORCH_VERSION"
    fi
  fi
  echo "Installing ftkit ($kind) and its dependencies into .venv..."
  pip_install "${want_pkgs[@]}"
  rm -f "$log"
  echo "$hash $kind" > "$stamp"
  echo "Set up .venv in $((SECONDS - t0))s."
fi
