"""One build per output folder at a time: a lock file that holds the builder's process id.

Two builds writing one folder would race on the same temporary shard names. A lock left behind
by a process that no longer exists (killed with SIGKILL, a crashed machine) is taken over.
"""

from __future__ import annotations

import os
from pathlib import Path

from ssl4rl.errors import UserError

LOCK_FILE = ".lock"


def _owner(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class FolderLock:
    """`with FolderLock(folder):` holds the folder's lock, or raises UserError naming the holder."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE

    def __enter__(self) -> "FolderLock":
        self._sweep_drafts()
        draft = self.folder / f".lock-{os.getpid()}.new"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{os.getpid()}\n")
        try:
            for _ in range(3):
                try:
                    os.link(draft, self.path)  # atomic: the lock appears with its pid already in it
                    return self
                except FileExistsError:
                    owner = _owner(self.path)
                    if owner is not None and _alive(owner):
                        raise UserError(
                            f"{self.folder} is being built by process {owner}; wait for it or choose another --out"
                        ) from None
                    self.path.unlink(missing_ok=True)  # stale: its process is gone
            raise UserError(f"{self.folder}: cannot take the build lock {self.path}")
        finally:
            draft.unlink(missing_ok=True)

    def _sweep_drafts(self) -> None:
        """Drafts of builders killed while taking the lock (between writing the draft and
        removing it): their process is gone, so nothing else will remove them."""
        for draft in self.folder.glob(".lock-*.new"):
            pid = draft.name.removeprefix(".lock-").removesuffix(".new")
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                draft.unlink(missing_ok=True)

    def __exit__(self, *_) -> None:
        if _owner(self.path) == os.getpid():
            self.path.unlink(missing_ok=True)
