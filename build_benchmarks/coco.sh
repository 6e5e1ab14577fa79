#!/usr/bin/env bash
# The SSL4RL paper's four puzzle sets from coco (`ssl4rl sources` says which files --data takes).
# Usage: build_benchmarks/coco.sh --data PATH [--out datasets] [--workers N] [--tasks rotation,jigsaw]
exec ssl4rl paper coco "$@"
