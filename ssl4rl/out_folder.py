"""Where a build is written: a local folder, or a folder on a pyarrow filesystem (`--out s3://...`).

Both give the builder the same few operations on the names inside the folder, and both keep
its promise that a file appears under its final name only when it is complete: locally by a
rename, on a pyarrow filesystem by writing a hidden temporary file and moving it (on S3 a
server-side copy, whose result appears whole). Resume works the same on both. Not on an object
store: the build lock (it needs an atomic create-if-absent), so two builds started into one
`s3://` folder at once are not detected; a `file://` URI is the local disk and keeps the lock.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
from pathlib import Path

from ssl4rl.errors import UserError
from ssl4rl.lock import FolderLock
from ssl4rl.shards import atomic_write_text
from ssl4rl.uri import filesystem, first_line, is_local, is_uri, shown


def open_out(out: str) -> "LocalFolder | FsFolder":
    return FsFolder(out) if is_uri(out) else LocalFolder(out)


class LocalFolder:
    filesystem = None  # pyarrow writers resolve the local disk themselves

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.path)

    def target(self, name: str) -> str:
        """The path a writer opens (and messages show)."""
        return str(self.path / name)

    shown = target

    def create(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"{self.path}: exists and is not a folder")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UserError(f"{self.path}: cannot create the output folder ({error.strerror or error})") from None

    def lock(self):
        return FolderLock(self.path)

    def names(self, pattern: str) -> list[str]:
        return [p.name for p in self.path.glob(pattern)]

    def exists(self, name: str) -> bool:
        return (self.path / name).exists()

    def read_text(self, name: str) -> str:
        return (self.path / name).read_text()

    def write_text(self, name: str, text: str) -> None:
        atomic_write_text(self.path / name, text)

    def replace(self, name: str, final: str) -> None:
        os.replace(self.path / name, self.path / final)

    def unlink(self, name: str) -> None:
        (self.path / name).unlink(missing_ok=True)

    def write_error(self, error: OSError) -> str | None:
        """The one line for a failed write into this folder; None for errors from elsewhere."""
        if not str(error.filename or "").startswith(str(self.path)):
            return None
        return f"{self.path}: cannot write the build ({error.strerror or error}: {error.filename})"


class FsFolder:
    def __init__(self, uri: str):
        self.filesystem, self.base = filesystem(uri)
        self.uri = shown(uri)

    def __str__(self) -> str:
        return self.uri

    def target(self, name: str) -> str:
        return f"{self.base}/{name}"

    def shown(self, name: str) -> str:
        return f"{self.uri}/{name}"

    def create(self) -> None:
        import pyarrow.fs as pafs

        try:
            if self.filesystem.get_file_info(self.base).type == pafs.FileType.File:
                raise UserError(f"{self.uri}: exists and is not a folder")
            self.filesystem.create_dir(self.base, recursive=True)
        except OSError as error:
            raise UserError(f"{self.uri}: cannot create the output folder ({first_line(error)})") from None

    def lock(self):
        return FolderLock(Path(self.base)) if is_local(self.filesystem) else contextlib.nullcontext()

    def names(self, pattern: str) -> list[str]:
        import pyarrow.fs as pafs

        infos = self.filesystem.get_file_info(pafs.FileSelector(self.base, allow_not_found=True))
        names = (info.base_name for info in infos if info.type == pafs.FileType.File)
        return [name for name in names if fnmatch.fnmatchcase(name, pattern)]

    def exists(self, name: str) -> bool:
        import pyarrow.fs as pafs

        return self.filesystem.get_file_info(self.target(name)).type != pafs.FileType.NotFound

    def read_text(self, name: str) -> str:
        with self.filesystem.open_input_stream(self.target(name)) as handle:
            return handle.read().decode()

    def write_text(self, name: str, text: str) -> None:
        draft = f".{name}.tmp"
        with self.filesystem.open_output_stream(self.target(draft)) as handle:
            handle.write(text.encode())
        self.replace(draft, name)

    def replace(self, name: str, final: str) -> None:
        self.filesystem.move(self.target(name), self.target(final))

    def unlink(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.filesystem.delete_file(self.target(name))

    def write_error(self, error: OSError) -> str:
        """pyarrow's errors name the object and the cause (its first line is enough)."""
        return f"{self.uri}: the build stopped on a filesystem error ({first_line(error)})"
