#!/usr/bin/env bash
# SSL4RL paper run: GRPO on contrastive puzzles from mmbench (build them first: build_benchmarks/mmbench.sh --data PATH).
# The run is named mmbench-contrastive; checkpoints go to outputs/verl/mmbench-contrastive/.
exec "$(dirname "$0")/train.sh" datasets/mmbench/contrastive "$@"
