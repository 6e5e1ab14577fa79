"""The compact duplicate check is exactly a set: same answers as Python's set, same skip counts
and bytes in a build."""

from __future__ import annotations

import random
import shutil

import pytest

from conftest import write_folder
from ssl4rl import build as build_module
from ssl4rl import keyset
from ssl4rl.build import BuildConfig, build
from ssl4rl.keyset import KeySet


class PlainSet(set):
    """The duplicate check as it was: a Python set of keys."""

    def add(self, key: bytes) -> bool:
        new = key not in self
        super().add(key)
        return new


@pytest.fixture
def tiny_merges(monkeypatch):
    """Merge after every few keys, so lookups cross the sorted arrays all the time."""
    monkeypatch.setattr(keyset, "MIN_RECENT", 3)
    monkeypatch.setattr(keyset, "RECENT_SHARE", 2)


def test_keyset_answers_as_a_set_does(tiny_merges):
    rng = random.Random(0)
    pool = [rng.randbytes(16) for _ in range(800)]
    pool += [key[:8] + rng.randbytes(8) for key in pool[:100]]  # the same first 8 bytes, another key
    pool += [rng.randbytes(15) + b"\0" for _ in range(50)] + [b"\0" * 16, b"\xff" * 16, b"\0" * 15 + b"\1"]
    ours, reference = KeySet(), set()
    for step in range(6000):
        key = rng.choice(pool)
        assert ours.add(key) == (key not in reference), step
        reference.add(key)
        if step % 500 == 0:
            assert [key in ours for key in pool] == [key in reference for key in pool]
    assert len(ours) == len(reference)
    with pytest.raises(ValueError):
        ours.add(b"short")


def test_builds_skip_the_same_duplicates_and_make_the_same_bytes(tmp_path, monkeypatch):
    photos = write_folder(tmp_path / "photos", 20)
    for i in range(0, 20, 3):  # 7 images twice, one of them three times
        shutil.copy(photos / f"img{i:03d}.png", photos / f"copy{i:03d}.png")
    shutil.copy(photos / "img000.png", photos / "again000.png")
    (photos / "broken.png").write_bytes(b"not an image")

    def run(name: str) -> tuple[dict, dict[str, bytes]]:
        out = tmp_path / name
        manifest = build(BuildConfig(task="rotation", source=str(photos), out=str(out), shard_rows=5, test_fraction=0.3), progress_bar=False)
        return manifest, {p.name: p.read_bytes() for p in sorted(out.iterdir())}

    with monkeypatch.context() as patch:
        patch.setattr(build_module, "KeySet", PlainSet)
        before, before_files = run("set")
    after, after_files = run("keyset")
    monkeypatch.setattr(keyset, "MIN_RECENT", 2)
    monkeypatch.setattr(keyset, "RECENT_SHARE", 1)
    merged, merged_files = run("merged")
    assert before["skipped"] == {"duplicate": 8, "unreadable": 1}
    assert after["skipped"] == merged["skipped"] == before["skipped"] and after["rows"] == before["rows"]
    assert after_files == merged_files == before_files
