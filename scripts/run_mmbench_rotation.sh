#!/usr/bin/env bash
# SSL4RL paper run: GRPO on rotation puzzles from mmbench (build them first: build_benchmarks/mmbench.sh --data PATH).
# The run is named mmbench-rotation; checkpoints go to outputs/verl/mmbench-rotation/.
exec "$(dirname "$0")/train.sh" datasets/mmbench/rotation "$@"
