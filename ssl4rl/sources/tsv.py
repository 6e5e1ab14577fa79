"""VLMEvalKit TSV files (MMBench_DEV_EN.tsv, SEEDBench_IMG.tsv, MMStar.tsv, BLINK.tsv, ...).

Columns: `index` and a base64 `image`. An `image` of 64 characters or fewer is the index of
another row whose image it reuses (MMBench shares one image across questions): such rows add
no image and are counted as 'image-reference'. A list-valued image (a Python list literal, as
BLINK has) holds several images, read as `<index>/<k>`. Rows stream one at a time.
"""

from __future__ import annotations

import ast
import csv
import sys
from pathlib import Path
from typing import Iterator

from ssl4rl.errors import UserError
from ssl4rl.sources.common import MAX_FILE_BYTES, RawItem, as_path, from_base64

REFERENCE_MAX_CHARS = 64


class TsvSource:
    kind = "tsv"

    def __init__(self, path: Path, image_column: str | None = None, max_bytes: int = MAX_FILE_BYTES):
        self.path, self.max_bytes = as_path(path), max_bytes
        self.image_column = image_column or "image"
        with self._open() as handle:
            header = next(csv.reader(handle, delimiter="\t"), None)
        if not header:
            raise UserError(f"{self.path}: empty TSV file")
        missing = [c for c in ("index", self.image_column) if c not in header]
        if missing:
            raise UserError(f"{self.path}: no {' or '.join(map(repr, missing))} column (columns: {', '.join(header)})")
        self._index_pos, self._image_pos = header.index("index"), header.index(self.image_column)

    def _open(self):
        csv.field_size_limit(sys.maxsize)
        # utf-8-sig: a byte-order mark is not part of the first column's name. A stray non-UTF-8
        # byte (in a question, say) must not stop the reader: it becomes U+FFFD.
        return self.path.open(newline="", encoding="utf-8-sig", errors="replace")

    def __iter__(self) -> Iterator[RawItem]:
        with self._open() as handle:
            rows = csv.reader(handle, delimiter="\t")
            next(rows)
            for line, row in enumerate(rows, start=2):
                if len(row) <= max(self._index_pos, self._image_pos):
                    yield RawItem(row[self._index_pos] if len(row) > self._index_pos else f"line {line}", None, "short-row")
                    continue
                index, value = row[self._index_pos], row[self._image_pos].strip()
                if not value:
                    yield RawItem(index, None, "missing-image")
                elif len(value) <= REFERENCE_MAX_CHARS:
                    yield RawItem(index, None, "image-reference")
                elif value.startswith("["):
                    values = _literal_list(value)
                    if values is None:
                        yield RawItem(index, None, "unreadable")
                        continue
                    for k, item in enumerate(values):
                        yield from_base64(f"{index}/{k}", item, self.max_bytes)
                else:
                    yield from_base64(index, value, self.max_bytes)


def _literal_list(text: str) -> list | None:
    """A Python list literal of images, or None for anything else (deep nesting included)."""
    try:
        values = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return values if isinstance(values, list) else None
