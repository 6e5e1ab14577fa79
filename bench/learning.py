"""Does it learn? GRPO runs on the learnable shapes benchmark, tracked by held-out accuracy.

    python bench/learning.py [--out outputs/learning] [--runs rotation-verl,rotation-trl,...] [--steps N]

Every step is the command a user types (`ssl4rl build`, `ssl4rl tiny-model --pixels 56
--warm-start`, `ssl4rl train --strict-format`, `ssl4rl merge`, `ssl4rl eval --puzzles`; see
ssl4rl.learning), on `--source shapes` with the short prompts in configs/prompts/short/ (each states its
own answer format, so the shared instruction line is left out: half the prompt tokens). Each run writes heldout.csv,
reward.csv and curves.png into OUT/RUN; the table (task, backend, steps, wall minutes, held-out
accuracy before -> after with 95 % intervals) is printed and written to OUT/table.md.

Runs: the headline ones (rotation through verl's trainer and through TRL, position, a
rotation+position mix, flip with 2 patches and jigsaw 2x2), the controls (blank pixels,
shuffled truths: no gain expected), the curriculum pair (adaptive vs uniform on a two-level
mix), and flip with 4 patches (flip-trl); docs/learning.md has the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from importlib import resources
from pathlib import Path

from ssl4rl.learning import Run, before_after, blank_copy, shuffled_copy, ssl4rl, track
from ssl4rl.schema import MANIFEST

PROMPTS = resources.files("ssl4rl.configs") / "prompts" / "short"  # the demo's too
IMAGES = 2400  # ~240 held-out puzzles per task at the default 10 % test fraction


def build(out: Path, task: str, *extra: str) -> str:
    data = out / "data" / "-".join([task, *[e.replace(",", "+").replace(":", "") for e in extra if not e.startswith("-")]])
    if not (data / MANIFEST).exists():
        prompt = ["--prompt", str(PROMPTS / f"{task}.txt") if task != "mix" else str(PROMPTS)]  # a mix: one file per task
        ssl4rl("build", task, "--source", f"shapes:{IMAGES}", "--out", str(data), "--quiet", *prompt, *extra)
    return str(data)


def model(out: Path, data: str, name: str) -> str:
    folder = out / "models" / name
    if not (folder / "config.json").exists():
        ssl4rl("tiny-model", str(folder), "--pixels", "56", "--warm-start", data, "--warm-start-steps", "200")
    return str(folder)


def runs(out: Path, steps: int) -> dict[str, Run]:
    """The benchmark's runs by name (builds and warm-started models are made on first use)."""
    rotation = lambda: build(out, "rotation")  # noqa: E731 - built only when a run needs it
    position = lambda: build(out, "position")  # noqa: E731
    flip = lambda: build(out, "flip")  # noqa: E731
    flip_easy = lambda: build(out, "flip", "--difficulty", "easy")  # noqa: E731 - 2 patches of half the side
    jigsaw = lambda: build(out, "jigsaw")  # noqa: E731 - 2x2, scored with partial credit
    mix = lambda: build(out, "mix", "--tasks", "rotation:1,position:1")  # noqa: E731
    mix_easy = lambda: build(out, "mix", "--tasks", "rotation:1,position:1", "--difficulty", "easy")  # noqa: E731 - 0/180 and 2x2
    levels = lambda: build(out, "rotation", "--difficulty", "easy,medium")  # noqa: E731

    def demo(backend: str) -> Run:
        """The demo's set-up (rotation 0/180, 100 warm-start steps, lr 3e-3): TRL for 40 steps of
        16 puzzles; verl's trainer for 10 steps of 32 in 4 updates (ssl4rl.demo.verl_demo_run)."""
        from ssl4rl.demo import DEMO_SETTINGS, build_puzzles, make_model, verl_demo_run

        data, folder = out / "data" / "demo", out / "models" / "demo"
        if not (data / MANIFEST).exists():
            build_puzzles(data)
        if not (folder / "config.json").exists():
            make_model(folder, data, progress=False)
        if backend == "verl":
            return verl_demo_run(str(data), str(folder))
        settings = {key: DEMO_SETTINGS[key] for key in ("batch_size", "rollout_n", "lr", "max_response_length")}
        return Run(name=f"demo-{backend}", data=str(data), model=str(folder), backend=backend, steps=40, extra=["--strict-format"], **settings)

    def run(name: str, data, backend: str = "verl", **kwargs) -> Run:
        path = data()
        extra = ["--strict-format", *kwargs.pop("extra", [])]  # a reply cut at the length limit earns nothing
        return Run(name=name, data=path, model=model(out, path, Path(path).name), backend=backend, steps=kwargs.pop("steps", steps), extra=extra, **kwargs)

    # 32 puzzles a generation in 4 updates of 8 learns in fewer generations than one update of 16
    # (TRL counts updates: 240 = 60 generations; a verl step is one generation)
    updates = {"batch_size": 32, "mini_batch_size": 8, "steps": 240, "eval_every": 40}
    verl_updates = {**updates, "steps": 60, "eval_every": 20}
    # puzzles whose answer names one of several pictures (flip, jigsaw): at 8 puzzles an update
    # and KL 0.02 or none, every group soon answered alike before the reward rose (flip:
    # frac_reward_zero_std 0 -> 0.56 in 240 updates) and nothing was learned; 16 an update and
    # KL 0.1 keep the groups apart
    held_apart = {"batch_size": 64, "mini_batch_size": 16, "kl_loss_coef": 0.1, "eval_every": 150}
    makers = {
        "demo-verl": lambda: demo("verl"),
        "demo-trl": lambda: demo("trl"),
        "rotation-verl": lambda: run("rotation-verl", rotation, **verl_updates),
        "rotation-trl": lambda: run("rotation-trl", rotation, "trl", **updates),
        "position-trl": lambda: run("position-trl", position, "trl"),
        "flip-trl": lambda: run("flip-trl", flip, "trl", **held_apart, steps=600),  # 4 patches: not learned yet
        "flip-easy-trl": lambda: run("flip-easy-trl", flip_easy, "trl", **held_apart, steps=600),
        # 3,1,4,2 is 7 tokens: 16 cut every reply; the reference's per-position credit pays the
        # warm-started model's non-permutations (1,4,2,2) in part, so GRPO has a signal to follow
        "jigsaw-trl": lambda: run("jigsaw-trl", jigsaw, "trl", **{**held_apart, "eval_every": 160}, steps=480, max_response_length=24, extra=["--jigsaw-scoring", "parity"]),
        "mix-trl": lambda: run("mix-trl", mix, "trl", **updates),
        "mix-easy-trl": lambda: run("mix-easy-trl", mix_easy, "trl", **updates),
        "blank-trl": lambda: replace(run("blank-trl", rotation, "trl", **updates), data=blank_copy(rotation(), out / "data" / "rotation-blank")),
        "shuffled-trl": lambda: replace(run("shuffled-trl", rotation, "trl", **updates), data=shuffled_copy(rotation(), out / "data" / "rotation-shuffled")),
        "uniform-trl": lambda: run("uniform-trl", levels, "trl"),
        "adaptive-trl": lambda: run("adaptive-trl", levels, "trl", extra=["--curriculum", "adaptive"]),
    }
    return makers


def table(results: list[dict]) -> str:
    lines = ["| run | task | backend | steps | wall min | held-out before | held-out after | change |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for result in results:
        for task in sorted({s.task for s in result["scores"]}):
            first, last = before_after(result, task)
            lines.append(
                f"| {result['run']} | {task} | {result['backend']} | {result['steps']} | {result['minutes']:.1f} "
                f"| {100 * first.accuracy:.1f} [{100 * first.low:.1f}, {100 * first.high:.1f}] "
                f"| {100 * last.accuracy:.1f} [{100 * last.low:.1f}, {100 * last.high:.1f}] | {100 * (last.accuracy - first.accuracy):+.1f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="outputs/learning", help="folder for builds, models and runs")
    parser.add_argument("--runs", default="rotation-verl,rotation-trl,position-trl,mix-trl,blank-trl,shuffled-trl", help="comma-separated, from: " + ", ".join(runs(Path("."), 0)))
    parser.add_argument("--steps", type=int, default=150, help="GRPO steps of the runs at one update a step (position, uniform, adaptive); the others set their own")
    parser.add_argument("--seed", type=int, default=0, help="training seed (and the verl hf rollout's)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    makers = runs(out, args.steps)
    unknown = [name for name in args.runs.split(",") if name not in makers]
    if unknown:
        parser.error(f"unknown run(s) {', '.join(unknown)}")
    results = []
    for name in args.runs.split(","):
        print(f"{name} ...", flush=True)
        result = track(replace(makers[name](), seed=args.seed), out / name)
        results.append(result)
        (out / name / "result.json").write_text(json.dumps({**result, "scores": [asdict(s) for s in result["scores"]]}, indent=1))
        print(table([result]), flush=True)
    text = table(results)
    (out / "table.md").write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
