#!/usr/bin/env bash
# SSL4RL paper run: GRPO on rotation puzzles from seedbench (build them first: build_benchmarks/seedbench.sh --data PATH).
# The run is named seedbench-rotation; checkpoints go to outputs/verl/seedbench-rotation/.
exec "$(dirname "$0")/train.sh" datasets/seedbench/rotation "$@"
