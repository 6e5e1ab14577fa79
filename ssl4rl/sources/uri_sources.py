"""Sources named by a pyarrow.fs URI (`s3://bucket/dir`, `s3://bucket/dir/*.tar`, `file:///dir`).

The URI is listed once and read as the same path would be read locally: the same detection (a
dataset's parquet/Arrow files, one TSV, an image tree, tar shards), the same order and the same
source ids (paths relative to the folder), so a build from `s3://...` makes the same shards as
a build from a local copy. In a URI, `*`, `**` and `[...]` are wildcards; `?` starts the URI's
query (pyarrow's options such as `endpoint_override`), as URIs define it.
"""

from __future__ import annotations

import fnmatch
from pathlib import PurePosixPath

from ssl4rl.errors import UserError
from ssl4rl.schema import PUZZLE_COLUMNS
from ssl4rl.sources.common import BUILD_MARKERS, IMAGE_EXTENSIONS, MAX_FILE_BYTES
from ssl4rl.sources.folder import FolderSource
from ssl4rl.sources.hf import HFSource
from ssl4rl.sources.one_file import open_file, open_matched
from ssl4rl.sources.remote import RemoteFile
from ssl4rl.sources.tsv import TsvSource
from ssl4rl.sources.webdataset import TarSource
from ssl4rl.uri import filesystem, first_line, scheme_of, shown

WILDCARDS = "*["


def open_uri(source: str, image_columns: list[str] | None = None, max_bytes: int = MAX_FILE_BYTES):
    """The reader for a URI: a glob of .tar or .parquet files, one file, or a folder."""
    query_at = source.find("?") if "?" in source else len(source)
    wildcard = min((i for i in (source.find(c, 0, query_at) for c in WILDCARDS) if i >= 0), default=-1)
    if wildcard >= 0:
        return _open_glob(source, wildcard, query_at, image_columns, max_bytes)
    fs, path = filesystem(source)
    import pyarrow.fs as pafs

    info = _ask(source, lambda: fs.get_file_info(path))
    if info.type == pafs.FileType.NotFound:
        raise UserError(f"{shown(source)}: no such file or folder")
    if info.type == pafs.FileType.File:
        return _open_file(source, RemoteFile(fs, path, scheme_of(source), info.size), image_columns, max_bytes)
    return _open_folder(source, RemoteFile(fs, path, scheme_of(source)), _listing(source, fs, path, recursive=True), image_columns, max_bytes)


def _ask(source: str, call):
    """A filesystem call; its failure (no credentials, no bucket, no network) is one line."""
    try:
        return call()
    except (OSError, ValueError) as error:
        raise UserError(f"{shown(source)}: cannot read ({first_line(error)})") from None


def _listing(source: str, fs, path: str, recursive: bool) -> dict[PurePosixPath, int]:
    """Every file under `path`: its path relative to `path`, and its size."""
    import pyarrow.fs as pafs

    infos = _ask(source, lambda: fs.get_file_info(pafs.FileSelector(path, allow_not_found=True, recursive=recursive)))
    root = PurePosixPath(path)
    return {PurePosixPath(i.path).relative_to(root): i.size for i in infos if i.type == pafs.FileType.File}


def _open_file(source: str, file: RemoteFile, image_columns, max_bytes: int):
    if file.suffix.lower() == ".parquet" and _is_puzzle_parquet(file):
        raise UserError(f"{shown(source)} is an ssl4rl puzzle build; give the images it was built from as --source")
    return open_file(file, shown(source), image_columns, max_bytes)


def _is_puzzle_parquet(file: RemoteFile) -> bool:
    import pyarrow.parquet as pq

    try:
        return PUZZLE_COLUMNS <= set(pq.read_schema(file.arrow_file()).names)
    except Exception:  # noqa: BLE001 - unreadable parquet is the reader's error to report
        return False


def _builds(files: dict[PurePosixPath, int]) -> list[PurePosixPath]:
    """Folders (relative) holding a build's manifest or progress file."""
    return sorted({rel.parent for rel in files if rel.name in BUILD_MARKERS})


def _open_folder(source: str, root: RemoteFile, files: dict[PurePosixPath, int], image_columns, max_bytes: int):
    """As `open_path` detects a local folder (ssl4rl.sources.open_path), from one listing."""
    at = lambda rel: RemoteFile(root.fs, root.path / rel, root.scheme, files[rel])  # noqa: E731
    builds = _builds(files)
    top_parquet = sorted(rel for rel in files if len(rel.parts) == 1 and rel.suffix == ".parquet")
    if PurePosixPath(".") in builds or (top_parquet and _is_puzzle_parquet(at(top_parquet[0]))):
        raise UserError(f"{shown(source)} is an ssl4rl puzzle build; give the images it was built from as --source")
    in_build = lambda rel: any(parent in builds for parent in rel.parents)  # noqa: E731
    parquet = [rel for rel in files if rel.suffix == ".parquet"]
    arrow = [rel for rel in files if rel.suffix == ".arrow" and not rel.name.startswith("cache-")]
    dataset = sorted(rel for rel in (parquet or arrow) if not in_build(rel))
    if dataset and builds:
        raise UserError(
            f"{shown(source)}: holds the puzzle build {builds[0].as_posix()}/ beside its dataset files; "
            "a build is never a source: move the build out of the source folder"
        )
    tsv_files = sorted(rel for rel in files if len(rel.parts) == 1 and rel.suffix == ".tsv")
    if len(tsv_files) == 1 and not dataset:
        return TsvSource(at(tsv_files[0]), image_columns[0] if image_columns else None, max_bytes)
    if dataset:
        return HFSource(root, image_columns, max_bytes, files=[at(rel) for rel in dataset])
    hidden = lambda rel: any(part.startswith(".") for part in rel.parts)  # noqa: E731
    images = sorted(rel for rel in files if rel.suffix.lower() in IMAGE_EXTENSIONS and not hidden(rel) and not in_build(rel))
    if images:  # builds are not read, and counted as skipped (as a local folder's walk does)
        shown_builds = [b for b in builds if not hidden(b) and not any(parent in builds for parent in b.parents)]
        return FolderSource(root, [at(rel) for rel in images], max_bytes, skipped=[(f"{b.as_posix()}/", "puzzle-build") for b in shown_builds])
    tars = sorted(rel for rel in files if len(rel.parts) == 1 and rel.suffix == ".tar")
    if tars:
        return TarSource(root, [at(rel) for rel in tars], max_bytes)
    if builds:
        raise UserError(f"{shown(source)}: holds only puzzle builds ({builds[0].as_posix()}/), no source images")
    raise UserError(f"{shown(source)}: holds no .tsv, .parquet, .arrow, .tar or image files")


def _open_glob(source: str, wildcard: int, query_at: int, image_columns, max_bytes: int):
    """`s3://bucket/dir/*.tar` or `.../*.parquet`, in sorted order, ids relative to the folder
    before the first wildcard (as a local glob source)."""
    cut = source.rfind("/", 0, wildcard)
    if cut <= source.find("://") + 2:
        raise UserError(f"{shown(source)}: a wildcard in the bucket or host name is not supported; put it in the path")
    root_uri, pattern = source[:cut] + source[query_at:], source[cut + 1 : query_at]
    fs, path = filesystem(root_uri)
    root = RemoteFile(fs, path, scheme_of(source))
    parts = PurePosixPath(pattern).parts
    listing = _listing(source, fs, path, recursive=len(parts) > 1)
    matched = sorted(rel for rel in listing if _matches(rel.parts, parts))
    if not matched:
        raise UserError(f"{shown(source)}: no files match")
    builds = _builds(listing)
    hit = sorted({rel.parent for rel in matched} & set(builds))
    if hit:
        raise UserError(f"{shown(source)}: matches files of the puzzle build {root / hit[0]}; a build is never a source")
    files = [RemoteFile(fs, root.path / rel, root.scheme, listing[rel]) for rel in matched]
    return open_matched(root, files, shown(source), image_columns, max_bytes)


def _matches(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Python's glob.glob(recursive=True) on path parts: `**` is any number of folders, and a
    wildcard never matches a name that starts with a dot.

    >>> _matches(("a", "b.tar"), ("**", "*.tar")), _matches((".x.tar",), ("*.tar",)), _matches(("b.tar",), ("a", "*.tar"))
    (True, False, False)
    """
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return _matches(parts, rest) or (bool(parts) and not parts[0].startswith(".") and _matches(parts[1:], pattern))
    if not parts or (parts[0].startswith(".") and not head.startswith(".")):
        return False
    return fnmatch.fnmatchcase(parts[0], head) and _matches(parts[1:], rest)
