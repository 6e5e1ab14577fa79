"""Parquet shards written as they fill, atomically: rows go to a hidden temporary file that is
renamed (or moved, on a pyarrow filesystem: ssl4rl.out_folder) to `<split>-<NNNNN>.parquet`
only when complete, so a folder never holds a half-written shard under its final name.

Row groups are written by a thread of their own, one at a time and in order, while the caller
gathers the next one: writing (compression, the copy into the file) releases the GIL, so a
build's driver takes more rows a second when it has a spare core (bench/driver_ceiling.py).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import Future, ThreadPoolExecutor
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
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"shards-{split}")
        self._writing: Future | None = None  # the row group being written, at most one

    @property
    def _tmp(self) -> str:
        return f".{shard_name(self.split, self.shard)}.tmp"

    def _write(self, rows: list[dict]) -> None:
        try:
            if self._writer is None:
                self._writer = pq.ParquetWriter(self.out.target(self._tmp), SCHEMA, compression="snappy", filesystem=self.out.filesystem)
            self._writer.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), row_group_size=ROW_GROUP_ROWS)
        except OSError as error:  # pyarrow's local errors (a full disk) name no file: name the shard, for the one-line message
            if error.filename or error.errno is None:
                raise
            raise OSError(error.errno, error.strerror or str(error).strip().splitlines()[0], self.out.target(self._tmp)) from error

    def _wait(self) -> None:
        """Until the row group being written is in the file; its error (disk full) is raised here.
        Interrupted meanwhile (Ctrl-C), the write is still running: `abort` waits it out."""
        writing = self._writing
        if writing is not None:
            try:
                writing.result()
            finally:
                if writing.done():
                    self._writing = None

    def _flush(self) -> None:
        if not self._buffer:
            return
        self._wait()
        self._writing = self._thread.submit(self._write, self._buffer)
        self._buffer = []

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
        self._wait()
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        final = shard_name(self.split, self.shard)
        self.out.replace(self._tmp, final)
        self.files.append(final)
        self.shard += 1
        self._rows_in_shard = 0

    def close(self) -> None:
        """After the last shard (or an abort): ends the writing thread."""
        self._thread.shutdown(wait=True)

    def abort(self) -> None:
        """Drop the unfinished shard, once the thread is done with its file: closing a parquet
        writer that is still writing would crash the process."""
        self._thread.shutdown(wait=True)  # every write submitted is over (its error is not the one stopping the build)
        self._writing = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.out.unlink(self._tmp)
