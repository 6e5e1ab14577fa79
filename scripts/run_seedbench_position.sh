#!/usr/bin/env bash
# SSL4RL paper run: GRPO on position puzzles from seedbench (build them first: build_benchmarks/seedbench.sh --data PATH).
# The run is named seedbench-position; checkpoints go to outputs/verl/seedbench-position/.
exec "$(dirname "$0")/train.sh" datasets/seedbench/position "$@"
