"""Image folders, read recursively in sorted order (ImageNet's class folders, COCO's flat folder).

The source id is the file's path relative to the folder, so it survives moving the folder.
Sub-folders that cannot be listed, symbolic links to folders (not followed: they can loop) and
puzzle builds (`puzzle-build`: a build's images are puzzles, never sources) are counted as
skipped rather than silently missing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from ssl4rl.sources.common import IMAGE_EXTENSIONS, MAX_FILE_BYTES, RawItem, as_path, is_build_folder, read_file


def scan(root: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Image files under `root` (hidden names left out), and (relative folder, reason) of the
    sub-folders that were not read."""
    files, skipped = [], []

    def unreadable(error: OSError) -> None:
        skipped.append((Path(error.filename).relative_to(root).as_posix() + "/", "unreadable-folder"))

    for folder, dirs, names in os.walk(root, onerror=unreadable):
        here = Path(folder)
        for name in list(dirs):
            if name.startswith(".") or (here / name).is_symlink():
                dirs.remove(name)
                if not name.startswith("."):
                    skipped.append(((here / name).relative_to(root).as_posix() + "/", "symlinked-folder"))
            elif is_build_folder(here / name):
                dirs.remove(name)
                skipped.append(((here / name).relative_to(root).as_posix() + "/", "puzzle-build"))
        files.extend(
            here / name
            for name in names
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS and (here / name).is_file()
        )
    return sorted(files), sorted(skipped)


class FolderSource:
    kind = "folder"

    def __init__(self, path: Path, files: list[Path] | None = None, max_bytes: int = MAX_FILE_BYTES, skipped: list[tuple[str, str]] | None = None):
        """`files` (and the folders `skipped`): listed by the caller, as for a URI folder."""
        self.path = as_path(path)
        self.files, self.skipped = (files, skipped or []) if files is not None else scan(self.path)
        self.max_bytes = max_bytes

    def __iter__(self) -> Iterator[RawItem]:
        for folder, reason in self.skipped:
            yield RawItem(folder, None, reason)
        for file in self.files:
            yield read_file(file.relative_to(self.path).as_posix(), file, self.max_bytes)
