"""The whole loop on the bundled photos, on CPU, in a few minutes: build a rotation puzzle set,
render it, make the tiny offline Qwen2.5-VL, teach it the answer format, run GRPO steps
printing the reward per step, then score the model before and after on the held-out puzzles.
The same commands scale to real data and models."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ssl4rl.build import BuildConfig, build
from ssl4rl.show import contact_sheet


def run_demo(out: str = "outputs/demo", steps: int = 6, seed: int = 0) -> list[dict]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ssl4rl.eval.backends import HFBackend
    from ssl4rl.eval.report import comparison_table
    from ssl4rl.eval.runner import puzzle_items, run
    from ssl4rl.tiny_vlm import make_tiny_qwen2_5_vl, warm_start
    from ssl4rl.train.trl_grpo import LocalGRPOConfig, train_trl

    root = Path(out)
    data = root / "data"
    for stale in ("tiny-qwen2.5-vl", "grpo", "eval-before", "eval-after"):  # a rerun starts these afresh
        shutil.rmtree(root / stale, ignore_errors=True)
    manifest = build(BuildConfig(task="rotation", source="samples", out=str(data), per_image=8, seed=seed), workers=2)
    print(f"1/5 built {manifest['rows']['train']} train + {manifest['rows']['test']} test rotation puzzles in {data}")
    print(f"2/5 contact sheet (8 photos): {contact_sheet(data, root / 'puzzles.png', n=8, split='train')}")
    model = root / "tiny-qwen2.5-vl"
    print("3/5 tiny Qwen2.5-VL: tokenizer and model, then a format warm-start (progress bar):", flush=True)
    make_tiny_qwen2_5_vl(model, seed=seed)
    losses = warm_start(model, data, steps=60, seed=seed)
    print(f"    {model}: format warm-start loss {losses[0]:.2f} -> {losses[-1]:.2f}")
    print("4/5 GRPO (TRL, CPU), reward = rotation accuracy (chance is 0.25):")
    config = LocalGRPOConfig(batch_size=4, mini_batch_size=4, rollout_n=4, lr=5e-4, max_response_length=24, max_steps=steps, seed=seed, logger="tensorboard")
    history = train_trl(str(data), str(model), str(root / "grpo"), config)
    print("5/5 held-out puzzles (test split), greedy answers, accuracy in %:")
    summaries = []
    for name, path in (("before", model), ("after GRPO", root / "grpo" / "final")):
        backend = HFBackend(str(path), max_new_tokens=24)
        summaries.append(run(puzzle_items(str(data), None), backend, str(root / f"eval-{name.split()[0]}"), puzzles=True, label=name))
    print(comparison_table(summaries, ["before", "after GRPO"]), end="")
    return history
