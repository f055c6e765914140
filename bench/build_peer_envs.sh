#!/bin/bash
# Build, on a machine with PyPI, what the GPU machine lacks (it has python3.12, torch 2.11 cu130, transformers 5.17,
# peft 0.21, accelerate 1.15, triton 3.6, and no network), into .gpu/ (git-ignored through .git/info/exclude):
#
#   .gpu/siteA.tgz   ftkit's and TRL's environment: trl 1.16, liger-kernel 0.8.5, datasets 4.8.5 (+ dill, multiprocess),
#                    bitsandbytes 0.50.2 (its CUDA 13.0 and CPU libraries only), pydantic, pytest
#   .gpu/siteB.tgz   Unsloth's, layered over siteA (PYTHONPATH=/tmp/siteB:/tmp/siteA): unsloth and unsloth-zoo 2026.10.9,
#                    trl 1.15 (Unsloth pins trl <= 1.15), cut-cross-entropy, msgspec, torchao (its web studio, tests dropped)
#   .gpu/ftcache.tgz ftkit's tiny models (so that nothing is built there)
#
#   bash bench/build_peer_envs.sh            then, on the GPU machine: bash bench/gpu_batch.sh   (carry=['.gpu'])
#
# Everything under .gpu travels with each call, with the repository: the total must stay under 60 MiB (64 MiB per call).
# datasets 4.8.5 rather than 5.x: 5.x wants pyarrow >= 24 and huggingface-hub >= 1.31, newer than the GPU machine may have;
# 4.8.5 is what Unsloth needs anyway and what the December peer runs used.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
G=$ROOT/.gpu
W=${WHEELS:-/tmp/ftkit-gpu-wheels}  # the downloads (bitsandbytes' wheel alone is 43 MB): kept out of .gpu
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
mkdir -p "$G" "$W/A" "$W/B"
mkdir -p .git/info && touch .git/info/exclude
grep -qx '/.gpu/' .git/info/exclude || echo '/.gpu/' >> .git/info/exclude

PLAT=(--python-version 3.12 --implementation cp --only-binary=:all: --platform manylinux_2_28_x86_64
      --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
A_PKGS=(trl==1.16.0 liger-kernel==0.8.5 datasets==4.8.5 dill==0.4.1 multiprocess==0.70.19 bitsandbytes==0.50.2
        pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
        pytest==9.2.0 pluggy==1.7.0 iniconfig==2.3.1 pygments==2.21.0)
B_PKGS=(unsloth==2026.10.9 unsloth-zoo==2026.10.9 trl==1.15.0 cut-cross-entropy==25.1.1 msgspec==0.23.0 torchao==0.18.0)

echo "downloading into $W"
$PY -m pip download -q --no-deps "${PLAT[@]}" -d "$W/A" "${A_PKGS[@]}"
$PY -m pip download -q --no-deps "${PLAT[@]}" -d "$W/B" "${B_PKGS[@]}"

site() {  # site NAME WHEELDIR PKGS...: install the named wheels into a staging folder, prune, pack
  local name=$1 dir=$2; shift 2
  local stage=$W/site$name files=()
  for p in "$@"; do
    local n=${p%%==*}; n=${n//-/_}
    files+=("$(ls "$dir"/${n}-${p##*==}-*.whl 2>/dev/null || ls "$dir"/$(echo "$n" | tr '[:upper:]' '[:lower:]')-*.whl | head -1)")
  done
  rm -rf "$stage"
  $PY -m pip install -q --no-index --no-deps --no-compile --target "$stage" "${PLAT[@]}" "${files[@]}"
  ( cd "$stage"
    rm -rf bin studio test
    if [ -d bitsandbytes ]; then ls bitsandbytes/*.so | grep -v -E 'cuda130|_cpu' | xargs rm -f; fi
    find . -name __pycache__ -prune -exec rm -rf {} + )
  tar -C "$stage" -czf "$G/site$name.tgz" .
}
site A "$W/A" "${A_PKGS[@]}"
site B "$W/B" "${B_PKGS[@]}"

# the tiny models of this checkout's recipe (built here if missing: a minute or two each on a CPU), as FTKIT_CACHE/tiny/...
DIRS=$($PY -c "from ftkit.tiny import tiny_model; print(*(tiny_model(f, log=None).name for f in ('llama', 'qwen3')))")
CACHE=$($PY -c "from ftkit.tiny import cache_dir; print(cache_dir())")
tar -C "$CACHE/tiny" -czf "$G/ftcache.tgz" $DIRS

repo=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
untracked=$(git ls-files -z --others --exclude-standard | xargs -0 -r du -cb 2>/dev/null | tail -1 | cut -f1)
gpu=$(du -cb "$G"/* | tail -1 | cut -f1)
total=$(( repo + ${untracked:-0} + gpu ))
ls -la "$G"
echo "repository $(( repo / 1048576 )) MiB + untracked $(( ${untracked:-0} / 1048576 )) MiB + .gpu $(( gpu / 1048576 )) MiB = $(( total / 1048576 )) MiB (limit 60)"
[ "$total" -lt $(( 60 * 1048576 )) ] || { echo "too big for one call"; exit 1; }
