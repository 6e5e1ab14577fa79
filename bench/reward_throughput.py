"""Reward throughput on one core: responses scored per second by ssl4rl.reward.compute_score,
against a baseline measured in the same run (the bare `<answer>` regex that any verifier needs).

    python bench/reward_throughput.py [--n 200000]

Target: >= 100 000 responses/s (a GRPO step of 512 prompts x 5 rollouts scores in ~25 ms).
"""

from __future__ import annotations

import argparse
import json
import re
import time

from ssl4rl.reward import compute_score

RESPONSES = {
    "rotation": ("<think>The sky is at the bottom of the second image, so it is upside down.</think> <answer>180</answer>", "180", {"granularity": 90}),
    "jigsaw": ("<think>Tile 3 holds the sky and the left edge; tile 1 continues it.</think> <answer>3, 1, 4, 2</answer>", "3,1,4,2", {"grid": 2}),
    "position": ("<think>The crop shows the corner of the roof, upper left.</think> <answer>Top left</answer>", "top-left", {"grid": 2, "box": [10, 12, 80, 90]}),
    "contrastive": ("<think>Same colours and texture after the crop.</think> <answer>positive</answer>", "positive", {"preset": "default", "partner_id": None}),
}


def workload(n: int) -> list[tuple]:
    cases = [
        (f"ssl4rl/{task}", response, truth, {"task": task, "params": json.dumps(params, sort_keys=True)})
        for task, (response, truth, params) in RESPONSES.items()
    ]
    return [cases[i % len(cases)] for i in range(n)]


def rate(fn, items) -> float:
    start = time.perf_counter()
    for item in items:
        fn(*item)
    return len(items) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    args = parser.parse_args()
    items = workload(args.n)
    answer = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
    baseline = rate(lambda _source, response, _truth, _extra: answer.findall(response), items)
    ours = rate(compute_score, items)
    print(f"bare <answer> regex: {baseline:12,.0f} responses/s (baseline)")
    print(f"compute_score:       {ours:12,.0f} responses/s  ratio {ours / baseline:.2f}  target >= 100,000: {'PASS' if ours >= 100_000 else 'MISS'}")


if __name__ == "__main__":
    main()
