"""Does the loop teach? A GRPO run tracked by held-out accuracy, through the user's own commands.

`track(run, out)` trains with `ssl4rl train` (verl or TRL) saving checkpoints every few steps,
scores the starting model and each checkpoint on the build's test split with `ssl4rl eval
--puzzles` (verl checkpoints merged with `ssl4rl merge` first), reads the training reward per
step from the run's TensorBoard events, and writes `heldout.csv`, `reward.csv` and
`curves.png` in the run folder. Every step is the command a user would type, in a fresh
process: what this measures is the shipped path, not a side door.

Controls (`blank_copy`, `shuffled_copy`) rewrite a build's train split: flat grey images, or
ground truths permuted across rows; the test split stays real, so a gain there can only come
from learning the puzzle.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

Z95 = 1.96


@dataclass
class Run:
    """One GRPO run: names follow `ssl4rl train`'s flags (verl runs map them to Hydra keys)."""

    name: str
    data: str
    model: str
    backend: str = "verl"  # or "trl"
    steps: int = 40
    batch_size: int = 16
    rollout_n: int = 8
    lr: float = 1e-3
    lr_warmup_steps: int = 0
    kl_loss_coef: float = 0.0
    max_response_length: int = 16
    eval_every: int = 10  # checkpoint and held-out evaluation every N steps (and at the end)
    seed: int = 0
    extra: list[str] = field(default_factory=list)  # more `ssl4rl train` arguments


@dataclass
class Score:
    """Held-out accuracy of one model on one task, with a 95 % interval."""

    step: int
    task: str
    accuracy: float
    low: float
    high: float
    n: int


def interval(scores: list[float]) -> tuple[float, float, float]:
    """Mean and 95 % interval: Wilson's for 0/1 scores, the normal one for partial credit.

    >>> [round(x, 3) for x in interval([1.0] * 30 + [0.0] * 70)]
    [0.3, 0.219, 0.396]
    """
    n = len(scores)
    if not n:
        return math.nan, math.nan, math.nan
    mean = sum(scores) / n
    if all(s in (0.0, 1.0) for s in scores):
        centre = (mean + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
        half = Z95 * math.sqrt(mean * (1 - mean) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
        return mean, max(0.0, centre - half), min(1.0, centre + half)
    sd = math.sqrt(sum((s - mean) ** 2 for s in scores) / max(1, n - 1))
    return mean, max(0.0, mean - Z95 * sd / math.sqrt(n)), min(1.0, mean + Z95 * sd / math.sqrt(n))


def ssl4rl(*args: str, log: Path | None = None) -> str:
    """`ssl4rl ARGS` in a fresh process (offline); returns its output, raises with its tail."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run([sys.executable, "-m", "ssl4rl", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if log is not None:
        with open(log, "a") as handle:
            handle.write(f"$ ssl4rl {' '.join(args)}\n{result.stdout}\n")
    if result.returncode:
        raise RuntimeError(f"ssl4rl {' '.join(args[:2])} failed ({result.returncode}):\n{result.stdout[-3000:]}")
    return result.stdout


def heldout(eval_dir: Path, step: int) -> list[Score]:
    """Per-task scores (and `all` for a mix) from an eval folder's predictions."""
    tasks: dict[str, list[float]] = {}
    for line in (eval_dir / "predictions.jsonl").read_text().splitlines():
        record = json.loads(line)
        tasks.setdefault(record["category"], []).append(float(record["acc"]))
    if len(tasks) > 1:
        tasks["all"] = [s for scores in list(tasks.values()) for s in scores]
    return [Score(step, task, *interval(scores), len(scores)) for task, scores in sorted(tasks.items())]


def evaluate(model: str | Path, data: str, out: Path, step: int, log: Path) -> list[Score]:
    ssl4rl("eval", "--model", str(model), "--puzzles", data, "--out", str(out), "--max-new-tokens", "24", "--batch-size", "64", log=log)
    return heldout(out, step)


def train_command(run: Run, out: Path) -> list[str]:
    common = ["train", "--backend", run.backend, "--data", run.data, "--model", run.model, "--out", str(out)]
    if run.backend == "trl":
        return [*common, "--batch-size", str(run.batch_size), "--mini-batch-size", str(run.batch_size), "--rollout-n", str(run.rollout_n),
                "--lr", str(run.lr), "--lr-warmup-steps", str(run.lr_warmup_steps), "--kl-loss-coef", str(run.kl_loss_coef), "--max-response-length", str(run.max_response_length),
                "--max-steps", str(run.steps), "--save-freq", str(run.eval_every), "--seed", str(run.seed), *run.extra]  # fmt: skip
    return [*common, "--device", "cpu", "--rollout", "hf", *run.extra,
            f"data.train_batch_size={run.batch_size}", f"actor_rollout_ref.actor.ppo_mini_batch_size={run.batch_size}",
            f"actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu={run.batch_size * run.rollout_n}",
            f"actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu={run.batch_size * run.rollout_n}",
            f"actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu={run.batch_size * run.rollout_n}",
            f"actor_rollout_ref.rollout.n={run.rollout_n}", f"actor_rollout_ref.actor.optim.lr={run.lr}", f"actor_rollout_ref.actor.optim.lr_warmup_steps={run.lr_warmup_steps}",
            f"actor_rollout_ref.actor.use_kl_loss={str(run.kl_loss_coef > 0).lower()}", f"actor_rollout_ref.actor.kl_loss_coef={run.kl_loss_coef}",
            f"data.max_response_length={run.max_response_length}", f"trainer.total_training_steps={run.steps}",
            f"trainer.save_freq={run.eval_every}", "trainer.test_freq=-1", "trainer.val_before_train=false",
            f"data.seed={run.seed}", f"actor_rollout_ref.rollout.seed={run.seed}", "trainer.max_actor_ckpt_to_keep=null"]  # fmt: skip


def checkpoints(run: Run, out: Path) -> dict[int, Path]:
    """Step -> checkpoint folder the run wrote (TRL: checkpoint-N; verl: global_step_N)."""
    pattern, prefix = ("trl/checkpoint-*", "checkpoint-") if run.backend == "trl" else ("verl/*/global_step_*", "global_step_")
    return {int(p.name.removeprefix(prefix)): p for p in out.glob(pattern) if p.name.removeprefix(prefix).isdigit()}


def rewards(out: Path) -> list[tuple[int, float]]:
    """(step, mean training reward) from the run's TensorBoard events (TRL: train/reward; verl:
    critic/score/mean)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    points: dict[int, float] = {}
    for events in sorted(out.rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in ("train/reward", "critic/score/mean"):
            if tag in accumulator.Tags()["scalars"]:
                points.update((e.step, e.value) for e in accumulator.Scalars(tag))
    return sorted(points.items())


def track(run: Run, out: str | Path) -> dict:
    """Train, then score the start and every checkpoint on held-out puzzles; writes the CSVs
    and the PNG into `out` and returns {"scores": [...], "rewards": [...], "minutes": ...}."""
    out = Path(out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    log = out / "commands.log"
    started = time.time()
    ssl4rl(*train_command(run, out), log=log)
    minutes = (time.time() - started) / 60
    scores = evaluate(run.model, run.data, out / "eval" / "step-0", 0, log)
    for step, folder in sorted(checkpoints(run, out).items()):
        model = folder
        if run.backend == "verl":
            model = out / "merged" / f"step-{step}"
            ssl4rl("merge", str(folder), str(model), log=log)
        scores += evaluate(model, run.data, out / "eval" / f"step-{step}", step, log)
    result = {"run": run.name, "backend": run.backend, "steps": run.steps, "minutes": minutes, "scores": scores, "rewards": rewards(out)}
    write_curves(out, result)
    return result


def write_curves(out: Path, result: dict) -> Path:
    """heldout.csv, reward.csv and curves.png (reward per step; held-out accuracy per task with
    its 95 % interval) in `out`."""
    with open(out / "heldout.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "task", "accuracy", "low95", "high95", "n"])
        writer.writerows([s.step, s.task, f"{s.accuracy:.4f}", f"{s.low:.4f}", f"{s.high:.4f}", s.n] for s in result["scores"])
    with open(out / "reward.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "reward"])
        writer.writerows([step, f"{value:.4f}"] for step, value in result["rewards"])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.4), dpi=100)
    if result["rewards"]:
        steps, values = zip(*result["rewards"])
        axis.plot(steps, values, color="0.6", linewidth=1, label="training reward")
    for task in sorted({s.task for s in result["scores"]}):
        points = [s for s in result["scores"] if s.task == task]
        axis.errorbar([s.step for s in points], [s.accuracy for s in points], yerr=[[max(0.0, s.accuracy - s.low) for s in points], [max(0.0, s.high - s.accuracy) for s in points]],
                      marker="o", capsize=3, label=f"held-out {task}")  # fmt: skip
    axis.set(xlabel="GRPO step", ylabel="accuracy", ylim=(0, 1), title=f"{result['run']} ({result['backend']})")
    axis.legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    path = out / "curves.png"
    figure.savefig(path)
    plt.close(figure)
    return path


def before_after(result: dict, task: str) -> tuple[Score, Score]:
    points = sorted((s for s in result["scores"] if s.task == task), key=lambda s: s.step)
    return points[0], points[-1]


def _copy_build(data: str, out: Path, rewrite) -> str:
    """A copy of a build whose train rows pass through `rewrite(table) -> table`."""
    import pyarrow.parquet as pq

    from ssl4rl.schema import split_files

    out = Path(out)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(data, out)
    for path in split_files(out, "train"):
        pq.write_table(rewrite(pq.read_table(path)), path)
    return str(out)


def blank_copy(data: str, out: str | Path) -> str:
    """The control without pixels: every train image becomes flat grey at its own size."""
    import pyarrow as pa
    from PIL import Image

    from ssl4rl.images import encode_png

    def grey(image: dict) -> dict:
        with Image.open(io.BytesIO(image["bytes"])) as picture:
            size = picture.size
        return {"bytes": encode_png(Image.new("RGB", size, (128, 128, 128))), "path": image["path"]}

    def rewrite(table):
        images = [[grey(image) for image in row] for row in table.column("images").to_pylist()]
        return table.set_column(table.schema.get_field_index("images"), "images", pa.array(images, type=table.schema.field("images").type))

    return _copy_build(data, out, rewrite)


def shuffled_copy(data: str, out: str | Path, seed: int = 0) -> str:
    """The control without truths: ground truths (and extra_info.answer) permuted across the
    train rows of each task, so the reward no longer says anything about the images."""
    import pyarrow as pa

    def rewrite(table):
        truths, infos = table.column("reward_model").to_pylist(), table.column("extra_info").to_pylist()
        for task in sorted({info["task"] for info in infos}):
            rows = [i for i, info in enumerate(infos) if info["task"] == task]
            answers = [truths[i]["ground_truth"] for i in rows]
            random.Random(f"{seed}/{task}").shuffle(answers)
            for i, answer in zip(rows, answers):
                truths[i] = {**truths[i], "ground_truth": answer}
                infos[i] = {**infos[i], "answer": answer}
        table = table.set_column(table.schema.get_field_index("reward_model"), "reward_model", pa.array(truths, type=table.schema.field("reward_model").type))
        return table.set_column(table.schema.get_field_index("extra_info"), "extra_info", pa.array(infos, type=table.schema.field("extra_info").type))

    return _copy_build(data, out, rewrite)
