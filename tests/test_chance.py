"""Chance is the chance of the puzzle: the expected score of a uniform random valid answer under
the verifier, the same figure in eval, audit and report."""

from __future__ import annotations

import itertools
import json

import pyarrow.parquet as pq
import pytest

from conftest import write_folder
from ssl4rl.audit import audit
from ssl4rl.build import BuildConfig, build
from ssl4rl.eval.runner import puzzle_items, run
from ssl4rl.reward import chance, compute_score
from ssl4rl.tasks import IMAGE_TASKS
from ssl4rl.tasks.common import LETTERS
from ssl4rl.tasks.position import cell_names


def _answers(task: str, truth: str, params: dict) -> list[str]:
    """Every valid answer of a row, enumerated from the task's definition."""
    if task == "rotation":
        return [str(a) for a in range(0, 360, int(params["granularity"]))]
    if task == "position":
        return cell_names(int(params["grid"]))
    if task == "contrastive":
        return ["positive", "negative"]
    if task in ("jigsaw", "ordering"):
        n = len(truth.split(","))
        return [",".join(map(str, p)) for p in itertools.permutations(range(1, n + 1))]
    k = len(params["boxes"]) if task == "flip" else int(params["candidates"])
    return list(LETTERS[:k])


@pytest.mark.parametrize("task", list(IMAGE_TASKS))
def test_chance_is_the_mean_score_of_every_valid_answer(tmp_path, task):
    photos = write_folder(tmp_path / "photos", 5, size=(160, 160))
    options = {"grid": 2} if task in ("jigsaw", "ordering") else {}
    out = tmp_path / "out"
    build(BuildConfig(task=task, source=str(photos), out=str(out), options=options, test_fraction=0, per_image=2), progress_bar=False)
    rows = [r for f in sorted(out.glob("train-*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert rows
    for row in rows:
        info, truth = row["extra_info"], row["reward_model"]["ground_truth"]
        params = json.loads(info["params"]) if isinstance(info["params"], str) else info["params"]
        answers = _answers(task, truth, params)
        mean = sum(compute_score(row["data_source"], f"<answer>{a}</answer>", truth, info)["acc"] for a in answers) / len(answers)
        assert chance(row["data_source"], truth, info) == pytest.approx(mean)


def test_a_3x3_jigsaw_has_chance_one_ninth_in_eval_and_audit(tmp_path):
    photos = write_folder(tmp_path / "photos", 12, size=(200, 200))
    out = tmp_path / "jig"
    build(BuildConfig(task="jigsaw", source=str(photos), out=str(out), options={"grid": 3}, test_fraction=0.5, per_image=2), progress_bar=False)
    items = puzzle_items(str(out), None)
    assert items and all(item.meta["chance"] == round(1 / 9, 4) for item in items)

    class Backend:
        def generate(self, prompts, images):
            return ["<answer>1,2,3,4,5,6,7,8,9</answer>"] * len(prompts)

    summary = run(items, Backend(), str(tmp_path / "ev"), puzzles=True)
    assert summary["per_category"]["jigsaw"]["chance"] == pytest.approx(1 / 9, abs=1e-4)
    (group,) = audit(out)["groups"]
    assert group["chance"] == pytest.approx(1 / 9, abs=1e-4)
    assert "chance 30" not in (tmp_path / "ev" / "report.md").read_text()
