#!/usr/bin/env bash
# SSL4RL paper run: GRPO on jigsaw puzzles from seedbench (build them first: build_benchmarks/seedbench.sh --data PATH).
# The run is named seedbench-jigsaw; checkpoints go to outputs/verl/seedbench-jigsaw/.
exec "$(dirname "$0")/train.sh" datasets/seedbench/jigsaw "$@"
