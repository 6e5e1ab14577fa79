"""The one place that knows the column names: verl's RLHF row, so verl trains on our parquet
with no preprocessing.

    data_source   "ssl4rl/<task>"  (one per task, so verl logs accuracy per task)
    prompt        [{"role": "user", "content": "... <image> ... <image> ..."}]
    images        [{"bytes": b"...", "path": None}, ...]   (datasets.Image storage)
    ability       "visual-puzzle"
    reward_model  {"style": "rule", "ground_truth": "<answer>"}
    extra_info    {task, difficulty, source, source_id, source_hash, split, index, answer, params}

The reward never sees images: `extra_info.params` (JSON) carries what a verifier needs.
`extra_info.source_hash` is the content hash of the source image, so an evaluation can tell
which benchmark questions were seen in training (`ssl4rl eval --heldout`).

A build folder holds `<split>-NNNNN.parquet` shards (train, test), `manifest.json` once the build
finished and `.progress.json` while it has not: SPLITS, MANIFEST, PROGRESS, shard_name and
split_files say so for every module that reads or writes one.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pyarrow as pa

DATA_SOURCE_PREFIX = "ssl4rl/"
ABILITY = "visual-puzzle"
GRAPH_ABILITY = "graph-puzzle"  # graph tasks: text-only rows, `images` empty
DEFAULT_DIFFICULTY = "default"  # a task's own options, no level preset

SCHEMA = pa.schema(
    [
        ("data_source", pa.string()),
        ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        ("images", pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
        (
            "extra_info",
            pa.struct(
                [
                    ("task", pa.string()),
                    ("difficulty", pa.string()),
                    ("source", pa.string()),
                    ("source_id", pa.string()),
                    ("source_hash", pa.string()),
                    ("split", pa.string()),
                    ("index", pa.int64()),
                    ("answer", pa.string()),
                    ("params", pa.string()),
                ]
            ),
        ),
    ]
)


def make_row(
    *, task: str, prompt: str, images: list[bytes], answer: str, source: str, source_id: str, split: str, index: int, params: dict,
    difficulty: str = DEFAULT_DIFFICULTY, source_hash: str = "", ability: str = ABILITY,
) -> dict:
    return {
        "data_source": DATA_SOURCE_PREFIX + task,
        "prompt": [{"role": "user", "content": prompt}],
        "images": [{"bytes": data, "path": None} for data in images],
        "ability": ability,
        "reward_model": {"style": "rule", "ground_truth": answer},
        "extra_info": {
            "task": task,
            "difficulty": difficulty,
            "source": source,
            "source_id": source_id,
            "source_hash": source_hash,
            "split": split,
            "index": index,
            "answer": answer,
            "params": json.dumps(params, sort_keys=True),
        },
    }


def difficulty_of(extra_info: dict) -> str:
    """The row's level; rows of older builds may have none."""
    return extra_info.get("difficulty") or DEFAULT_DIFFICULTY


def content_key(data: bytes) -> bytes:
    """A source item's content hash: duplicates, the split and `extra_info.source_hash` (hex)."""
    return hashlib.blake2b(data, digest_size=16).digest()


def split_of(key: bytes, test_fraction: float) -> str:
    """By content, independent of seed and task: the same image is in the same split everywhere."""
    return "test" if int.from_bytes(key[:8], "little") / 2**64 < test_fraction else "train"


# ---------------------------------------------------------------- the build folder
SPLITS = ("train", "test")
MANIFEST = "manifest.json"
PROGRESS = ".progress.json"  # an unfinished build's resume state
_SHARD = re.compile(r"^(?P<split>[a-z]+)-(?P<number>[0-9]{5})\.parquet$")


def shard_name(split: str, number: int) -> str:
    return f"{split}-{number:05d}.parquet"


def shard_number(name: str) -> int | None:
    """The number in a shard's file name; None for any other name."""
    match = _SHARD.match(name)
    return int(match["number"]) if match else None


def split_files(folder: str | Path, *splits: str) -> list[Path]:
    """The shards of the splits (default: train, then test), each split's in order."""
    return [path for split in splits or SPLITS for path in sorted(Path(folder).glob(f"{split}-*.parquet"))]


PUZZLE_COLUMNS = {"data_source", "prompt", "images", "reward_model", "extra_info"}


def is_puzzle_build(path: str | Path) -> bool:
    """A folder written by `ssl4rl build` (its manifest), or parquet with our row columns."""
    import pyarrow.parquet as pq

    path = Path(path)
    if path.is_dir() and (path / MANIFEST).is_file():
        return True
    files = [path] if path.is_file() and path.suffix == ".parquet" else sorted(path.glob("*.parquet"))[:1] if path.is_dir() else []
    try:
        return bool(files) and PUZZLE_COLUMNS <= set(pq.read_schema(files[0]).names)
    except Exception:  # noqa: BLE001 - unreadable parquet is the source reader's error to report
        return False
