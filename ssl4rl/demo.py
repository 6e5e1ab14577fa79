"""The whole loop on the bundled photos, on CPU, in about a minute: build a rotation puzzle set,
render it, make the tiny offline Qwen2.5-VL, teach it the answer format, then run GRPO steps
and print the reward per step. The same commands scale to real data and models."""

from __future__ import annotations

import os
from pathlib import Path

from ssl4rl.build import BuildConfig, build
from ssl4rl.show import contact_sheet


def run_demo(out: str = "outputs/demo", steps: int = 6, seed: int = 0) -> list[dict]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ssl4rl.tiny_vlm import make_tiny_qwen2_5_vl, warm_start
    from ssl4rl.train.trl_grpo import LocalGRPOConfig, train_trl

    root = Path(out)
    data = root / "data"
    manifest = build(BuildConfig(task="rotation", source="samples", out=str(data), per_image=8, seed=seed), workers=2)
    print(f"1/4 built {manifest['rows']['train']} train + {manifest['rows']['test']} test rotation puzzles in {data}")
    print(f"2/4 contact sheet: {contact_sheet(data, root / 'puzzles.png', n=8)}")
    model = root / "tiny-qwen2.5-vl"
    make_tiny_qwen2_5_vl(model, seed=seed)
    losses = warm_start(model, data, steps=60, seed=seed)
    print(f"3/4 tiny Qwen2.5-VL in {model}; format warm-start loss {losses[0]:.2f} -> {losses[-1]:.2f}")
    print("4/4 GRPO (TRL, CPU), reward = rotation accuracy (chance is 0.25):")
    config = LocalGRPOConfig(batch_size=4, mini_batch_size=4, rollout_n=4, lr=5e-4, max_response_length=24, max_steps=steps, seed=seed, logger="tensorboard")
    return train_trl(str(data), str(model), str(root / "grpo"), config)
