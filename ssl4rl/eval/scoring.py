"""Scores from prediction records: overall, per category and l2-category, MMBench-circular,
and puzzle accuracy per task. Errors and unparseable answers count as wrong and are reported.

>>> records = [
...     {"index": "1", "group": "1", "category": "ocr", "l2_category": "perception", "correct": True, "choice": "A", "error": None},
...     {"index": "1000001", "group": "1", "category": "ocr", "l2_category": "perception", "correct": False, "choice": None, "error": None},
...     {"index": "2", "group": "2", "category": "count", "l2_category": "perception", "correct": True, "choice": "B", "error": None},
... ]
>>> s = summarize(records, circular=True)
>>> s["accuracy"], s["unparseable"], s["per_category"]["ocr"], s["circular"]["accuracy"]
(0.6667, 1, {'n': 2, 'accuracy': 0.5}, 0.5)
"""

from __future__ import annotations

from collections import defaultdict


def _rate(hits: int, total: int) -> float:
    return round(hits / total, 4) if total else 0.0


def _by(records: list[dict], key: str) -> dict:
    groups: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        if record.get(key):
            groups[record[key]].append(record)
    return {name: {"n": len(v), "accuracy": _rate(sum(bool(r["correct"]) for r in v), len(v)), **_chance(v)} for name, v in sorted(groups.items())}


def _chance(records: list[dict]) -> dict:
    """{'chance': mean expected score of a uniform guess} when the records carry one."""
    values = [r["chance"] for r in records if r.get("chance") is not None]
    return {"chance": round(sum(values) / len(values), 4)} if values and len(values) == len(records) else {}


def heldout_summary(records: list[dict], circular: bool) -> dict | None:
    """Accuracy on the questions marked held out (none of their images in a train split)."""
    if not records or "heldout" not in records[0]:
        return None
    kept = [r for r in records if r["heldout"]]
    summary = {"questions": len(kept), "excluded": len(records) - len(kept), "accuracy": _rate(sum(bool(r["correct"]) for r in kept), len(kept))}
    if circular:
        groups = [g for g in circular_groups(records) if g["heldout"]]
        summary["circular"] = {"groups": len(groups), "accuracy": _rate(sum(g["correct"] for g in groups), len(groups))}
    return summary


def circular_groups(records: list[dict]) -> list[dict]:
    """One record per circular group: right only if every rotation of its options was right."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        groups[record["group"]].append(record)
    merged = []
    for group, members in sorted(groups.items()):
        original = next((m for m in members if m["index"] == group), members[0])
        merged.append({
            **original, "index": group, "correct": all(m["correct"] for m in members), "copies": len(members),
            "heldout": all(m.get("heldout", True) for m in members),
        })  # fmt: skip
    return merged


def answer_shares(records: list[dict], key: str) -> dict[str, float]:
    """Share of each answer (letter, yes/no) among the records: a model that always answers B
    shows it here, beside an accuracy that the truth's letter distribution could inflate."""
    counts: dict[str, int] = defaultdict(int)
    for record in records:
        value = record.get(key)
        counts["none" if value is None else str(value)] += 1
    return {k: _rate(v, len(records)) for k, v in sorted(counts.items())}


def summarize(records: list[dict], circular: bool = False) -> dict:
    summary = {
        "questions": len(records),
        "accuracy": _rate(sum(bool(r["correct"]) for r in records), len(records)),
        "answers_given": answer_shares(records, "choice"),
        "answers_true": answer_shares(records, "answer"),
        "unparseable": sum(r["choice"] is None and not r.get("error") for r in records),
        "errors": sum(bool(r.get("error")) for r in records),
        **_chance(records),
        "per_category": _by(records, "category"),
        "per_l2_category": _by(records, "l2_category"),
    }
    held = heldout_summary(records, circular)
    if held is not None:
        summary["heldout"] = held
    if any("rank" in r for r in records):  # knowledge-graph link ranking: filtered MRR, Hits@k
        from ssl4rl.eval.ranking import ranking_summary

        protocols = sorted({str(r.get("protocol", "list")) for r in records})
        summary["ranking"] = ranking_summary([r.get("rank") for r in records], "+".join(protocols))
    if circular:
        groups = circular_groups(records)
        summary["circular"] = {
            "groups": len(groups),
            "accuracy": _rate(sum(g["correct"] for g in groups), len(groups)),
            "per_category": _by(groups, "category"),
            "per_l2_category": _by(groups, "l2_category"),
        }
    return summary


def summarize_puzzles(records: list[dict]) -> dict:
    """Puzzle accuracy (the training verifier's `acc`) and format rate per task."""
    tasks: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        tasks[record["category"]].append(record)
    per_task = {
        task: {
            "n": len(rows),
            "accuracy": _rate(sum(r["acc"] for r in rows), len(rows)),
            "format": _rate(sum(r["format"] for r in rows), len(rows)),
            "unparseable": sum(not r.get("parsed", True) and not r.get("error") for r in rows),
            **_chance(rows),
        }
        for task, rows in sorted(tasks.items())
    }
    return {
        "questions": len(records),
        "accuracy": _rate(sum(r["acc"] for r in records), len(records)),
        "format": _rate(sum(r["format"] for r in records), len(records)),
        "unparseable": sum(not r.get("parsed", True) and not r.get("error") for r in records),
        "errors": sum(bool(r.get("error")) for r in records),
        **_chance(records),
        "per_category": per_task,
    }
