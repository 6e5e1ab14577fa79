"""The Ray engine on a real two-node Ray cluster on this machine: the same bytes as a local build,
also when a Ray worker is killed mid-build and when the driver is killed and the build rerun."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import write_folder
from ssl4rl.build import BuildConfig, build
from ssl4rl.errors import UserError
from ssl4rl.ray_local import local_cluster

ROOT = Path(__file__).resolve().parents[1]
BUILD = ["rotation", "--per-image", "2", "--shard-rows", "10", "--test-fraction", "0.2", "--quiet"]


def output_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != ".lock"}


@pytest.fixture(scope="module")
def two_nodes():
    """Two `ray start` nodes of one CPU each on this machine, ended however the tests finish."""
    with local_cluster(nodes=2, cpus=1, pythonpath=str(ROOT)) as cluster:
        yield cluster


def ray_build(source: Path, out: Path, cluster: dict) -> subprocess.Popen:
    command = [sys.executable, "-m", "ssl4rl", "build", *BUILD, "--source", str(source), "--out", str(out),
               "--engine", "ray", "--ray-address", cluster["address"]]  # fmt: skip
    return subprocess.Popen(command, env=cluster["env"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> None:
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-3000:]


def saved_shards(out: Path) -> int:
    try:
        splits = json.loads((out / ".progress.json").read_text())["splits"]
    except (OSError, ValueError, KeyError):
        return 0
    return sum(split.get("shards", 0) for split in splits.values())


def busy_workers(groups: list[int]) -> list[int]:
    """Ray worker processes of our cluster (children of its raylets) running a puzzle task now."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if not Path(f"/proc/{entry}/cmdline").read_bytes().startswith(b"ray::make_batch"):
                continue
            stat = Path(f"/proc/{entry}/stat").read_text()
            parent = int(stat[stat.rindex(")") + 2 :].split()[1])
            if os.getpgid(parent) in groups:
                found.append(int(entry))
        except (OSError, ProcessLookupError, ValueError):
            continue
    return found


@pytest.fixture(scope="module")
def source_and_reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray")
    source = write_folder(root / "photos", 60, size=(384, 288))
    reference = root / "local"
    cfg = BuildConfig(task="rotation", source=str(source), out=str(reference), per_image=2, shard_rows=10, test_fraction=0.2)
    build(cfg, workers=2, progress_bar=False)
    return source, output_bytes(reference)


def test_two_node_ray_build_with_a_killed_worker_is_byte_identical_to_a_local_build(tmp_path, two_nodes, source_and_reference):
    source, reference = source_and_reference
    assert len([n for n in reference if n.endswith(".parquet")]) >= 10
    out = tmp_path / "ray"
    process = ray_build(source, out, two_nodes)
    killed, deadline = None, time.monotonic() + 90
    while killed is None and process.poll() is None and time.monotonic() < deadline:
        workers = busy_workers(two_nodes["groups"]) if saved_shards(out) >= 1 else []
        if workers:
            assert not (out / "manifest.json").exists()
            os.kill(workers[0], signal.SIGKILL)
            killed = workers[0]
        time.sleep(0.01)
    finish(process)
    assert killed is not None, "no Ray worker was caught mid-build"
    assert output_bytes(out) == reference


def test_ray_build_killed_then_rerun_keeps_its_shards_and_matches_a_local_build(tmp_path, two_nodes, source_and_reference):
    source, reference = source_and_reference
    out = tmp_path / "resumed"
    process = ray_build(source, out, two_nodes)
    deadline = time.monotonic() + 90
    while saved_shards(out) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.kill()  # the driver dies: no manifest, a .progress.json and the shards it finished
    process.wait()
    assert not (out / "manifest.json").exists()
    progress = json.loads((out / ".progress.json").read_text())
    kept = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("*.parquet")
            if int(p.stem.split("-")[1]) < progress["splits"][p.stem.split("-")[0]]["shards"]}  # fmt: skip
    assert len(kept) >= 3
    finish(ray_build(source, out, two_nodes))
    assert output_bytes(out) == reference
    assert {name: (out / name).stat().st_ino for name in kept} == {name: ino for name, (ino, _) in kept.items()}
    assert all((out / name).stat().st_mtime_ns == mtime for name, (_, mtime) in kept.items())  # only missing shards rebuilt


def test_ray_engine_without_ray_is_one_clear_line(tmp_path, photo_folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    cfg = BuildConfig(task="rotation", source=str(photo_folder), out=str(tmp_path / "out"))
    with pytest.raises(UserError, match=r"--engine ray needs Ray: pip install"):
        build(cfg, engine="ray", progress_bar=False)
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_an_address_nothing_answers_on_is_one_line_before_anything_is_written(tmp_path, photo_folder):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    cfg = BuildConfig(task="rotation", source=str(photo_folder), out=str(tmp_path / "out"))
    with pytest.raises(UserError, match=rf"cannot reach the Ray cluster at 127.0.0.1:{port}"):
        build(cfg, engine="ray", ray_address=f"127.0.0.1:{port}", progress_bar=False)
    assert not (tmp_path / "out").exists()
