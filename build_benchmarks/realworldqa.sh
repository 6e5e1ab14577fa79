#!/usr/bin/env bash
# The SSL4RL paper's four puzzle sets from realworldqa (`ssl4rl sources` says which files --data takes).
# Usage: build_benchmarks/realworldqa.sh --data PATH [--out datasets] [--workers N] [--tasks rotation,jigsaw]
exec ssl4rl paper realworldqa "$@"
