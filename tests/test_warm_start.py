"""The format warm-start teaches real answers of each row's task, also on mix builds."""

from __future__ import annotations

import random

import pyarrow.parquet as pq

from ssl4rl.build import BuildConfig, build
from ssl4rl.reward import compute_score
from ssl4rl.tiny_vlm import answer_pools, format_target, true_target


def test_warm_start_targets_on_a_mix_build_are_answers_the_verifiers_accept(tmp_path, photo_folder):
    out = tmp_path / "mix"
    tasks = {"rotation": 1.0, "jigsaw": 1.0, "position": 1.0, "inpainting": 1.0}
    build(BuildConfig(task="mix", source=str(photo_folder), out=str(out), tasks=tasks, difficulty=["easy", "medium"], test_fraction=0.0), progress_bar=False)
    rows = [row for path in sorted(out.glob("train-*.parquet")) for row in pq.read_table(path).to_pylist()]
    assert len({row["extra_info"]["task"] for row in rows}) == 4
    pools = answer_pools(rows)
    rng = random.Random(0)
    scores = []
    for row in rows:
        truth = row["reward_model"]["ground_truth"]
        assert truth in pools[(row["extra_info"]["task"], row["extra_info"]["difficulty"])]
        # Every answer of the row's pool is one the row's verifier parses: right when it is the truth.
        right = compute_score(row["data_source"], true_target(row), truth, row["extra_info"])  # the supervised probe's target
        assert right["acc"] == 1.0 and right["format"] == 1.0
        target = format_target(rng, row, pools)
        assert ":" not in target.split("<answer>")[1]  # never a mix manifest key like rotation:90
        scores.append(compute_score(row["data_source"], target, truth, row["extra_info"])["acc"])
    # Random answers of the right kind score near chance, not zero.
    assert 0.1 < sum(scores) / len(scores) < 0.9
