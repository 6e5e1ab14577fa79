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
from ssl4rl.sources.common import RawImage, from_base64

REFERENCE_MAX_CHARS = 64


class TsvSource:
    kind = "tsv"

    def __init__(self, path: Path, image_column: str | None = None):
        self.path = Path(path)
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
        return open(self.path, newline="", encoding="utf-8")

    def __iter__(self) -> Iterator[RawImage]:
        with self._open() as handle:
            rows = csv.reader(handle, delimiter="\t")
            next(rows)
            for row in rows:
                if len(row) <= max(self._index_pos, self._image_pos):
                    continue
                index, value = row[self._index_pos], row[self._image_pos].strip()
                if not value:
                    yield RawImage(index, None, "missing-image")
                elif len(value) <= REFERENCE_MAX_CHARS:
                    yield RawImage(index, None, "image-reference")
                elif value.startswith("["):
                    try:
                        values = ast.literal_eval(value)
                    except (ValueError, SyntaxError):
                        yield RawImage(index, None, "unreadable")
                        continue
                    for k, item in enumerate(values):
                        yield from_base64(f"{index}/{k}", item)
                else:
                    yield from_base64(index, value)
