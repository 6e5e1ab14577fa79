"""The whole loop on CPU in a few minutes, ending with a real gain on held-out puzzles: build a
rotation puzzle set (level easy: turned by 0 or 180 degrees) from the synthetic shapes (no
download), render it, make the tiny offline Qwen2.5-VL (4 tokens a picture), teach it the
answer format on random answers, run GRPO with the shipped TRL trainer and reward, then score
the model before and after on the held-out puzzles. It is a ~200 k-parameter model trained from nothing on pictures made to be learnable,
not a 3B VLM on photos; the same commands scale to those."""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path

from ssl4rl.build import BuildConfig, build
from ssl4rl.show import contact_sheet

PICTURES = 1200  # ~120 held-out puzzles at the default 10 % test fraction
DEMO_SETTINGS = {"batch_size": 16, "mini_batch_size": 16, "rollout_n": 8, "lr": 3e-3, "kl_loss_coef": 0.0, "max_response_length": 16, "strict_format": True}
# verl's trainer on the same puzzles and model (bench/learning.py's demo-verl, and CI's verl
# learning test): 32 puzzles a step in four updates of 8. A verl step on the CPU is mostly
# generation, so four updates per rollout batch learned in about 10 steps what one update of 16 a
# step learned in 20 to over 40; on the CPU a run of one seed repeats exactly (docs/learning.md).
VERL_DEMO_SETTINGS = {**DEMO_SETTINGS, "batch_size": 32, "mini_batch_size": 8}
VERL_DEMO_STEPS = 10


def build_puzzles(data: Path, seed: int = 0) -> dict:
    """The demo's puzzle set (also the learning test's): returns the manifest."""
    prompt = resources.files("ssl4rl.configs") / "prompts" / "short" / "rotation.txt"
    config = BuildConfig(task="rotation", source=f"shapes:{PICTURES}", out=str(data), prompt_file=str(prompt), difficulty=["easy"], seed=seed)
    return build(config, workers=2, progress_bar=False)


def make_model(folder: Path, data: Path, seed: int = 0, progress: bool = True) -> list[float]:
    """The tiny model at 56 px, format warm-started on random answers; returns the losses."""
    from ssl4rl.tiny_vlm import make_tiny_qwen2_5_vl, warm_start

    make_tiny_qwen2_5_vl(folder, seed=seed, max_pixels=56 * 56)
    return warm_start(folder, data, steps=100, seed=seed, progress=progress)


def verl_demo_run(data: str, model: str, seed: int = 0):
    """The learning run of verl's trainer on the demo's puzzles (a `ssl4rl.learning.Run`)."""
    from ssl4rl.learning import Run

    settings = {key: VERL_DEMO_SETTINGS[key] for key in ("batch_size", "mini_batch_size", "rollout_n", "lr", "max_response_length")}
    return Run(name="demo-verl", data=data, model=model, backend="verl", steps=VERL_DEMO_STEPS, eval_every=VERL_DEMO_STEPS, seed=seed, extra=["--strict-format"], **settings)


def run_demo(out: str = "outputs/demo", steps: int = 40, seed: int = 0) -> list[dict]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ssl4rl.eval.backends import HFBackend
    from ssl4rl.eval.report import comparison_table
    from ssl4rl.eval.runner import puzzle_items, run
    from ssl4rl.learning import before_after, heldout, write_curves
    from ssl4rl.train.trl_grpo import LocalGRPOConfig, train_trl

    root = Path(out)
    data = root / "data"
    for stale in ("data", "tiny-qwen2.5-vl", "grpo", "eval-before", "eval-after"):  # a rerun starts these afresh
        shutil.rmtree(root / stale, ignore_errors=True)
    manifest = build_puzzles(data, seed)
    print(f"1/5 built {manifest['rows']['train']} train + {manifest['rows']['test']} test rotation puzzles (0 or 180 degrees) in {data}")
    print(f"2/5 contact sheet (8 pictures): {contact_sheet(data, root / 'puzzles.png', n=8, split='train')}")
    model = root / "tiny-qwen2.5-vl"
    print("3/5 tiny Qwen2.5-VL (56-px pictures, 4 tokens each), then a format warm-start on random answers:", flush=True)
    losses = make_model(model, data, seed)
    print(f"    {model}: format warm-start loss {losses[0]:.2f} -> {losses[-1]:.2f}")
    print(f"4/5 GRPO (TRL, CPU, {steps} steps of 16 puzzles x 8 answers), reward = rotation accuracy (chance 0.5):")
    config = LocalGRPOConfig(**DEMO_SETTINGS, max_steps=steps, save_freq=steps, seed=seed, logger="tensorboard")
    history = train_trl(str(data), str(model), str(root / "grpo"), config)
    print("5/5 held-out puzzles (test split), greedy answers, accuracy in %:")
    summaries, scores = [], []
    for name, path, step in (("before", model, 0), ("after GRPO", root / "grpo" / "final", steps)):
        folder = root / f"eval-{name.split()[0]}"
        summaries.append(run(puzzle_items(str(data), None), HFBackend(str(path), max_new_tokens=24), str(folder), puzzles=True, label=name))
        scores += heldout(folder, step)
    print(comparison_table(summaries, ["before", "after GRPO"]), end="")
    result = {"run": "demo: rotation", "backend": "trl", "scores": scores, "rewards": [(entry["step"], entry["reward"]) for entry in history]}
    print(f"reward and held-out accuracy curve: {write_curves(root, result)}")
    first, last = before_after(result, "rotation")
    print(f"held-out accuracy {100 * first.accuracy:.1f} % [{100 * first.low:.1f}, {100 * first.high:.1f}] -> "
          f"{100 * last.accuracy:.1f} % [{100 * last.low:.1f}, {100 * last.high:.1f}] (95 % intervals, {last.n} puzzles)")  # fmt: skip
    return history
