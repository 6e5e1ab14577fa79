"""WebDataset tar shards (`--source 'DIR/*.tar'`): LAION, DataComp, COYO-style web collections.

A sample is the run of members sharing a key (the member's path up to the first dot of its
file name): `key.jpg|jpeg|png|webp` is its image, `key.json` / `key.txt` (caption, metadata)
are read past. Each tar is read as a stream, one member at a time, never unpacked to disk and
never indexed, so memory does not grow with the number of images. The source id is
`<tar path relative to DIR>:<key>`.

A sample that cannot be used is counted as skipped: `no-image` (a key without an image member),
`truncated-tar` (the file ends inside a member; the rest of that tar is lost), `too-large`; an
undecodable image is skipped by the decoder like any other. A damaged tar header is not a
sample: the build stops with one line naming the file and the byte offset.
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import BinaryIO, Iterator

from ssl4rl.errors import UserError
from ssl4rl.sources.common import MAX_FILE_BYTES, RawItem, as_path

IMAGE_SUFFIXES = {"jpg", "jpeg", "png", "webp"}
TAR_BLOCK = 512  # a tar header block


def split_key(name: str) -> tuple[str, str]:
    """(key, suffix) of a member name, as WebDataset groups them.

    >>> split_key("shard/000123.jpg"), split_key("a/b.c.json"), split_key("README")
    (('shard/000123', 'jpg'), ('a/b', 'c.json'), ('README', ''))
    """
    folder, _, base = name.rpartition("/")
    stem, _, suffix = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), suffix.lower()


class TarSource:
    kind = "webdataset"

    def __init__(self, root: Path, files: list[Path], max_bytes: int = MAX_FILE_BYTES):
        self.path, self.files, self.max_bytes = as_path(root), list(files), max_bytes

    def _relative(self, file: Path) -> str:
        try:
            return file.relative_to(self.path).as_posix()
        except ValueError:
            return file.name

    def __iter__(self) -> Iterator[RawItem]:
        for file in self.files:
            try:
                handle = file.open("rb")
            except OSError:
                yield RawItem(f"{self._relative(file)}:", None, "unreadable-file")
                continue
            with handle:
                yield from self._samples(file, handle)

    def _samples(self, file: Path, handle: BinaryIO) -> Iterator[RawItem]:
        prefix = self._relative(file)
        try:
            archive = tarfile.open(fileobj=handle, mode="r|")
        except tarfile.ReadError as error:
            raise UserError(f"{file}: not a readable tar file ({error}: corrupt header at byte 0)") from None
        key, image, reason = None, None, None  # the sample being read
        try:
            while True:
                cut = None
                try:
                    member = archive.next()
                except tarfile.ReadError as error:
                    if "unexpected end" not in str(error):
                        raise UserError(f"{file}: corrupt tar header at byte {archive.offset} ({error})") from None
                    member, cut = None, "truncated-tar"
                archive.members.clear()  # the stream reader keeps every header otherwise
                if member is None:  # the end, or where the file was cut
                    cut = cut or self._check_end(file, archive.offset)
                    if key is not None and (image is not None or not cut):
                        yield self._sample(prefix, key, image, reason)
                        key = None
                    if cut:  # the sample cut short, or (its key unknown) where the rest was lost
                        yield RawItem(f"{prefix}:{key}" if key is not None else f"{prefix}:@{archive.offset}", None, cut)
                    return
                member_key, suffix = split_key(member.name)
                if key is not None and member_key != key:
                    yield self._sample(prefix, key, image, reason)
                    image, reason = None, None
                key = member_key
                if not member.isfile() or suffix not in IMAGE_SUFFIXES or image is not None or reason:
                    continue  # captions and metadata (key.json, key.txt) are read past
                if member.size > self.max_bytes:
                    reason = "too-large"
                    continue
                try:
                    image = archive.extractfile(member).read()
                except tarfile.ReadError:
                    yield RawItem(f"{prefix}:{key}", None, "truncated-tar")
                    return
        finally:
            archive.close()

    def _sample(self, prefix: str, key: str, image: bytes | None, reason: str | None) -> RawItem:
        if image is not None:
            return RawItem(f"{prefix}:{key}", image)
        return RawItem(f"{prefix}:{key}", None, reason or "no-image")

    def _check_end(self, file: Path, offset: int) -> str | None:
        """Python's tar reader ends quietly at a damaged or cut header after the first: what
        follows the last member must be the end-of-archive zero blocks. 'truncated-tar' when
        the file ends inside a member or a header; a damaged header raises UserError."""
        size = file.stat().st_size
        if offset > size:
            return "truncated-tar"
        with file.open("rb") as handle:
            handle.seek(offset)
            first = handle.read(TAR_BLOCK)
            if first.strip(b"\0"):
                if len(first) < TAR_BLOCK:
                    return "truncated-tar"
                raise UserError(f"{file}: corrupt tar header at byte {offset}; the members after it cannot be read")
        return None
