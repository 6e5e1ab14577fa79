#!/usr/bin/env bash
# SSL4RL paper run: GRPO on position puzzles from mmbench (build them first: build_benchmarks/mmbench.sh --data PATH).
# The run is named mmbench-position; checkpoints go to outputs/verl/mmbench-position/.
exec "$(dirname "$0")/train.sh" datasets/mmbench/position "$@"
