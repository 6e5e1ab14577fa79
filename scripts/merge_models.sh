#!/usr/bin/env bash
# verl FSDP checkpoint -> plain Hugging Face model (a LoRA adapter is fused).
# Usage: scripts/merge_models.sh CHECKPOINT OUT [--overwrite]   (CHECKPOINT: global_step_N/actor, global_step_N or the run folder)
set -euo pipefail
exec ssl4rl merge "${1:?usage: scripts/merge_models.sh CHECKPOINT OUT [--overwrite]}" "${2:?usage: scripts/merge_models.sh CHECKPOINT OUT [--overwrite]}" "${@:3}"
