"""Difficulty presets, multi-task mixes and the static curriculum, through the real builder."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import write_folder
from ssl4rl.build import BuildConfig, build
from ssl4rl.cli import main
from ssl4rl.errors import UserError
from ssl4rl.tasks import TASKS

LEVELS = ["easy", "medium", "hard"]


def rows_of(out: Path, split: str = "train") -> list[dict]:
    return [r for f in sorted(out.glob(f"{split}-*.parquet")) for r in pq.read_table(f).to_pylist()]


@pytest.fixture(scope="module")
def many_photos(tmp_path_factory) -> Path:
    return write_folder(tmp_path_factory.mktemp("many") / "photos", 60, size=(160, 132))


def test_every_task_has_three_levels_that_construct():
    for name, task in TASKS.items():
        assert set(task.DIFFICULTY) == set(LEVELS), name
        for level, options in task.DIFFICULTY.items():
            task(**options)  # valid options


def test_difficulty_preset_is_applied_and_recorded_and_explicit_flags_win(tmp_path, photo_folder):
    out = tmp_path / "hard"
    manifest = build(BuildConfig(task="rotation", source=str(photo_folder), out=str(out), difficulty=["hard"], test_fraction=0), progress_bar=False)
    rows = rows_of(out)
    assert {r["extra_info"]["difficulty"] for r in rows} == {"hard"}
    assert manifest["options"]["granularity"] == 45
    assert {int(r["reward_model"]["ground_truth"]) % 45 for r in rows} == {0}
    out = tmp_path / "override"
    manifest = build(BuildConfig(task="rotation", source=str(photo_folder), out=str(out), options={"granularity": 120}, difficulty=["hard"]), progress_bar=False)
    assert manifest["options"]["granularity"] == 120
    assert {r["reward_model"]["ground_truth"] for r in rows_of(out)} <= {"0", "120", "240"}


def test_mix_interleaves_tasks_by_weight_with_one_data_source_each(tmp_path, many_photos):
    cfg = dict(task="mix", source=str(many_photos), tasks={"rotation": 2.0, "position": 1.0, "flip": 1.0}, test_fraction=0.0, per_image=2)
    one = build(BuildConfig(out=str(tmp_path / "w1"), **cfg), workers=1, progress_bar=False)
    build(BuildConfig(out=str(tmp_path / "w2"), **cfg), workers=2, progress_bar=False)
    for name in ("train-00000.parquet", "manifest.json"):
        assert (tmp_path / "w1" / name).read_bytes() == (tmp_path / "w2" / name).read_bytes()
    rows = rows_of(tmp_path / "w1")
    sources = Counter(r["data_source"] for r in rows)
    assert set(sources) == {"ssl4rl/rotation", "ssl4rl/position", "ssl4rl/flip"}
    skipped = one["skipped"].get("symmetric", 0) * 2
    assert sources["ssl4rl/rotation"] > max(sources["ssl4rl/position"], sources["ssl4rl/flip"] + skipped) * 1.2
    order = [r["data_source"] for r in rows]
    assert len({tuple(order[i : i + 6]) for i in range(0, len(order) - 6, 6)}) > 1  # interleaved, not blocks
    for r in rows:  # each row verifies with its own task's verifier
        task = r["extra_info"]["task"]
        truth = r["reward_model"]["ground_truth"]
        assert TASKS[task].score(f"<answer>{truth}</answer>", truth, json.loads(r["extra_info"]["params"])) == 1.0
    assert all(key.split(":")[0] in ("rotation", "position", "flip") for key in one["answers"]["train"])
    assert [s["task"] for s in one["specs"]] == ["rotation", "position", "flip"]


def test_static_curriculum_orders_rows_from_easy_to_hard(tmp_path, many_photos):
    cfg = BuildConfig(task="jigsaw", source=str(many_photos), out=str(tmp_path / "static"), difficulty=LEVELS, curriculum="static", test_fraction=0.0, shard_rows=20)
    build(cfg, progress_bar=False)
    levels = [r["extra_info"]["difficulty"] for r in rows_of(tmp_path / "static")]
    ranks = [LEVELS.index(level) for level in levels]
    assert ranks == sorted(ranks) and set(levels) == set(LEVELS)
    grids = {r["extra_info"]["difficulty"]: json.loads(r["extra_info"]["params"])["grid"] for r in rows_of(tmp_path / "static")}
    assert grids == {"easy": 2, "medium": 3, "hard": 4}
    sources = [r["extra_info"]["source_id"] for r in rows_of(tmp_path / "static")]
    assert len(sources) == len(set(sources))  # each image used once, at one level


def test_mixed_levels_are_interleaved(tmp_path, many_photos):
    build(BuildConfig(task="rotation", source=str(many_photos), out=str(tmp_path / "m"), difficulty=["easy", "hard"], test_fraction=0.0), progress_bar=False)
    levels = [r["extra_info"]["difficulty"] for r in rows_of(tmp_path / "m")]
    assert set(levels) == {"easy", "hard"} and levels != sorted(levels, key=["easy", "hard"].index)


def test_bad_mix_and_level_input(tmp_path, photo_folder, capsys):
    with pytest.raises(UserError, match="unknown difficulty"):
        build(BuildConfig(task="rotation", source=str(photo_folder), out=str(tmp_path / "x"), difficulty=["extreme"]), progress_bar=False)
    assert main(["build", "mix", "--tasks", "rotation:two", "--source", str(photo_folder), "--out", str(tmp_path / "y")]) == 2
    assert main(["build", "mix", "--tasks", "rotation,nope", "--source", str(photo_folder), "--out", str(tmp_path / "y")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and "bad weight" in errors[0] and "unknown task 'nope'" in errors[1]
    assert not (tmp_path / "y").exists()
    assert main(["build", "mix", "--tasks", "rotation:1,ordering:1", "--difficulty", "easy", "--source", str(photo_folder), "--out", str(tmp_path / "z"), "--quiet", "--workers", "1"]) == 0
    assert {r["data_source"] for r in rows_of(tmp_path / "z")} <= {"ssl4rl/rotation", "ssl4rl/ordering"}
