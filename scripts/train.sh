#!/usr/bin/env bash
# GRPO with verl on a puzzle set (the paper's settings from configs/verl_grpo.yaml).
# Usage: scripts/train.sh DATA_DIR [extra Hydra overrides ...]
#   MODEL (default Qwen/Qwen2.5-VL-3B-Instruct), GPUS (default 8), NODES (default 1),
#   PROFILE (paper | 1gpu), DRY_RUN=1 to print the command only.
set -euo pipefail
data=${1:?usage: scripts/train.sh DATA_DIR [overrides ...]}
shift
exec ssl4rl train --backend verl --data "$data" --model "${MODEL:-Qwen/Qwen2.5-VL-3B-Instruct}" \
  --gpus "${GPUS:-8}" --nodes "${NODES:-1}" --profile "${PROFILE:-paper}" ${DRY_RUN:+--dry-run} "$@"
