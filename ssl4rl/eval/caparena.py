"""CapArena-Auto as released: its 600 images, human references and baseline captions, the
pairwise battles a model's captions fight, and the score CapArena reports.

The release (github njucckevin/CapArena, readme "Evaluate Your Own Model"): `caparena_auto_600.json`
maps an image file name (`test_01258.jpg`) to `{"captions": {"human": ..., <baseline>: ...},
"ref_model": <baseline>}`, and the images are `all_images/test_XXXXX.jpg`. Each image is fought
once against its own `ref_model`: GPT-4o-0806, CogVLM2-llama3-chat-19B or MiniCPM-V2.6-8B.

Score per baseline = 100 x (wins - losses) / battles scheduled against it, which is CapArena's
`(wins - losses) / 2` over its 200 images per baseline; a battle without a verdict (malformed,
failed, missing data) counts as neither, as in its script. The overall score is the mean over
baselines (CapArena's Score_avg).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ssl4rl.errors import UserError

RELEASE_FILE = "caparena_auto_600.json"
IMAGES_FOLDER = "all_images"
BASELINES = ("GPT-4o-0806", "CogVLM2-llama3-chat-19B", "MiniCPM-V2.6-8B")  # CapArena's score_refs
ORDERS = ("model_first", "model_second")  # the model's caption is Caption 1, or Caption 2
OUTCOMES = ("win", "loss", "tie", "malformed", "failed", "missing")


@dataclass
class Entry:
    """One image of the release: what its battles need."""

    image: str  # file name, the release's key
    path: Path
    reference: str | None  # the human caption (None: absent from the release)
    baseline: str
    baseline_caption: str | None


def release_paths(data: str, images: str | None = None) -> tuple[Path, Path]:
    """`data`: caparena_auto_600.json or the folder holding it; images: `images`, else all_images/ beside it."""
    path = Path(data).expanduser()
    release = path / RELEASE_FILE if path.is_dir() else path
    if not release.is_file():
        raise UserError(f"{data}: no {RELEASE_FILE} (give the file or its folder, as downloaded from CapArena's readme)")
    folder = Path(images).expanduser() if images else release.parent / IMAGES_FOLDER
    if not folder.is_dir():
        how = "" if images else f" (CapArena's all_images/ beside {release.name}; or pass --images DIR)"
        raise UserError(f"{folder}: no such image folder{how}")
    return release, folder


def read_release(data: str, images: str | None = None, limit: int | None = None) -> list[Entry]:
    """Entries sorted by image name; a structurally broken file is one error before anything runs."""
    release, folder = release_paths(data, images)
    try:
        content = json.loads(release.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise UserError(f"{release}: not JSON ({error})") from None
    if not isinstance(content, dict) or not content:
        raise UserError(f"{release}: expected an object mapping image file names to their captions")
    entries = []
    for name in sorted(content)[:limit]:
        value = content[name]
        captions = value.get("captions") if isinstance(value, dict) else None
        baseline = value.get("ref_model") if isinstance(value, dict) else None
        if not isinstance(captions, dict) or not isinstance(baseline, str) or not baseline:
            raise UserError(f"{release}: entry {name!r} lacks a 'captions' object or a 'ref_model' name")
        entries.append(Entry(name, folder / name, _text(captions.get("human")), baseline, _text(captions.get(baseline))))
    return entries


def _text(value) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def orders_for(image: str, orders: str) -> tuple[str, ...]:
    """'both': each battle judged with the model's caption first and second (position bias
    cancels); 'one': CapArena's single random order, drawn from the image name so reruns agree."""
    if orders == "both":
        return ORDERS
    return (ORDERS[hashlib.sha256(image.encode()).digest()[0] % 2],)


def words(caption: str) -> int:
    """CapArena's caption length: `len(caption.split(' '))`."""
    return len(caption.split(" "))


def outcome(verdict: str | None, order: str) -> str:
    """A parsed verdict ('1', '2', 'tie', None) from the model's side."""
    if verdict is None:
        return "malformed"
    if verdict == "tie":
        return "tie"
    model_slot = "1" if order == "model_first" else "2"
    return "win" if verdict == model_slot else "loss"


def score(battles: list[dict]) -> dict:
    """Per baseline and overall, from battle records ({baseline, order, outcome, ...}).

    >>> b = [{"baseline": "A", "order": "model_first", "outcome": o} for o in ("win", "win", "loss", "malformed")]
    >>> score(b)["per_baseline"]["A"]["score"], score(b)["score"]
    (25.0, 25.0)
    """
    per_baseline = {}
    for name in sorted({b["baseline"] for b in battles}, key=lambda n: (n not in BASELINES, BASELINES.index(n) if n in BASELINES else 0, n)):
        mine = [b for b in battles if b["baseline"] == name]
        counts = {kind: sum(b["outcome"] == kind for b in mine) for kind in OUTCOMES}
        row = {"battles": len(mine), **counts, "score": round(100 * (counts["win"] - counts["loss"]) / len(mine), 2)}
        per_order = {}
        for order in ORDERS:
            these = [b for b in mine if b["order"] == order]
            if these:
                per_order[order] = round(100 * (sum(b["outcome"] == "win" for b in these) - sum(b["outcome"] == "loss" for b in these)) / len(these), 2)
        row["by_order"] = per_order
        per_baseline[name] = row
    overall = round(sum(v["score"] for v in per_baseline.values()) / len(per_baseline), 2) if per_baseline else 0.0
    totals = {kind: sum(v[kind] for v in per_baseline.values()) for kind in ("battles", *OUTCOMES)}
    return {"score": overall, "per_baseline": per_baseline, **totals}
