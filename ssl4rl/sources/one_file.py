"""One file, or the files a glob matched, as an image source chosen by suffix: local paths or
files behind a URI (ssl4rl.sources.remote.RemoteFile), which both readers give the same way."""

from __future__ import annotations

from ssl4rl.errors import UserError
from ssl4rl.sources.common import IMAGE_EXTENSIONS
from ssl4rl.sources.folder import FolderSource
from ssl4rl.sources.hf import HFSource
from ssl4rl.sources.tsv import TsvSource
from ssl4rl.sources.webdataset import TarSource


def open_file(file, label: str, image_columns, max_bytes: int):
    """`file` has `.suffix` and `.parent` (a Path or a RemoteFile); `label` names it in errors."""
    suffix = file.suffix.lower()
    if suffix == ".tsv":
        return TsvSource(file, image_columns[0] if image_columns else None, max_bytes)
    if suffix in (".parquet", ".arrow"):
        return HFSource(file, image_columns, max_bytes)
    if suffix in IMAGE_EXTENSIONS:
        return FolderSource(file.parent, [file], max_bytes)
    if suffix == ".tar":
        return TarSource(file.parent, [file], max_bytes)
    raise UserError(f"{label}: not a .tsv, .parquet, .arrow or .tar file or an image folder")


def open_matched(root, files: list, label: str, image_columns, max_bytes: int):
    """The files a glob matched under `root`: .tar shards, or .parquet/.arrow files, not a mix."""
    suffixes = {f.suffix.lower() for f in files}
    if suffixes == {".tar"}:
        return TarSource(root, files, max_bytes)
    if suffixes <= {".parquet", ".arrow"}:
        return HFSource(root, image_columns, max_bytes, files=files)
    raise UserError(f"{label}: matches {', '.join(sorted(suffixes))} files; a glob source is .tar shards or .parquet/.arrow files")
