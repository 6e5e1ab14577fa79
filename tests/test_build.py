"""The builder: deterministic across worker counts, resumable, verl-shaped, honest manifests."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import build_interrupted_at, write_folder
from ssl4rl.build import BuildConfig, build
from ssl4rl.errors import UserError
from ssl4rl.schema import SCHEMA
from ssl4rl.tasks import IMAGE_TASKS as TASKS


def run(tmp_path: Path, source: Path, name: str, workers: int = 1, **kwargs) -> tuple[Path, dict]:
    out = tmp_path / name
    cfg = BuildConfig(source=str(source), out=str(out), **{"task": "rotation", **kwargs})
    return out, build(cfg, workers=workers, progress_bar=False)


def read_rows(out: Path, split: str | None = None) -> list[dict]:
    pattern = f"{split}-*.parquet" if split else "*.parquet"
    return [row for file in sorted(out.glob(pattern)) for row in pq.read_table(file).to_pylist()]


def output_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


@pytest.mark.parametrize("task", list(TASKS))
def test_output_bytes_identical_for_one_and_several_workers_and_reruns(tmp_path, photo_folder, task):
    opts = dict(task=task, per_image=3, shard_rows=10, test_fraction=0.3)
    one, _ = run(tmp_path, photo_folder, "w1", workers=1, **opts)
    two, _ = run(tmp_path, photo_folder, "w2", workers=2, **opts)
    three, _ = run(tmp_path, photo_folder, "w3", workers=3, **opts)
    again, _ = run(tmp_path, photo_folder, "again", workers=1, **opts)
    reference = output_bytes(one)
    assert len([n for n in reference if n.endswith(".parquet")]) >= 4  # several shards per split
    assert output_bytes(two) == reference
    assert output_bytes(three) == reference
    assert output_bytes(again) == reference


def test_another_seed_gives_other_puzzles(tmp_path, photo_folder):
    a, _ = run(tmp_path, photo_folder, "a", seed=0)
    b, _ = run(tmp_path, photo_folder, "b", seed=1)
    answers = lambda out: [r["reward_model"]["ground_truth"] for r in read_rows(out)]  # noqa: E731
    assert answers(a) != answers(b)


def test_rows_follow_verl_rlhf_schema_and_verify_their_own_answers(tmp_path, photo_folder):
    for task_name in TASKS:
        out, manifest = run(tmp_path, photo_folder, task_name, task=task_name)
        assert pq.read_schema(next(out.glob("train-*.parquet"))).equals(SCHEMA)
        rows = read_rows(out)
        # Tasks that need partner images skip the first images of a split (counted in the manifest).
        assert len(rows) == manifest["rows"]["train"] + manifest["rows"]["test"] == 24 - sum(manifest["skipped"].values())
        assert len(rows) >= 12 and set(manifest["skipped"]) <= {"no-partners"}
        for row in rows:
            assert row["data_source"] == f"ssl4rl/{task_name}"
            assert row["prompt"][0]["role"] == "user"
            assert row["prompt"][0]["content"].count("<image>") == len(row["images"])
            assert all(image["bytes"] and image["path"] is None for image in row["images"])
            truth = row["reward_model"]["ground_truth"]
            assert row["reward_model"]["style"] == "rule" and row["extra_info"]["answer"] == truth
            params = json.loads(row["extra_info"]["params"])
            assert TASKS[task_name].score(f"<think>x</think> <answer>{truth}</answer>", truth, params) == 1.0
        for split in ("train", "test"):
            assert [r["extra_info"]["index"] for r in read_rows(out, split)] == list(range(manifest["rows"][split]))


def test_datasets_reads_the_images_column_as_image_storage(tmp_path, photo_folder):
    datasets = pytest.importorskip("datasets")
    out, _ = run(tmp_path, photo_folder, "hf", task="jigsaw")
    data = datasets.load_dataset("parquet", data_files=sorted(map(str, out.glob("train-*.parquet"))), split="train")
    data = data.cast_column("images", datasets.Sequence(datasets.Image()))
    tiles = data[0]["images"]
    assert len(tiles) == 4 and all(tile.mode == "RGB" and min(tile.size) >= 28 for tile in tiles)


def test_manifest_records_what_a_researcher_needs(tmp_path, photo_folder):
    out, manifest = run(tmp_path, photo_folder, "m", task="position", test_fraction=0.25)
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["task"] == "position" and manifest["options"]["grid"] == 2 and manifest["seed"] == 0
    assert manifest["source"]["images"] == 24 and len(manifest["source"]["fingerprint"]) == 64
    histogram = Counter(r["reward_model"]["ground_truth"] for r in read_rows(out, "train"))
    assert manifest["answers"]["train"] == dict(histogram)
    assert manifest["files"]["train"] == sorted(p.name for p in out.glob("train-*.parquet"))
    assert {"ssl4rl", "pillow", "numpy", "pyarrow"} <= set(manifest["versions"])
    assert not list(out.glob(".*"))  # no temporary or progress files left


def test_answers_are_close_to_uniform(tmp_path, photo_folder):
    expected = {"rotation": 4, "position": 4, "contrastive": 2}
    for task, classes in expected.items():
        _, manifest = run(tmp_path, photo_folder, task, task=task, per_image=20, test_fraction=0.0)
        counts = manifest["answers"]["train"]
        assert len(counts) == classes
        total = sum(counts.values())
        assert all(abs(c - total / classes) < 4 * (total / classes) ** 0.5 for c in counts.values()), counts


def test_contrastive_positives_share_a_source_and_negatives_do_not(tmp_path, photo_folder):
    out, _ = run(tmp_path, photo_folder, "c", task="contrastive", per_image=4, test_fraction=0.0)
    labels = Counter()
    for row in read_rows(out):
        partner = json.loads(row["extra_info"]["params"])["partner_id"]
        labels[row["reward_model"]["ground_truth"]] += 1
        own = row["extra_info"]["source_id"].split("#")[0]
        if row["reward_model"]["ground_truth"] == "positive":
            assert partner is None
        else:
            assert partner is not None and partner != own
    assert labels["negative"] >= 30 and labels["positive"] >= 30


def test_limit_caps_rows_identically_for_any_worker_count(tmp_path, photo_folder):
    one, m1 = run(tmp_path, photo_folder, "l1", limit=7, per_image=2)
    two, m2 = run(tmp_path, photo_folder, "l2", limit=7, per_image=2, workers=2)
    assert m1["rows"]["train"] + m1["rows"]["test"] == 7
    assert output_bytes(one) == output_bytes(two)


def test_interrupted_build_resumes_from_complete_shards(tmp_path, photo_folder):
    opts = dict(task="contrastive", per_image=2, shard_rows=6, test_fraction=0.2)
    reference, _ = run(tmp_path, photo_folder, "ref", **opts)

    with build_interrupted_at(15):
        run(tmp_path, photo_folder, "resumed", **opts)
    out = tmp_path / "resumed"
    kept = {p.name: p.stat().st_mtime_ns for p in out.glob("*.parquet")}
    assert kept and not (out / "manifest.json").exists()
    assert not list(out.glob(".*.tmp"))  # the half-filled shard was discarded, not left behind

    run(tmp_path, photo_folder, "resumed", **opts)
    assert output_bytes(out) == output_bytes(reference)
    assert all(out.joinpath(name).stat().st_mtime_ns == mtime for name, mtime in kept.items())


def test_finished_build_is_reused_and_a_different_one_refused(tmp_path, photo_folder):
    out, first = run(tmp_path, photo_folder, "same")
    stamp = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    _, second = run(tmp_path, photo_folder, "same")
    assert second == first and stamp == {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    with pytest.raises(UserError, match="other settings"):
        run(tmp_path, photo_folder, "same", seed=5)
    cfg = BuildConfig(task="rotation", source=str(photo_folder), out=str(out), seed=5)
    assert build(cfg, overwrite=True, progress_bar=False)["seed"] == 5


def test_jpeg_output_and_png_passthrough(tmp_path):
    folder = write_folder(tmp_path / "jpg", 6, size=(200, 150), fmt="JPEG")
    out, _ = run(tmp_path, folder, "pos", task="position", test_fraction=0.0)
    sources = {p.name: p.read_bytes() for p in folder.iterdir()}
    for row in read_rows(out):
        assert row["images"][0]["bytes"] == sources[row["extra_info"]["source_id"]]  # untouched original
        assert row["images"][1]["bytes"].startswith(b"\x89PNG")
    out, _ = run(tmp_path, folder, "jpeg", task="jigsaw", image_format="jpeg")
    assert all(img["bytes"].startswith(b"\xff\xd8") for row in read_rows(out) for img in row["images"])


def test_prompt_file_with_wrong_image_count_is_refused_before_any_output(tmp_path, photo_folder):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Only one image here: <image>. What angle?")
    with pytest.raises(UserError, match="2 images"):
        run(tmp_path, photo_folder, "bad", prompt_file=str(prompt))
    assert not (tmp_path / "bad").exists()
    prompt.write_text("First <image> then <image>: angle among {angles}?")
    out, _ = run(tmp_path, photo_folder, "good", prompt_file=str(prompt))
    assert read_rows(out)[0]["prompt"][0]["content"].startswith("First <image> then <image>: angle among 0, 90, 180, 270?")


def test_a_mix_takes_a_folder_of_prompts_one_file_per_task(tmp_path, photo_folder):
    """`--prompt DIR` gives each task of a mix its own DIR/<task>.txt; a task without one, or a
    single file for a mix, is refused before any output."""
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "rotation.txt").write_text("R: <image> <image> {angles}. Reply <answer>deg</answer>.")
    with pytest.raises(UserError, match=r"no prompt file for position\.txt"):
        run(tmp_path, photo_folder, "partial", task="mix", tasks={"rotation": 1, "position": 1}, prompt_file=str(prompts))
    with pytest.raises(UserError, match="a folder of TASK.txt files"):
        run(tmp_path, photo_folder, "file", task="mix", tasks={"rotation": 1, "position": 1}, prompt_file=str(prompts / "rotation.txt"))
    assert not (tmp_path / "partial").exists() and not (tmp_path / "file").exists()
    (prompts / "position.txt").write_text("P: <image> <image> Reply <answer>cell</answer>.")
    out, _ = run(tmp_path, photo_folder, "mix", task="mix", tasks={"rotation": 1, "position": 1}, prompt_file=str(prompts))
    firsts = {row["extra_info"]["task"]: row["prompt"][0]["content"].split(":")[0] for row in read_rows(out)}
    assert firsts == {"rotation": "R", "position": "P"}
