"""One output folder, one run: a training folder records what made it (`run.json`), so a rerun
resumes the same run, finishes with one line when it is done, and never mixes with another run's
checkpoints unless --overwrite empties the folder first."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

from ssl4rl.errors import UserError
from ssl4rl.schema import MANIFEST

RUN_FILE = "run.json"


def data_fingerprint(data_dir: str | Path) -> str:
    """A build by its manifest (which fingerprints its source and settings), else its file names
    and sizes: a rebuilt data set is another run's data."""
    data = Path(data_dir)
    digest = hashlib.sha256()
    manifest = data / MANIFEST
    if manifest.is_file():
        digest.update(manifest.read_bytes())
    else:
        for path in sorted(data.glob("*.parquet")):
            digest.update(f"{path.name}:{path.stat().st_size}\n".encode())
    return digest.hexdigest()


def claim(folder: str | Path, identity: dict, overwrite: bool, what: str) -> bool:
    """Take `folder` for the run described by `identity`. Returns True when it resumes the same
    run (its files stay), False for a fresh start. Refuses, in one line, a non-empty folder of
    another run or of unknown origin; `overwrite` empties it first."""
    folder = Path(folder)
    identity = json.loads(json.dumps(identity, sort_keys=True, default=str))
    if overwrite and folder.exists():
        shutil.rmtree(folder)
    resumed = False
    if folder.is_dir() and any(folder.iterdir()):
        try:
            saved = json.loads((folder / RUN_FILE).read_text())
        except (OSError, ValueError):
            saved = None
        if saved is None:
            raise UserError(f"{folder} is not empty and holds no {what} run of ssl4rl ({RUN_FILE}); pass --overwrite to empty it or choose another --out")
        changed = sorted(k for k in set(saved) | set(identity) if saved.get(k) != identity.get(k))
        if changed:
            raise UserError(f"{folder} holds another {what} run ({', '.join(changed)} differ{'s' if len(changed) == 1 else ''}); pass --overwrite to start afresh or choose another --out")
        resumed = True
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RUN_FILE).write_text(json.dumps(identity, indent=2, sort_keys=True) + "\n")
    return resumed


def newest_step(folder: str | Path, prefix: str) -> tuple[int, Path | None]:
    """The highest N of the sub-folders `<prefix>N` (checkpoint-N, global_step_N), and its path."""
    best, path = 0, None
    for child in Path(folder).glob(f"{prefix}*"):
        match = re.fullmatch(re.escape(prefix) + r"(\d+)", child.name)
        if match and child.is_dir() and int(match.group(1)) > best:
            best, path = int(match.group(1)), child
    return best, path
