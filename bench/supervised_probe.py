"""Can the model learn this puzzle at all? Supervised training on the true answers, then held-out accuracy.

    python bench/supervised_probe.py BUILD [--size tiny] [--pixels 56] [--from MODEL] [--steps 2000] [--lr 1e-3]

Before blaming GRPO for a flat curve, ask whether the model can represent the answer: this
trains a fresh offline model (`ssl4rl tiny-model --size --pixels`), or a copy of `--from`, on
each train row's own answer (`ssl4rl.tiny_vlm.warm_start(true_answers=True)`) and scores the
build's test split with `ssl4rl eval --puzzles`. It prints the loss averaged over every 100 steps
(the step where it drops below the answer prior's says how hard the puzzle is to find) and the
held-out accuracy with its 95 % interval. What it found is in docs/learning.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    from ssl4rl.learning import evaluate, ssl4rl
    from ssl4rl.tiny_vlm import warm_start

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build", help="a build folder with train and test splits")
    parser.add_argument("--size", default="tiny", choices=["tiny", "small"], help="size of a fresh model (default: tiny)")
    parser.add_argument("--pixels", type=int, default=56, help="picture side of a fresh model (default: 56, 4 tokens a picture)")
    parser.add_argument("--from", dest="init", help="start from a copy of this model folder instead of a fresh one")
    parser.add_argument("--steps", type=int, default=2000, help="optimizer steps (default: 2000)")
    parser.add_argument("--batch-size", type=int, default=16, help="rows a step (default: 16)")
    parser.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (default: 1e-3)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not Path(args.build, "manifest.json").is_file():
        parser.error(f"{args.build}: not a build folder (no manifest.json)")
    if args.init and not Path(args.init, "config.json").is_file():
        parser.error(f"--from {args.init}: not a model folder (no config.json)")
    with tempfile.TemporaryDirectory(prefix="ssl4rl-probe-") as work:
        model = Path(work) / "model"
        if args.init:
            shutil.copytree(args.init, model)
        else:
            ssl4rl("tiny-model", str(model), "--size", args.size, "--pixels", str(args.pixels), "--seed", str(args.seed))
        losses = warm_start(model, args.build, steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed, true_answers=True)
        means = [sum(losses[i : i + 100]) / len(losses[i : i + 100]) for i in range(0, len(losses), 100)]
        print("loss every 100 steps: " + " ".join(f"{m:.3f}" for m in means))
        for score in evaluate(model, args.build, Path(work) / "eval", args.steps, Path(work) / "eval.log"):
            print(f"{score.task}: held-out {100 * score.accuracy:.1f} % [{100 * score.low:.1f}, {100 * score.high:.1f}] of {score.n} after {args.steps} steps")


if __name__ == "__main__":
    main()
