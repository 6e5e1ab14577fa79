"""WebDataset tar shards as a source: streamed samples, bad members counted, a damaged header one line."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import textured_image
from ssl4rl.build import BuildConfig, build
from ssl4rl.errors import UserError
from ssl4rl.sources import open_source


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    textured_image(seed, 96 + seed % 5 * 8, 80).save(buffer, "PNG")
    return buffer.getvalue()


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def shard(path: Path, first: int, count: int) -> Path:
    members = []
    for i in range(first, first + count):
        members += [(f"{i:06d}.png", png(i)), (f"{i:06d}.json", json.dumps({"caption": f"image {i}"}).encode()), (f"{i:06d}.txt", b"a caption")]
    return write_tar(path, members)


def test_tar_shards_glob_yields_every_image_in_order_and_builds_like_a_folder(tmp_path):
    shard(tmp_path / "tars" / "shard-000.tar", 0, 6)
    shard(tmp_path / "tars" / "shard-001.tar", 6, 6)
    folder = tmp_path / "folder"
    folder.mkdir()
    for i in range(12):
        (folder / f"{i:06d}.png").write_bytes(png(i))
    reader = open_source(str(tmp_path / "tars" / "*.tar"))
    ids = [raw.source_id for raw in reader]
    assert ids == [f"shard-{i // 6:03d}.tar:{i:06d}" for i in range(12)]
    assert [raw.data for raw in reader] == [png(i) for i in range(12)]

    from_tars = build(BuildConfig(task="rotation", source=str(tmp_path / "tars" / "*.tar"), out=str(tmp_path / "a"), test_fraction=0.3), progress_bar=False)
    from_folder = build(BuildConfig(task="rotation", source=str(folder), out=str(tmp_path / "b"), test_fraction=0.3), progress_bar=False)
    assert from_tars["rows"] == from_folder["rows"] and sum(from_tars["rows"].values()) == 12
    assert from_tars["skipped"] == from_folder["skipped"] == {}  # captions and metadata are not samples
    rows = pq.read_table(next((tmp_path / "a").glob("train-*.parquet"))).to_pylist()
    assert all(row["extra_info"]["source_id"].startswith("shard-00") for row in rows)


def test_bad_members_are_counted_as_skipped_with_their_reason(tmp_path):
    good = [(f"{i:06d}.png", png(i)) for i in range(4)]
    write_tar(tmp_path / "tars" / "a.tar", [*good[:2], ("000010.json", b"{}"), ("000011.jpg", b"not a jpeg at all"), *good[2:]])
    cut = shard(tmp_path / "tars" / "b.tar", 20, 4)
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) * 3 // 5])  # ends inside a member
    manifest = build(BuildConfig(task="rotation", source=str(tmp_path / "tars" / "*.tar"), out=str(tmp_path / "out"), test_fraction=0.0),
                     progress_bar=False)  # fmt: skip
    assert manifest["skipped"] == {"no-image": 1, "unreadable": 1, "truncated-tar": 1}
    assert manifest["rows"]["train"] == 4 + 2  # a.tar's 4 good images, and b.tar's samples before the cut


def test_a_corrupt_tar_header_is_one_clear_line(tmp_path):
    path = shard(tmp_path / "tars" / "a.tar", 0, 3)
    data = bytearray(path.read_bytes())
    second_header = 512 + -(-len(png(0)) // 512) * 512
    data[second_header : second_header + 100] = b"\xff" * 100  # the name field and more: a bad checksum
    path.write_bytes(bytes(data))
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "ssl4rl", "build", "rotation", "--source", str(tmp_path / "tars" / "*.tar"),
                             "--out", str(out), "--quiet"], capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"ssl4rl: error: {path}: corrupt tar header at byte {second_header}; the members after it cannot be read"]
    assert not list(out.glob("*.parquet")) and not (out / "manifest.json").exists()


def test_glob_errors_are_one_line(tmp_path):
    with pytest.raises(UserError, match="no files match"):
        open_source(str(tmp_path / "*.tar"))
    write_tar(tmp_path / "a.tar", [("0.png", png(0))])
    (tmp_path / "b.parquet").write_bytes(b"")
    with pytest.raises(UserError, match="a glob source is .tar shards or .parquet/.arrow files"):
        open_source(str(tmp_path / "*.*"))
    (tmp_path / "x.tar").write_bytes(b"\x01" * 2048)
    with pytest.raises(UserError, match="not a readable tar file"):
        list(open_source(str(tmp_path / "x.tar")))
