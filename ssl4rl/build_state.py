"""What a build keeps count of while it runs, saved with every shard (`.progress.json`) and summed
into the manifest: per split (SplitState) and of the part of the source consumed (SourceStats:
its unique items and their fingerprint). A resumed or reused build re-reads that part of the
source and refuses when it changed.

The saved count of source items is named `images`, from when every item was an image; the name
stays so that earlier builds resume and manifests keep their shape.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ssl4rl.budget import length_stats
from ssl4rl.build_jobs import JobResult
from ssl4rl.errors import UserError
from ssl4rl.schema import content_key

ITEMS = "images"  # the saved count of the source's unique items (see above)


@dataclass
class SplitState:
    """Counters of one split; a snapshot taken when a shard completes is what resume restores."""

    rows: int = 0
    jobs: int = 0
    skipped: Counter = field(default_factory=Counter)
    answers: Counter = field(default_factory=Counter)
    tokens: Counter = field(default_factory=Counter)  # prompt length -> rows
    downscaled: int = 0  # source images downscaled to fit the token budget
    shown: dict = field(default_factory=dict)  # per task: the modality's tally of what the prompts show

    def add(self, result: JobResult, kept_rows: list[dict], tally) -> None:
        """Count a result whose first `kept_rows` are kept; `tally`: the modality's, for `shown`."""
        if result.skip:
            self.skipped[result.skip] += 1
        for row, answer, tokens in zip(kept_rows, result.answers, result.tokens):
            row["extra_info"]["index"] = self.rows
            self.rows += 1
            self.answers[answer] += 1
            self.tokens[tokens] += 1
        for view in result.shown[: len(kept_rows)]:
            tally(self.shown, view)
        self.downscaled += result.downscaled if kept_rows else 0
        self.jobs = result.seq + 1

    def snapshot(self, shards: int, source: dict | None = None) -> dict:
        """`source`: SourceStats.prefix() of the source consumed so far, checked on resume."""
        snapshot = {
            "shards": shards, "rows": self.rows, "jobs": self.jobs, "skipped": dict(self.skipped), "answers": dict(self.answers),
            "tokens": {str(k): v for k, v in sorted(self.tokens.items())}, "downscaled": self.downscaled,
        }  # fmt: skip
        if self.shown:
            snapshot["shown"] = json.loads(json.dumps(self.shown))
        return {**snapshot, "source": source} if source else snapshot

    @classmethod
    def restore(cls, saved: dict) -> "SplitState":
        tokens = Counter({int(k): v for k, v in saved.get("tokens", {}).items()})
        tallies = saved.get("shown", saved.get("graph", {}))  # progress saved before the tallies were the modality's: "graph"
        return cls(saved.get("rows", 0), saved.get("jobs", 0), Counter(saved.get("skipped", {})), Counter(saved.get("answers", {})), tokens,
                   saved.get("downscaled", 0), json.loads(json.dumps(tallies)))  # fmt: skip

    def prompt_tokens(self) -> dict:
        return {**length_stats(self.tokens), "downscaled_images": self.downscaled}


@dataclass
class ReadLog:
    """What the reader produced between two jobs: skips before decoding, and content keys."""

    skipped: Counter = field(default_factory=Counter)
    keys: list[tuple[str, bytes]] = field(default_factory=list)


class SourceStats:
    """Reader skips, unique item count and content fingerprint of the part of the source consumed."""

    def __init__(self):
        self.skipped: Counter = Counter()
        self.items = 0
        self._fingerprint = hashlib.sha256()

    def add(self, log: ReadLog) -> None:
        self.skipped.update(log.skipped)
        for source_id, key in log.keys:
            self.add_key(source_id, key)

    def add_key(self, source_id: str, key: bytes) -> None:
        self.items += 1
        self._fingerprint.update(source_id.encode() + b"\0" + key)

    @property
    def fingerprint(self) -> str:
        return self._fingerprint.hexdigest()

    def prefix(self) -> dict:
        return {ITEMS: self.items, "fingerprint": self.fingerprint}


def check_consumed_prefix(reader, saved_splits: dict, out: Path) -> None:
    """Resume keeps shards made from the first items of the source: refuse when those items
    changed (added, removed, edited or reordered) since the shards were written."""
    expected = {s["source"][ITEMS]: s["source"]["fingerprint"] for s in saved_splits.values() if s.get("source")}
    if not expected:
        return
    stats, target = SourceStats(), max(expected)
    changed = False
    for raw in reader:
        if raw.skip:
            continue
        stats.add_key(raw.source_id, content_key(raw.data))
        changed = expected.get(stats.items, stats.fingerprint) != stats.fingerprint
        if changed or stats.items >= target:
            break
    if changed or stats.items < target:
        raise UserError(
            f"{out}: the source changed since this build was interrupted (its first {max(expected)} images differ); "
            "pass --overwrite to build again from scratch"
        )


def check_finished_source(reader, manifest: dict, limit: int | None, out: Path) -> None:
    """A finished build is returned as is only if its source still holds the items it was made
    from: all of them (and no more) when the build read the whole source, else the prefix its
    --limit consumed. Re-reads (hashes) that part of the source once."""
    saved = manifest.get("source") or {}
    target, expected = saved.get(ITEMS), saved.get("fingerprint")
    if target is None or expected is None:
        return
    whole = limit is None or sum(manifest.get("rows", {}).values()) < limit
    stats, same = SourceStats(), target == 0
    for raw in reader:
        if raw.skip:
            continue
        if stats.items == target and not whole:
            break
        stats.add_key(raw.source_id, content_key(raw.data))
        if stats.items == target:
            same = stats.fingerprint == expected
    if stats.items < target or not same or (whole and stats.items != target):
        if not whole:
            what = f"its first {target} images differ"
        elif stats.items != target:
            what = f"{target} images then, {stats.items} now"
        else:
            what = "images edited, renamed or reordered"
        raise UserError(f"{out}: the source changed since this build finished ({what}); pass --overwrite to build again")
