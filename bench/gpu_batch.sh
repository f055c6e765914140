#!/bin/bash
# All the GPU work of issue 21, one call per part, on the one-GPU machine (no network), from the repository root:
#
#   bash bench/gpu_batch.sh [PART]     # run(..., carry=['.gpu']); .gpu is built here by bench/build_peer_envs.sh
#
# PART 1 (default): setup; the 1B comparison (ftkit, Unsloth without and with its checkpointing, TRL + liger); the GPU
#         tests of fused LoRA, offloading and the varlen logits; ftkit's offloaded checkpointing; ftkit without fused LoRA.
# PART 2: the 8B shape: ftkit without checkpointing and with offloaded checkpointing, Unsloth with its checkpointing,
#         QLoRA (ftkit with fused LoRA on the 4-bit base, Unsloth).
# PART 3: the other levers (plain and save_on_cpu checkpointing, norm recompute off, liger off, 8B without fused LoRA,
#         8B plain checkpointing), ftkit QLoRA 8B on peft's path, TRL without liger, TRL + liger 8B, Unsloth 8B
#         without checkpointing; then tests/test_fused.py (CPU, with bitsandbytes) and the rest of tests/test_gpu.py.
#
# Each part keeps to BUDGET seconds (default 540: the limit of a call is 600): a configuration that cannot finish in
# what is left is skipped and named (parts 2 and 3 run first what an earlier part on this machine skipped); one that
# fails prints its error and the part goes on. A machine kept warm keeps
# /tmp between calls (environments, models, data, results). Writes $OUT/results.jsonl (one JSON line per
# configuration, failures included), $OUT/gpu-tests.jsonl (the tests' figures), $OUT/all.log (everything); prints the
# table of this part and of every part run on this machine so far.
set -u
PART=${1:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
G=$ROOT/.gpu
OUT=${OUT:-/tmp/ftkit-out}
mkdir -p "$OUT"
LOG=$OUT/all.log
START=$(date +%s)
BUDGET=${BUDGET:-540}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 UNSLOTH_DISABLE_STATISTICS=1 \
  TOKENIZERS_PARALLELISM=false TQDM_DISABLE=1 FTKIT_CACHE=/tmp/ftcache FTKIT_GPU_RESULTS=$OUT/gpu-tests.jsonl \
  FTKIT_GPU_LOGDIR=$OUT FTKIT_BENCH_DIR=/tmp/ftkit-bench
A=/tmp/siteA
B=/tmp/siteB:/tmp/siteA
ALL=/tmp/ftkit-bench/all-results.jsonl  # every part's rows on this machine
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
say() { echo "=== [$(( $(date +%s) - START ))s] $*" | tee -a "$LOG"; }

setup() {
  say "setup (part $PART)"
  [ -d $A/trl ] || { mkdir -p $A && tar -xzf "$G/siteA.tgz" -C $A; } || say "FAILED to unpack siteA.tgz"
  [ -d /tmp/siteB/unsloth ] || { mkdir -p /tmp/siteB && tar -xzf "$G/siteB.tgz" -C /tmp/siteB; } || say "FAILED to unpack siteB.tgz"
  [ -d /tmp/ftcache/tiny ] || { mkdir -p /tmp/ftcache/tiny && tar -xzf "$G/ftcache.tgz" -C /tmp/ftcache/tiny; } || say "FAILED to unpack ftcache.tgz"
  mkdir -p /tmp/ftkit-bench
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee -a "$LOG"
  PYTHONPATH=$A:$ROOT python3 -c "
import torch, transformers, peft, accelerate, trl, datasets, triton, pytest
from importlib.metadata import version as v
print('env A: torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__, 'peft', peft.__version__,
      'accelerate', accelerate.__version__, 'trl', trl.__version__, 'datasets', datasets.__version__, 'triton', triton.__version__,
      'liger', v('liger-kernel'), 'bitsandbytes', v('bitsandbytes'), 'pytest', pytest.__version__)" 2>&1 | tail -3 | tee -a "$LOG"
}

tests() {  # tests TIMEOUT PYTEST-ARGS...
  local to=$1; shift
  [ "$(left)" -gt 60 ] || { say "SKIP tests $* (only $(left)s left)"; return; }
  [ "$to" -gt "$(left)" ] && to=$(( $(left) - 10 ))
  say "RUN pytest $* (timeout ${to}s)"
  (cd "$ROOT" && PYTHONPATH=$A:$ROOT timeout "$to" python3 -m pytest -q -p no:cacheprovider -rA "$@") \
    >"$OUT/tests.log" 2>&1
  cat "$OUT/tests.log" >>"$LOG"
  grep -E "^(PASSED|FAILED|ERROR|SKIPPED)|passed|failed|^E " "$OUT/tests.log" | tail -40
}

bench() {  # bench ARGS...: bench/train_speed.py, each configuration in its own process and environment
  [ "$(left)" -gt 60 ] || { say "SKIP bench $* (only $(left)s left)"; return; }
  say "RUN bench/train_speed.py $*"
  (cd "$ROOT" && PYTHONPATH=$A:$ROOT timeout $(( $(left) - 5 )) python3 bench/train_speed.py "$@" \
    --budget $(( $(left) - 15 )) --sites "ftkit=$A,trl=$A,unsloth=$B" --out "$OUT/results.jsonl" --copy "$ALL" --log "$LOG")
}

setup
case $PART in
  1)
    bench --only ftkit-1b,unsloth-1b,unsloth-1b-gc,trl-liger-1b
    tests 150 tests/test_gpu.py -k "fused or offload or varlen_packed"
    bench --only ftkit-1b-offload,ftkit-1b-nofused
    ;;
  2)
    bench --part 2 --missing "$ALL"
    ;;
  3)
    bench --part 3 --missing "$ALL"
    tests 120 tests/test_fused.py  # the CPU tests, with these versions and bitsandbytes' CPU kernels (4-bit)
    tests $(( $(left) - 10 )) tests/test_gpu.py -k "not fused and not offload and not varlen_packed"
    ;;
  *) say "unknown part $PART (1, 2 or 3)" ;;
esac
say "part $PART done; this part:"
[ -f "$OUT/results.jsonl" ] && python3 "$ROOT/bench/train_speed.py" --table "$OUT/results.jsonl" | tee -a "$LOG"
if [ -f "$ALL" ]; then
  say "every part run on this machine:"
  python3 "$ROOT/bench/train_speed.py" --table "$ALL" | tee -a "$LOG"
  cp "$ALL" "$OUT/all-results.jsonl"
fi
[ -f "$OUT/gpu-tests.jsonl" ] && { say "GPU tests' figures:"; cat "$OUT/gpu-tests.jsonl"; }
