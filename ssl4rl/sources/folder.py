"""Image folders, read recursively in sorted order (ImageNet's class folders, COCO's flat folder).

The source id is the file's path relative to the folder, so it survives moving the folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ssl4rl.sources.common import IMAGE_EXTENSIONS, RawImage


def image_files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


class FolderSource:
    kind = "folder"

    def __init__(self, path: Path, files: list[Path] | None = None):
        self.path = Path(path)
        self.files = files if files is not None else image_files(self.path)

    def __iter__(self) -> Iterator[RawImage]:
        for file in self.files:
            try:
                data = file.read_bytes()
            except OSError:
                yield RawImage(file.relative_to(self.path).as_posix(), None, "unreadable")
                continue
            yield RawImage(file.relative_to(self.path).as_posix(), data)
