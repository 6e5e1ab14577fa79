"""Image sources: lazy readers that yield a stable source id and the image's bytes (graph sources:
ssl4rl.sources.graph_source, one item per node).

`open_source(name_or_path, data=...)` picks the reader: `samples` (bundled photos), `shapes`
(synthetic pictures a model trained from nothing can learn from), a preset
name from PRESETS (with `data` pointing at the user's downloaded files), or a path that is a
VLMEvalKit TSV file, a Hugging Face dataset folder (parquet or `save_to_disk`), an image folder,
WebDataset tar shards, or a glob of tar or parquet files (`DIR/*.tar`, `DIR/*.parquet`); any of
these as a pyarrow.fs URI (`s3://bucket/dir/*.tar`), read as a stream (ssl4rl.sources.uri_sources).
"""

from __future__ import annotations

import glob
from pathlib import Path

from ssl4rl.errors import UserError
from ssl4rl.sources.common import MAX_FILE_BYTES, RawItem, build_folders, is_build_folder
from ssl4rl.sources.folder import FolderSource
from ssl4rl.sources.graph_samples import BUNDLED
from ssl4rl.sources.hf import HFSource, data_files
from ssl4rl.sources.one_file import open_file, open_matched
from ssl4rl.sources.presets import PRESETS
from ssl4rl.sources.samples import SamplesSource
from ssl4rl.sources.shapes import ShapesSource, parse_count
from ssl4rl.sources.tsv import TsvSource
from ssl4rl.sources.uri_sources import open_uri
from ssl4rl.sources.webdataset import TarSource
from ssl4rl.uri import is_uri

__all__ = ["open_source", "open_path", "PRESETS", "RawItem", "TsvSource", "HFSource", "FolderSource", "SamplesSource", "ShapesSource", "TarSource"]


def open_path(path: Path, image_columns: list[str] | None = None, max_bytes: int = MAX_FILE_BYTES):
    """The reader for a path, detected from what it holds; files over `max_bytes` are skipped."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_file():
        return open_file(path, str(path), image_columns, max_bytes)
    # A build is never a source: the dataset reader walks every depth, so a build anywhere under
    # `path` is refused; parquet files inside builds do not make an image folder a dataset.
    builds = build_folders(path)
    if path.resolve() in {b.resolve() for b in builds}:
        raise UserError(f"{path} is an ssl4rl puzzle build; give the images it was built from as --source")
    dataset = [f for f in data_files(path) if not any(b in f.parents for b in builds)]
    if dataset and builds:
        raise UserError(
            f"{path}: holds the puzzle build {builds[0].relative_to(path).as_posix()}/ beside its dataset files; "
            "a build is never a source: move the build out of the source folder"
        )
    tsv_files = sorted(path.glob("*.tsv"))
    if len(tsv_files) == 1 and not dataset:
        return TsvSource(tsv_files[0], image_columns[0] if image_columns else None, max_bytes)
    if dataset:
        return HFSource(path, image_columns, max_bytes)
    folder = FolderSource(path, max_bytes=max_bytes)
    if folder.files:
        return folder
    tars = sorted(path.glob("*.tar"))
    if tars:
        return TarSource(path, tars, max_bytes)
    if builds:
        raise UserError(f"{path}: holds only puzzle builds ({builds[0].relative_to(path).as_posix()}/), no source images")
    raise UserError(f"{path}: holds no .tsv, .parquet, .arrow, .tar or image files")


def open_glob(pattern: str, image_columns: list[str] | None = None, max_bytes: int = MAX_FILE_BYTES):
    """`DIR/*.tar` (WebDataset shards) or `DIR/*.parquet` (a dataset's files), in sorted order;
    ids are relative to DIR, the part of the pattern before its first wildcard."""
    files = sorted(Path(f) for f in glob.glob(pattern, recursive=True) if Path(f).is_file())
    if not files:
        raise UserError(f"{pattern}: no files match")
    prefix = pattern[: min(pattern.index(c) for c in "*?[" if c in pattern)]
    root = Path(prefix) if prefix.endswith("/") else Path(prefix).parent
    builds = sorted({f.parent for f in files if is_build_folder(f.parent)})
    if builds:
        raise UserError(f"{pattern}: matches files of the puzzle build {builds[0]}; a build is never a source")
    return open_matched(root, files, pattern, image_columns, max_bytes)


def open_source(source: str, data: str | Path | None = None, image_columns: list[str] | None = None, max_bytes: int = MAX_FILE_BYTES):
    """Open `source` (samples | shapes[:N] | preset name | path) for reading; raises UserError on bad input."""
    if source == "samples":
        return SamplesSource()
    count = parse_count(source)
    if count is not None:
        return ShapesSource(count)
    if source in BUNDLED or (source in PRESETS and PRESETS[source].kind == "graph"):
        raise UserError(f"source '{source}' is a graph: build a graph task from it (masking, neighbour, link, kg-link)")
    if source in PRESETS:
        preset = PRESETS[source]
        if data is None:
            raise UserError(f"source '{source}' needs --data PATH: {preset.download}")
        columns = image_columns or (list(preset.image_columns) if preset.image_columns else None)
        reader = open_uri(str(data), columns, max_bytes) if is_uri(str(data)) else open_path(Path(data), columns, max_bytes)
        reader.preset = source
        return reader
    if data is not None:
        raise UserError(f"unknown source '{source}' (presets: samples, {', '.join(PRESETS)})")
    if is_uri(source):
        return open_uri(source, image_columns, max_bytes)
    if not Path(source).exists() and any(c in source for c in "*?["):
        return open_glob(source, image_columns, max_bytes)
    if not Path(source).exists():
        raise UserError(f"source '{source}' is neither a preset (samples, {', '.join(PRESETS)}) nor an existing path")
    return open_path(Path(source), image_columns, max_bytes)
