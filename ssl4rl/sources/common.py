"""What every source reader yields: a stable id and the image's encoded bytes."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm", ".pgm"}


@dataclass
class RawImage:
    source_id: str  # stable across runs: file-relative path, TSV index, parquet file + row, ...
    data: bytes | None  # encoded image; None when `skip` says why there is none
    skip: str | None = None


def from_base64(source_id: str, text: str) -> RawImage:
    try:
        return RawImage(source_id, base64.b64decode(text, validate=False))
    except (binascii.Error, ValueError):
        return RawImage(source_id, None, "unreadable")
