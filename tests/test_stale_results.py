"""Saved results are tied to what produced them: an evaluation folder to its questions (by
content) and model (by weights), a finished build to its source, options and code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import write_folder
from ssl4rl.build import BuildConfig, build
from ssl4rl.cli import main
from ssl4rl.errors import UserError
from ssl4rl.eval.runner import model_fingerprint, puzzle_items, run


class Backend:
    """Always answers 90; counts the prompts it was asked."""

    def __init__(self):
        self.asked = 0

    def generate(self, prompts, images):
        self.asked += len(prompts)
        return ["<answer>90</answer>"] * len(prompts)


def _build(photos: Path, out: Path, seed: int, overwrite: bool = False) -> dict:
    cfg = BuildConfig(task="rotation", source=str(photos), out=str(out), per_image=2, test_fraction=0.5, seed=seed)
    return build(cfg, overwrite=overwrite, progress_bar=False)


def test_eval_refuses_old_answers_for_a_rebuilt_data_set(tmp_path):
    photos = write_folder(tmp_path / "photos", 8, size=(96, 96))
    data, out = tmp_path / "rot2", tmp_path / "rot2-ev"
    _build(photos, data, seed=0)
    first = Backend()
    run(puzzle_items(str(data), None), first, str(out), puzzles=True, identity={"model": "m"})
    assert first.asked > 0
    _build(photos, data, seed=7, overwrite=True)  # same path, same images, other puzzles
    rebuilt = puzzle_items(str(data), None)
    with pytest.raises(UserError, match="questions differ.*--overwrite"):
        run(rebuilt, Backend(), str(out), puzzles=True, identity={"model": "m"})
    again = Backend()
    summary = run(rebuilt, again, str(out), puzzles=True, identity={"model": "m"}, overwrite=True)
    assert again.asked == len(rebuilt) == summary["questions"]  # every question answered afresh
    truths = {item.key: item.meta["answer"] for item in rebuilt}
    for record in map(json.loads, (out / "predictions.jsonl").read_text().splitlines()):
        assert record["answer"] == truths[record["index"]]


def test_a_resumed_eval_reuses_only_answers_to_identical_questions(tmp_path):
    photos = write_folder(tmp_path / "photos", 8, size=(96, 96))
    data, out = tmp_path / "data", tmp_path / "ev"
    _build(photos, data, seed=0)
    items = puzzle_items(str(data), None)
    run(items, Backend(), str(out), puzzles=True)
    lines = (out / "predictions.jsonl").read_text().splitlines()
    stale = json.loads(lines[0])
    stale["question"] = "0" * 32  # an answer to another question under the same key
    (out / "predictions.jsonl").write_text("\n".join([json.dumps(stale), *lines[1:]]) + "\n")
    resumed = Backend()
    run(items, resumed, str(out), puzzles=True)
    assert resumed.asked == 1


def test_model_fingerprint_follows_weights_not_path(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"weights-1")
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for file in model.iterdir():
        (moved / file.name).write_bytes(file.read_bytes())
    before = model_fingerprint(str(model))
    assert before == model_fingerprint(str(moved))
    (model / "model.safetensors").write_bytes(b"weights-2")  # retrained in place
    assert model_fingerprint(str(model)) != before
    assert model_fingerprint("Qwen/Qwen2.5-VL-3B-Instruct") == "hub:Qwen/Qwen2.5-VL-3B-Instruct"


def test_cli_eval_refuses_a_retrained_model_in_one_line(tmp_path, monkeypatch, capsys):
    import ssl4rl.eval.backends as backends

    photos = write_folder(tmp_path / "photos", 8, size=(96, 96))
    data, out, model = tmp_path / "rot2", tmp_path / "ev", tmp_path / "model"
    _build(photos, data, seed=0)
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"weights-1")
    monkeypatch.setattr(backends, "make_backend", lambda *a, **k: Backend())
    args = ["eval", "--model", str(model), "--puzzles", str(data), "--out", str(out)]
    assert main(args) == 0
    assert main(args) == 0  # the same run resumed
    (model / "model.safetensors").write_bytes(b"weights-2")
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model differs" in err
    assert main([*args, "--overwrite"]) == 0
    assert json.loads((out / "run.json").read_text())["model"] == model_fingerprint(str(model))


def test_a_build_inside_an_image_folder_is_skipped_not_read_as_a_dataset(tmp_path):
    imgs = write_folder(tmp_path / "imgs", 6, size=(96, 96))
    first = _build(imgs, imgs / "puzzles", seed=0)
    assert first["source"]["name"] == "folder" and first["source"]["images"] == 6
    fresh = _build(imgs, tmp_path / "fresh", seed=0)
    assert fresh["source"]["name"] == "folder" and fresh["source"]["images"] == 6
    assert fresh["skipped"].get("puzzle-build") == 1
    nested = write_folder(tmp_path / "deep" / "a", 4, size=(96, 96))
    _build(nested, tmp_path / "deep" / "b" / "c" / "build", seed=0)
    assert _build(tmp_path / "deep", tmp_path / "deep-out", seed=0)["source"]["images"] == 4


def test_a_dataset_folder_holding_a_build_at_any_depth_is_refused(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    imgs = write_folder(tmp_path / "imgs", 6, size=(96, 96))
    _build(imgs, tmp_path / "hf" / "deep" / "build", seed=0)
    rows = [{"image": {"bytes": p.read_bytes(), "path": p.name}} for p in sorted(imgs.iterdir())]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "hf" / "train.parquet")  # a Hugging Face dataset file
    out = tmp_path / "out"
    assert main(["build", "rotation", "--source", str(tmp_path / "hf"), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "deep/build/" in err and not out.exists()
    assert main(["build", "rotation", "--source", str(tmp_path / "hf" / "deep"), "--out", str(out), "--quiet"]) == 2
    assert "only puzzle builds" in capsys.readouterr().err


def test_a_finished_build_is_refused_when_its_source_changed(tmp_path, capsys):
    from conftest import textured_image

    photos = write_folder(tmp_path / "photos", 3, size=(96, 96))
    out = tmp_path / "b3"
    args = ["build", "rotation", "--source", str(photos), "--out", str(out), "--quiet", "--test-fraction", "0"]
    assert main(args) == 0
    assert main(args) == 0  # unchanged: the finished build is returned
    capsys.readouterr()
    for i in (50, 51):
        textured_image(i, 96, 96).save(photos / f"new{i}.png")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "3 images then, 5 now" in err
    assert main([*args, "--overwrite"]) == 0
    assert json.loads((out / "manifest.json").read_text())["source"]["images"] == 5
    textured_image(99, 96, 96).save(photos / "new50.png")  # edited in place: same count
    assert main(args) == 2 and "edited" in capsys.readouterr().err


def test_a_finished_build_with_a_limit_checks_only_the_prefix_it_read(tmp_path):
    from conftest import textured_image

    photos = write_folder(tmp_path / "photos", 6, size=(96, 96))
    cfg = BuildConfig(task="rotation", source=str(photos), out=str(tmp_path / "out"), limit=2, test_fraction=0)
    first = build(cfg, progress_bar=False)
    textured_image(60, 96, 96).save(photos / "zzz.png")  # after the prefix: the same build
    assert build(cfg, progress_bar=False) == first
    textured_image(61, 96, 96).save(photos / "img000.png")  # inside the prefix
    with pytest.raises(UserError, match="first 2 images differ"):
        build(cfg, progress_bar=False)


def test_a_finished_build_names_the_option_or_version_that_changed(tmp_path, monkeypatch):
    import ssl4rl.build as build_module

    photos = write_folder(tmp_path / "photos", 3, size=(96, 96))
    out = tmp_path / "out"
    _build(photos, out, seed=0)
    with pytest.raises(UserError, match=r"\(seed changed\)"):
        _build(photos, out, seed=1)
    monkeypatch.setattr(build_module, "__version__", "999.0")
    with pytest.raises(UserError, match=r"ssl4rl version \(.*, now 999.0\) changed"):
        _build(photos, out, seed=0)
