#!/usr/bin/env bash
# Build every puzzle from the bundled photos and render one contact sheet per task.
# Usage: scripts/demo_all_tasks.sh [OUT_ROOT]   (default: datasets/demo)
set -euo pipefail
root=${1:-datasets/demo}
for task in rotation jigsaw position contrastive inpainting similarity ordering correspondence flip; do
  ssl4rl build "$task" --source samples --per-image 4 --out "$root/$task"
  ssl4rl show "$root/$task" --out "$root/$task.png"
done
