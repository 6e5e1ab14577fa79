"""The command line: build, show, paper (and the build_benchmarks wrappers), sources."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from conftest import textured_image
from ssl4rl.cli import main

ROOT = Path(__file__).resolve().parents[1]


def write_tsv(path: Path, count: int) -> Path:
    lines = ["index\tquestion\timage"]
    for i in range(count):
        buffer = Path(path.parent / f"_{i}.png")
        textured_image(100 + i, 150, 120).save(buffer)
        lines.append(f"{i}\tWhat is shown?\t{base64.b64encode(buffer.read_bytes()).decode()}")
        buffer.unlink()
    path.write_text("\n".join(lines) + "\n")
    return path


def test_build_then_show_renders_every_puzzle(tmp_path, photo_folder, capsys):
    out = tmp_path / "built"
    assert main(["build", "jigsaw", "--source", str(photo_folder), "--out", str(out), "--grid", "3", "--workers", "2", "--quiet"]) == 0
    assert "train" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["options"] == {"grid": 3, "gap": 0.0}
    sheet = tmp_path / "sheet.png"
    assert main(["show", str(out), "--n", "3", "--out", str(sheet)]) == 0
    picture = Image.open(sheet)
    assert picture.width > 300 and picture.height > 3 * 40
    assert len(np.unique(np.asarray(picture.convert("L")))) > 50  # photos, not a blank canvas


def test_task_flags_come_from_the_task_options(tmp_path, photo_folder):
    out = tmp_path / "rot"
    assert main(["build", "rotation", "--source", str(photo_folder), "--out", str(out), "--granularity", "45", "--no-square", "--quiet"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["options"] == {"granularity": 45, "square": False}
    answers = {a for split in manifest["answers"].values() for a in split}
    assert answers <= {str(a) for a in range(0, 360, 45)} and len(answers) > 4


def test_build_benchmarks_script_builds_all_four_paper_tasks(tmp_path):
    tsv = write_tsv(tmp_path / "MMBench_DEV_EN.tsv", 12)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(
        ["bash", str(ROOT / "build_benchmarks" / "mmbench.sh"), "--data", str(tsv), "--out", str(tmp_path / "ds"), "--workers", "1"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for task in ("rotation", "jigsaw", "position", "contrastive"):
        manifest = json.loads((tmp_path / "ds" / "mmbench" / task / "manifest.json").read_text())
        assert manifest["source"]["name"] == "mmbench" and manifest["rows"]["train"] + manifest["rows"]["test"] == 12
        table = pq.read_table(next((tmp_path / "ds" / "mmbench" / task).glob("train-*.parquet")))
        assert set(table.column("data_source").to_pylist()) == {f"ssl4rl/{task}"}


def test_sources_lists_every_preset(capsys):
    assert main(["sources"]) == 0
    listed = capsys.readouterr().out
    for name in ("samples", "mmbench", "seedbench", "blink", "mme-realworld", "mmstar", "realworldqa", "vstar", "imagenet", "caparena", "coco"):
        assert f"{name}:" in listed


def test_samples_build_needs_no_download(tmp_path):
    out = tmp_path / "samples"
    assert main(["build", "position", "--source", "samples", "--out", str(out), "--quiet", "--workers", "1"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["name"] == "samples" and manifest["rows"]["train"] + manifest["rows"]["test"] >= 15
