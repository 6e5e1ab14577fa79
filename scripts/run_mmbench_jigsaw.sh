#!/usr/bin/env bash
# SSL4RL paper run: GRPO on jigsaw puzzles from mmbench (build them first: build_benchmarks/mmbench.sh --data PATH).
# The run is named mmbench-jigsaw; checkpoints go to outputs/verl/mmbench-jigsaw/.
exec "$(dirname "$0")/train.sh" datasets/mmbench/jigsaw "$@"
