"""Bad input at the build layer: a resume over a changed source, an interrupted build, a second
build into the same folder and unusable output folders end in one line, never in a wrong
dataset or a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import build_interrupted_at, textured_image, write_folder
from ssl4rl import build as build_module
from ssl4rl.budget import TokenBudget
from ssl4rl.build import BuildConfig, build
from ssl4rl.cli import main

OPTIONS = dict(task="contrastive", per_image=2, shard_rows=6, test_fraction=0.2)


def output_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def config(source: Path, out: Path) -> BuildConfig:
    return BuildConfig(source=str(source), out=str(out), **OPTIONS)


def interrupted_build(source: Path, out: Path, after_jobs: int = 15) -> None:
    """Run the build until `after_jobs` images were made, then stop it as Ctrl-C would."""
    with build_interrupted_at(after_jobs):
        build(config(source, out), progress_bar=False)
    assert list(out.glob("train-*.parquet")) and not (out / "manifest.json").exists()


# ---------------------------------------------------------------- resume over a changed source
def _add_first(folder: Path) -> None:
    textured_image(999, 160, 128).save(folder / "img000a.png")  # sorts right after img000.png


def _delete_early(folder: Path) -> None:
    (folder / "img002.png").unlink()


def _edit_early(folder: Path) -> None:
    textured_image(555, 160, 128).save(folder / "img001.png")


def _rename_early(folder: Path) -> None:
    (folder / "img003.png").rename(folder / "img003b.png")


@pytest.mark.parametrize("change", [_add_first, _delete_early, _edit_early, _rename_early])
def test_resume_refuses_when_the_consumed_prefix_changed(tmp_path, capsys, change):
    source, out = write_folder(tmp_path / "photos", 24), tmp_path / "out"
    interrupted_build(source, out)
    before = output_bytes(out)
    change(source)
    code = main(["build", "contrastive", "--source", str(source), "--out", str(out), "--quiet", "--workers", "1",
                 "--per-image", "2", "--shard-rows", "6", "--test-fraction", "0.2"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("ssl4rl: error:") and "--overwrite" in err
    assert output_bytes(out) == before  # nothing touched


def test_resume_over_an_unchanged_source_or_one_changed_after_the_prefix_is_exact(tmp_path):
    source, out = write_folder(tmp_path / "photos", 24), tmp_path / "out"
    interrupted_build(source, out)
    progress = json.loads((out / ".progress.json").read_text())
    consumed = max(s["source"]["images"] for s in progress["splits"].values() if s.get("source"))
    assert 0 < consumed < 23
    textured_image(777, 160, 128).save(source / "img023.png")  # the last image: not consumed yet
    build(config(source, out), progress_bar=False)
    fresh = tmp_path / "fresh"
    build(config(source, fresh), progress_bar=False)
    assert output_bytes(out) == output_bytes(fresh)


# ---------------------------------------------------------------- Ctrl-C with worker processes
def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ssl4rl", "build", "rotation", *args]


@pytest.mark.parametrize("workers", [1, 3])
def test_ctrl_c_exits_130_with_one_line_within_seconds_and_the_rerun_resumes_exactly(tmp_path, workers):
    source = write_folder(tmp_path / "photos", 60, size=(200, 160))
    args = ["--source", str(source), "--quiet", "--workers", str(workers), "--per-image", "6", "--shard-rows", "12"]
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    process = subprocess.Popen(_cli(*args, "--out", str(out)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while not list(out.glob("train-*.parquet")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "the build finished before it could be interrupted"
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    sent = time.monotonic()
    try:
        _, err = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("the build did not exit within 15 s of Ctrl-C")
    assert time.monotonic() - sent < 10
    assert process.returncode == 130
    assert err.count("\n") == 1 and err.startswith("ssl4rl: interrupted"), err
    assert not (out / "manifest.json").exists()
    subprocess.run(_cli(*args, "--out", str(out)), check=True, capture_output=True)
    subprocess.run(_cli(*args, "--out", str(fresh)), check=True, capture_output=True)
    assert output_bytes(out) == output_bytes(fresh)


# ---------------------------------------------------------------- output folders and the lock
def _build_into(out: Path, source: Path, capsys, *extra: str) -> tuple[int, str]:
    code = main(["build", "rotation", "--source", str(source), "--out", str(out), "--quiet", "--workers", "1", *extra])
    return code, capsys.readouterr().err


def _one_line(code: int, err: str) -> bool:
    return code == 2 and err.count("\n") == 1 and err.startswith("ssl4rl: error:")


def test_out_below_a_file_is_one_line(tmp_path, capsys):
    source = write_folder(tmp_path / "photos", 4)
    (tmp_path / "file").write_text("x")
    assert _one_line(*_build_into(tmp_path / "file" / "out", source, capsys))
    assert _one_line(*_build_into(tmp_path / "file", source, capsys))


def test_a_folder_that_cannot_be_written_is_one_line(tmp_path, capsys, monkeypatch):
    source, out = write_folder(tmp_path / "photos", 4), tmp_path / "out"
    out.mkdir()
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):  # root ignores permissions: deny as a read-only folder would
        if str(path).startswith(str(out)) and flags & (os.O_WRONLY | os.O_RDWR):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    code, err = _build_into(out, source, capsys)
    assert _one_line(code, err) and "Permission denied" in err
    assert list(out.iterdir()) == []


def test_a_full_disk_while_a_shard_is_written_is_one_line_and_leaves_only_whole_shards(tmp_path, capsys, monkeypatch):
    """Row groups are written on the shard writer's own thread: its error still stops the build in
    one line, and only complete shards keep their final names."""
    import pyarrow.parquet as pq

    source, out = write_folder(tmp_path / "photos", 12), tmp_path / "out"
    real_write, calls = pq.ParquetWriter.write_table, []

    def fills_up(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")  # as pyarrow raises it: no file name
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", fills_up)
    code, err = _build_into(out, source, capsys, "--shard-rows", "2", "--test-fraction", "0")
    assert _one_line(code, err) and "No space left on device" in err and str(out) in err
    shards = sorted(out.glob("train-*.parquet"))
    assert len(shards) == 2 and not list(out.glob(".*.tmp"))  # the third shard's rows never got a name
    assert [pq.read_metadata(shard).num_rows for shard in shards] == [2, 2]


@pytest.mark.parametrize("name", ["manifest.json", ".progress.json"])
def test_a_corrupt_manifest_or_progress_file_is_one_line_and_overwrite_recovers(tmp_path, capsys, name):
    source, out = write_folder(tmp_path / "photos", 4), tmp_path / "out"
    out.mkdir()
    (out / name).write_text('{"config": {"task": "rot')
    code, err = _build_into(out, source, capsys)
    assert _one_line(code, err) and "--overwrite" in err
    code, err = _build_into(out, source, capsys, "--overwrite")
    assert code == 0, err
    assert json.loads((out / "manifest.json").read_text())["task"] == "rotation"


def test_overwrite_does_not_pretend_to_replace_foreign_parquet_files(tmp_path, capsys):
    source, out = write_folder(tmp_path / "photos", 4), tmp_path / "out"
    out.mkdir()
    (out / "mydata.parquet").write_bytes(b"PAR1")
    for extra in ((), ("--overwrite",)):
        code, err = _build_into(out, source, capsys, *extra)
        assert _one_line(code, err) and "mydata.parquet" in err and "pass --overwrite" not in err
    assert (out / "mydata.parquet").read_bytes() == b"PAR1"


def test_a_second_build_into_a_locked_folder_is_one_line_and_a_stale_lock_is_taken_over(tmp_path, capsys):
    source, out = write_folder(tmp_path / "photos", 4), tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".lock").write_text(f"{holder.pid}\n")
        code, err = _build_into(out, source, capsys)
        assert _one_line(code, err) and str(holder.pid) in err
        assert not list(out.glob("*.parquet")) and (out / ".lock").read_text() == f"{holder.pid}\n"
    finally:
        holder.kill()
        holder.wait()
    code, err = _build_into(out, source, capsys)  # the holder is gone: its lock is stale
    assert code == 0, err
    assert (out / "manifest.json").exists() and not (out / ".lock").exists()


def test_the_lock_files_of_a_builder_killed_while_taking_the_lock_are_gone_after_the_next_build(tmp_path, capsys):
    source, out = write_folder(tmp_path / "photos", 4), tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs: the killed builder's
    (out / ".lock").write_text(f"{dead.pid}\n")
    (out / f".lock-{dead.pid}.new").write_text(f"{dead.pid}\n")
    taker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / f".lock-{taker.pid}.new").write_text(f"{taker.pid}\n")  # a live builder's draft, mid-take: kept
        code, err = _build_into(out, source, capsys)
        assert code == 0, err
        assert sorted(p.name for p in out.glob(".lock*")) == [f".lock-{taker.pid}.new"]
    finally:
        taker.kill()
        taker.wait()


def test_two_builds_started_together_never_crash_and_one_of_them_builds(tmp_path):
    source, out = write_folder(tmp_path / "photos", 30), tmp_path / "out"
    args = _cli("--source", str(source), "--out", str(out), "--quiet", "--workers", "1", "--per-image", "3")
    runs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(run.wait(timeout=120), run.stderr.read()) for run in runs]
    assert sorted(code for code, _ in results) in ([0, 0], [0, 2]), results
    for code, err in results:
        assert code == 0 or (err.count("\n") == 1 and "being built by process" in err), err
    reference = tmp_path / "reference"
    subprocess.run(_cli("--source", str(source), "--out", str(reference), "--quiet", "--per-image", "3"), check=True)
    assert output_bytes(out) == output_bytes(reference)


def big_batch(jobs: list) -> list[bytes]:
    """A worker result larger than a pipe's buffer: its write blocks until the main process reads."""
    return [bytes(1_000_000) for _ in jobs]


def test_stopping_the_worker_pool_early_never_hangs(monkeypatch):
    """CPython's Pool.terminate() deadlocks when a worker is still writing a large result (about
    1 stop in 15 here); a build that stops early (--limit reached, Ctrl-C) must not."""
    import threading

    monkeypatch.setattr(build_module, "_make_batch", big_batch)
    for attempt in range(20):
        results = build_module.ordered_map(iter(range(400)), 2, ([], {}, 0, "test", TokenBudget(), "image", {"image_format": "png", "max_pixels": 1}))
        for _ in range(1 + attempt % 5):
            assert len(next(results)) == 1_000_000
        time.sleep(attempt % 3 / 100)  # stop at different moments of the workers' writes
        closer = threading.Thread(target=results.close, daemon=True)
        started = time.monotonic()
        closer.start()
        closer.join(20)
        assert not closer.is_alive(), f"stopping the pool hung (attempt {attempt})"
        assert time.monotonic() - started < 15
