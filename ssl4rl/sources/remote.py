"""A file on a pyarrow filesystem (s3://, gs://, hdfs://, file://) with the few `Path` methods the
readers use (name, parent, relative_to, stat, read_bytes, open), so the folder, tar, parquet and
TSV readers serve a URI unchanged. Files are read as streams through buffered range reads and
never copied to the local disk.
"""

from __future__ import annotations

import io
from pathlib import PurePosixPath
from types import SimpleNamespace

READ_BUFFER = 8 * 2**20  # one ranged GET per 8 MiB of a streamed file (a tar shard)


class RemoteFile:
    def __init__(self, fs, path: str | PurePosixPath, scheme: str, size: int | None = None):
        self.fs, self.path, self.scheme, self._size = fs, PurePosixPath(path), scheme, size

    def _at(self, path: PurePosixPath) -> "RemoteFile":
        return RemoteFile(self.fs, path, self.scheme)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.path}"

    __repr__ = __str__

    def __eq__(self, other) -> bool:
        return isinstance(other, RemoteFile) and (self.fs, self.path) == (other.fs, other.path)

    def __hash__(self) -> int:
        return hash(self.path)

    def __lt__(self, other: "RemoteFile") -> bool:  # component-wise, as local Paths sort
        return self.path < other.path

    def __truediv__(self, name) -> "RemoteFile":
        return self._at(self.path / str(name))

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def suffix(self) -> str:
        return self.path.suffix

    @property
    def parent(self) -> "RemoteFile":
        return self._at(self.path.parent)

    @property
    def parents(self) -> list["RemoteFile"]:
        return [self._at(p) for p in self.path.parents]

    def relative_to(self, other: "RemoteFile") -> PurePosixPath:
        return self.path.relative_to(other.path)

    def _info(self):
        return self.fs.get_file_info(str(self.path))

    def is_file(self) -> bool:
        import pyarrow.fs as pafs

        return self._size is not None or self._info().type == pafs.FileType.File

    def stat(self) -> SimpleNamespace:
        """Only st_size: from the listing when the file came from one (no extra request)."""
        if self._size is None:
            self._size = self._info().size
        return SimpleNamespace(st_size=self._size)

    def read_bytes(self) -> bytes:
        with self.fs.open_input_stream(str(self.path)) as handle:
            return handle.read()

    def open(self, mode: str = "r", **text):
        """A seekable buffered reader; text mode (`encoding`, `errors`, `newline`) wraps it."""
        if mode not in ("r", "rb"):
            raise ValueError(f"read-only file: mode {mode!r}")
        handle = io.BufferedReader(self.fs.open_input_file(str(self.path)), READ_BUFFER)
        return handle if mode == "rb" else io.TextIOWrapper(handle, **text)

    def arrow_file(self):
        """The file as pyarrow's own random-access file (parquet and Arrow readers)."""
        return self.fs.open_input_file(str(self.path))
