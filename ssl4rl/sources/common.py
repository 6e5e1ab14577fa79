"""What every source reader yields: a stable id and the image's encoded bytes, or why there is none."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path

from ssl4rl.schema import MANIFEST, PROGRESS

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm", ".pgm"}
MAX_FILE_BYTES = 256 * 2**20  # larger files are skipped unread: a 50-megapixel PNG is at most ~150 MB
BUILD_MARKERS = (MANIFEST, PROGRESS)  # what `ssl4rl build` leaves in its output folder


def as_path(path):
    """A local Path, or a file on a pyarrow filesystem (ssl4rl.sources.remote) as it is."""
    from ssl4rl.sources.remote import RemoteFile

    return path if isinstance(path, RemoteFile) else Path(path)


def is_build_folder(folder: Path) -> bool:
    """A finished or interrupted `ssl4rl build` output: its puzzles must never become sources."""
    return any((Path(folder) / marker).is_file() for marker in BUILD_MARKERS)


def build_folders(root: Path) -> list[Path]:
    """Every build folder at or under `root` (at any depth a reader could walk)."""
    root = Path(root)
    found = {marker.parent for name in BUILD_MARKERS for marker in root.rglob(name) if marker.is_file()}
    return sorted(found)


@dataclass
class RawItem:
    """One item of a source as read, before any decoding: an encoded image, or a graph node's payload."""

    source_id: str  # stable across runs: file-relative path, TSV index, parquet file + row, node id, ...
    data: bytes | None  # the item's bytes (an encoded image); None when `skip` says why there is none
    skip: str | None = None


def from_base64(source_id: str, text: object, max_bytes: int = MAX_FILE_BYTES) -> RawItem:
    """Decoded base64 text; anything that is not text (a number in a list of images) is unreadable."""
    if not isinstance(text, (str, bytes)):
        return RawItem(source_id, None, "unreadable")
    if len(text) // 4 * 3 > max_bytes:
        return RawItem(source_id, None, "too-large")
    try:
        return RawItem(source_id, base64.b64decode(text, validate=False))
    except (binascii.Error, ValueError):
        return RawItem(source_id, None, "unreadable")


def from_bytes(source_id: str, data: bytes, max_bytes: int = MAX_FILE_BYTES) -> RawItem:
    return RawItem(source_id, None, "too-large") if len(data) > max_bytes else RawItem(source_id, bytes(data))


def read_file(source_id: str, path: Path, max_bytes: int = MAX_FILE_BYTES) -> RawItem:
    """The file's bytes; a file over `max_bytes` is skipped from its size, before it is read."""
    try:
        if path.stat().st_size > max_bytes:
            return RawItem(source_id, None, "too-large")
        return RawItem(source_id, path.read_bytes())
    except OSError:
        return RawItem(source_id, None, "unreadable")
