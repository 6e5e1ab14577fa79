"""Parquet shards written as they fill, atomically: rows go to a hidden temporary file that is
renamed (or moved, on a pyarrow filesystem: ssl4rl.out_folder) to `<split>-<NNNNN>.parquet`
only when complete, so a folder never holds a half-written shard under its final name."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ssl4rl.schema import SCHEMA, shard_name

ROW_GROUP_ROWS = 32  # rows buffered in memory before they reach the file


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def json_text(payload: dict) -> str:
    """How a build's JSON files are written (the same bytes on every filesystem)."""
    return json.dumps(payload, indent=2, sort_keys=True) + "\n"


def atomic_write_json(path: Path, payload: dict) -> None:
    atomic_write_text(path, json_text(payload))


class ShardWriter:
    """Appends rows of one split; `add` returns True when it has just completed a shard."""

    def __init__(self, out, split: str, shard_rows: int, first_shard: int = 0):
        """`out`: the build's folder (ssl4rl.out_folder: local, or on a pyarrow filesystem)."""
        self.out, self.split, self.shard_rows = out, split, shard_rows
        self.shard = first_shard
        self.files: list[str] = [shard_name(split, n) for n in range(first_shard)]
        self._buffer: list[dict] = []
        self._rows_in_shard = 0
        self._writer: pq.ParquetWriter | None = None

    @property
    def _tmp(self) -> str:
        return f".{shard_name(self.split, self.shard)}.tmp"

    def _flush(self) -> None:
        if not self._buffer:
            return
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.out.target(self._tmp), SCHEMA, compression="snappy", filesystem=self.out.filesystem)
        self._writer.write_table(pa.Table.from_pylist(self._buffer, schema=SCHEMA), row_group_size=ROW_GROUP_ROWS)
        self._buffer.clear()

    def add(self, rows: list[dict]) -> bool:
        """Add the rows of one source image (never split across shards, so resume is exact)."""
        for row in rows:
            self._buffer.append(row)
            self._rows_in_shard += 1
            if len(self._buffer) >= ROW_GROUP_ROWS:
                self._flush()
        if self._rows_in_shard >= self.shard_rows:
            self.finish_shard()
            return True
        return False

    def finish_shard(self) -> None:
        """Close the current shard (if it has rows) and give it its final name."""
        self._flush()
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        final = shard_name(self.split, self.shard)
        self.out.replace(self._tmp, final)
        self.files.append(final)
        self.shard += 1
        self._rows_in_shard = 0

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.out.unlink(self._tmp)
