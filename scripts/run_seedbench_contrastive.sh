#!/usr/bin/env bash
# SSL4RL paper run: GRPO on contrastive puzzles from seedbench (build them first: build_benchmarks/seedbench.sh --data PATH).
# The run is named seedbench-contrastive; checkpoints go to outputs/verl/seedbench-contrastive/.
exec "$(dirname "$0")/train.sh" datasets/seedbench/contrastive "$@"
