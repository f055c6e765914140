#!/bin/bash
# QLoRA through FSDP2 in one process on one GPU (the FSDP-QLoRA recipe: 4-bit weights stored in the compute dtype,
# loaded on rank 0), launched as `ftkit train` does on several GPUs, on ftkit's tiny model. Prints the run's lines and
# the accelerate config it generated; exits non-zero when the run fails.
#   PYTHONPATH=<site with bitsandbytes>:$PWD bash bench/fsdp_qlora.sh
set -eu
work=${FTKIT_BENCH_DIR:-/tmp/ftkit-bench}/fsdp-qlora
rm -rf "$work" && mkdir -p "$work"
cat > "$work/cfg.yml" <<YAML
base_model: ftkit:tiny-llama
adapter: qlora
load_in_4bit: true
bf16: true
lora_r: 16
lora_alpha: 32
lora_target_linear: true
datasets:
  - path: ftkit:samples/quiz
    type: chat_template
sequence_len: 128
micro_batch_size: 8
max_steps: 20
learning_rate: 1e-2
logging_steps: 5
save_strategy: 'no'
fsdp_version: 2
fsdp_config:
  auto_wrap_policy: TRANSFORMER_BASED_WRAP
  state_dict_type: FULL_STATE_DICT
output_dir: $work/run
dataset_prepared_path: $work/prep
YAML
python3 -m ftkit.cli train "$work/cfg.yml" --launch accelerate --num-processes 1
cat "$work/run/accelerate.yaml"
python3 -c "
import json; rows = [json.loads(l) for l in open('$work/run/metrics.jsonl')]
print('FSDP2-QLoRA losses', [round(r['loss'], 3) for r in rows if 'loss' in r])"
