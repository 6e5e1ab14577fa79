"""Reports: a markdown table per run, and a bar chart comparing runs (base vs trained) per category."""

from __future__ import annotations

import json
from pathlib import Path

from ssl4rl.errors import UserError


def _rows(summary: dict) -> list[tuple[str, int, float]]:
    rows = [("overall", summary["questions"], summary["accuracy"])]
    rows += [(name, v["n"], v["accuracy"]) for name, v in summary["per_category"].items()]
    return rows


def markdown(summary: dict) -> str:
    lines = [f"# {summary.get('model') or 'evaluation'}", "", "| category | n | accuracy |", "| --- | --- | --- |"]
    lines += [f"| {name} | {n} | {100 * acc:.2f} |" for name, n, acc in _rows(summary)]
    if "circular" in summary:
        c = summary["circular"]
        lines += ["", f"Circular (every rotation of the options right): {100 * c['accuracy']:.2f} over {c['groups']} questions."]
    if summary.get("per_l2_category"):
        lines += ["", "| l2-category | n | accuracy |", "| --- | --- | --- |"]
        lines += [f"| {name} | {v['n']} | {100 * v['accuracy']:.2f} |" for name, v in summary["per_l2_category"].items()]
    unparseable = summary.get("unparseable", 0)
    lines += ["", f"Unparseable answers (scored wrong): {unparseable}. Error rows: {summary.get('errors', 0)}."]
    return "\n".join(lines) + "\n"


def write_markdown(summary: dict, path: Path) -> None:
    Path(path).write_text(markdown(summary))


def comparison_table(summaries: list[dict], names: list[str]) -> str:
    """Accuracy per category, one column per run (base vs trained)."""
    categories = ["overall"] + sorted({c for s in summaries for c in s["per_category"]})
    lookup = [{name: acc for name, _, acc in _rows(s)} for s in summaries]
    lines = ["| category | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for category in categories:
        cells = [f"{100 * row[category]:.2f}" if category in row else "-" for row in lookup]
        lines.append(f"| {category} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def load_summaries(folders: list[str]) -> list[dict]:
    summaries = []
    for folder in folders:
        path = Path(folder) / "summary.json"
        if not path.exists():
            raise UserError(f"{folder}: no summary.json (an `ssl4rl eval --out` folder)")
        summaries.append(json.loads(path.read_text()))
    return summaries


def comparison_chart(folders: list[str], out: str) -> Path:
    """Grouped bars: categories on the x axis, one bar per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summaries = load_summaries(folders)
    names = [s.get("model") or Path(f).name for s, f in zip(summaries, folders)]
    categories = ["overall"] + sorted({c for s in summaries for c in s["per_category"]})
    width = 0.8 / len(summaries)
    figure, axis = plt.subplots(figsize=(max(6, 0.9 * len(categories) * len(summaries) + 2), 4.5))
    for k, (summary, name) in enumerate(zip(summaries, names)):
        values = dict((c, acc) for c, _, acc in _rows(summary))
        axis.bar([i + k * width for i in range(len(categories))], [100 * values.get(c, 0) for c in categories], width, label=name)
    axis.set_xticks([i + width * (len(summaries) - 1) / 2 for i in range(len(categories))], categories, rotation=30, ha="right")
    axis.set_ylabel("accuracy (%)")
    axis.set_ylim(0, 100)
    axis.legend()
    figure.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    print(comparison_table(summaries, names), end="")
    return Path(out)
