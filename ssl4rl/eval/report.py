"""Reports: a markdown table per run, and a chart comparing runs (base vs trained) per category.

The chart is read at a glance: every bar carries its value, every category the n of each bar in
the bars' order, a dashed line over each bar marks that run's chance where its summary knows it, a run with nothing parseable says so, and many
categories wrap into several panels instead of one ever wider strip.
"""

from __future__ import annotations

import json
from pathlib import Path

from ssl4rl.errors import UserError
from ssl4rl.eval.ranking import PROTOCOLS

CATEGORIES_PER_PANEL = 12


def _rows(summary: dict) -> list[tuple[str, int, float]]:
    rows = [("overall", summary["questions"], summary["accuracy"])]
    if "heldout" in summary:
        rows.append(("overall (held out)", summary["heldout"]["questions"], summary["heldout"]["accuracy"]))
    rows += [(name, v["n"], v["accuracy"]) for name, v in summary["per_category"].items()]
    return rows


def _chances(summary: dict) -> dict[str, float]:
    chances = {name: v["chance"] for name, v in summary["per_category"].items() if "chance" in v}
    if "chance" in summary:
        chances["overall"] = summary["chance"]
    return chances


def nothing_parseable(summary: dict) -> bool:
    """Every answered row unparseable (error rows aside)."""
    answered = summary["questions"] - summary.get("errors", 0)
    return answered > 0 and summary.get("unparseable", 0) == answered


def markdown(summary: dict) -> str:
    puzzles = any("format" in v for v in summary["per_category"].values())
    head = "| task | n | accuracy | format | unparseable | chance |" if puzzles else "| category | n | accuracy | chance |"
    lines = [f"# {summary.get('model') or 'evaluation'}", ""]
    if nothing_parseable(summary):
        lines += ["**No answer could be parsed**: every accuracy below is 0 by format, not by skill.", ""]
    lines += [head, "|" + " --- |" * (head.count("|") - 1)]
    chances = _chances(summary)
    for name, n, acc in _rows(summary):
        chance = f"{100 * chances[name]:.2f}" if name in chances else "-"
        if puzzles:
            v = summary["per_category"].get(name, summary)
            lines.append(f"| {name} | {n} | {100 * acc:.2f} | {100 * v.get('format', 0):.2f} | {v.get('unparseable', 0)} | {chance} |")
        else:
            lines.append(f"| {name} | {n} | {100 * acc:.2f} | {chance} |")
    if "circular" in summary:
        c = summary["circular"]
        lines += ["", f"Circular (every rotation of the options right): {100 * c['accuracy']:.2f} over {c['groups']} questions."]
    if "heldout" in summary:
        h = summary["heldout"]
        circular = f"; circular {100 * h['circular']['accuracy']:.2f} over {h['circular']['groups']}" if "circular" in h else ""
        lines += [
            "",
            f"Held out (none of the question's images or graph nodes in a train split of --heldout builds; a link question: its pair never shown or asked there): {100 * h['accuracy']:.2f} "
            f"on {h['questions']} of {h['questions'] + h['excluded']} questions ({h['excluded']} seen in training){circular}.",
        ]
    if "ranking" in summary:
        r = summary["ranking"]
        protocol = r.get("protocol", "list")
        lines += ["", f"Ranking ({protocol}: {PROTOCOLS.get(protocol, protocol)}): MRR {r['mrr']:.4f}, "
                  f"Hits@1 {r['hits@1']:.4f}, Hits@3 {r['hits@3']:.4f}, Hits@10 {r['hits@10']:.4f} on {r['questions']} questions."]  # fmt: skip
    if summary.get("per_l2_category"):
        lines += ["", "| l2-category | n | accuracy |", "| --- | --- | --- |"]
        lines += [f"| {name} | {v['n']} | {100 * v['accuracy']:.2f} |" for name, v in summary["per_l2_category"].items()]
    if summary.get("answers_given"):
        lines += ["", f"Answers given (letter bias shows here): {_shares(summary['answers_given'])}; right answers: {_shares(summary.get('answers_true', {}))}."]
    answered = summary["questions"] - summary.get("errors", 0)
    lines += ["", f"Unparseable answers (scored wrong): {summary.get('unparseable', 0)} of {answered}. Error rows: {summary.get('errors', 0)}."]
    return "\n".join(lines) + "\n"


def _shares(shares: dict[str, float]) -> str:
    return ", ".join(f"{k} {100 * v:.0f}%" for k, v in shares.items()) or "-"


def write_markdown(summary: dict, path: Path) -> None:
    Path(path).write_text(markdown(summary))


def _categories(summaries: list[dict]) -> list[str]:
    held = ["overall (held out)"] if any("heldout" in s for s in summaries) else []
    return ["overall", *held] + sorted({c for s in summaries for c in s["per_category"]})


def comparison_table(summaries: list[dict], names: list[str]) -> str:
    """Accuracy per category, one column per run (base vs trained), with n."""
    lookup = [{name: (n, acc) for name, n, acc in _rows(s)} for s in summaries]
    lines = ["| category | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for category in _categories(summaries):
        cells = [f"{100 * row[category][1]:.2f} (n={row[category][0]})" if category in row else "-" for row in lookup]
        lines.append(f"| {category} | " + " | ".join(cells) + " |")
    if any(s.get("answers_given") for s in summaries):
        lines.append("| answers given | " + " | ".join(_shares(s.get("answers_given", {})) for s in summaries) + " |")
    return "\n".join(lines) + "\n"


def load_summaries(folders: list[str]) -> list[dict]:
    summaries = []
    for folder in folders:
        path = Path(folder) / "summary.json"
        if not path.exists():
            raise UserError(f"{folder}: no summary.json (an `ssl4rl eval --out` folder)")
        summaries.append(json.loads(path.read_text()))
    return summaries


def run_names(summaries: list[dict], folders: list[str]) -> list[str]:
    """Each run's model name; names two runs share get their eval folder added.

    >>> run_names([{"model": "final"}, {"model": "final"}, {"model": "base"}], ["eval/a", "eval/b", "eval/c"])
    ['final (a)', 'final (b)', 'base']
    """
    names = [s.get("model") or Path(f).name for s, f in zip(summaries, folders)]
    return [f"{n} ({Path(f).name})" if names.count(n) > 1 else n for n, f in zip(names, folders)]


def draw(summaries: list[dict], names: list[str]):
    """The figure: grouped bars per category, in panels of at most CATEGORIES_PER_PANEL."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    categories = _categories(summaries)
    panels = [categories[i : i + CATEGORIES_PER_PANEL] for i in range(0, len(categories), CATEGORIES_PER_PANEL)]
    per_panel = max(len(p) for p in panels)
    width = 0.8 / len(summaries)
    figure, axes = plt.subplots(len(panels), 1, figsize=(min(16, max(7, 0.55 * per_panel * len(summaries) + 3)), 4.2 * len(panels) + 0.4), squeeze=False)
    lookups = [{name: (n, acc) for name, n, acc in _rows(s)} for s in summaries]
    chances = [_chances(s) for s in summaries]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, panel in zip(axes[:, 0], panels):
        for k, (lookup, name) in enumerate(zip(lookups, names)):
            xs = [i + (k - (len(summaries) - 1) / 2) * width for i in range(len(panel))]
            values = [100 * lookup[c][1] if c in lookup else 0.0 for c in panel]
            bars = axis.bar(xs, values, width, label=name, color=colors[k % len(colors)])
            labels = [f"{v:.1f}" if c in lookup else "-" for v, c in zip(values, panel)]
            axis.bar_label(bars, labels, padding=3, fontsize=8, bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.3})
        for i, category in enumerate(panel):  # each run's own chance, over its own bar: runs may differ
            for k, chance in enumerate(chances):
                if category in chance:
                    x = i + (k - (len(summaries) - 1) / 2) * width
                    first = "chance" not in axis.get_legend_handles_labels()[1]
                    axis.hlines(100 * chance[category], x - width / 2, x + width / 2, colors="black", linestyles="dashed", linewidth=1, label="chance" if first else None)
        ticks = []
        for category in panel:  # n of each bar, in the bars' order ("-" where a run lacks the category)
            counts = [str(lookup[category][0]) if category in lookup else "-" for lookup in lookups]
            ticks.append(f"{category}\nn={'/'.join(counts)}")
        axis.set_xticks(range(len(panel)), ticks, rotation=30 if per_panel > 6 else 0, ha="right" if per_panel > 6 else "center", fontsize=8)
        axis.set_ylabel("accuracy (%)")
        axis.set_ylim(0, 109)
        axis.set_xlim(-0.6, per_panel - 0.4)
        axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: never over a bar
    empty = [name for name, s in zip(names, summaries) if nothing_parseable(s)]
    if empty:
        figure.suptitle(f"no answer could be parsed: {', '.join(empty)} (accuracy 0 by format)", color="firebrick", fontsize=11)
    figure.tight_layout()
    return figure


def comparison_chart(folders: list[str], out: str) -> Path:
    """Grouped bars: categories on the x axis, one bar per run; the table is printed too.
    Captioning runs (CapArena) get their own table and chart (OUT-captioning.png beside OUT)."""
    from ssl4rl.eval import caparena_report

    summaries = load_summaries(folders)
    captions = [caparena_report.is_caparena(s) for s in summaries]
    accuracy = [(s, f) for s, f, c in zip(summaries, folders, captions) if not c]
    captioning = [(s, f) for s, f, c in zip(summaries, folders, captions) if c]
    import matplotlib.pyplot as plt

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    charts = []
    for runs, table, drawing, path in (
        (accuracy, comparison_table, draw, Path(out)),
        (captioning, caparena_report.comparison_table, caparena_report.draw, caparena_report.chart_path(out, bool(accuracy))),
    ):
        if not runs:
            continue
        chosen = [s for s, _ in runs]
        names = run_names(chosen, [f for _, f in runs])
        figure = drawing(chosen, names)
        figure.savefig(path, dpi=110)
        plt.close(figure)
        print(("\n" if charts else "") + table(chosen, names), end="")
        charts.append(path)
    if len(charts) == 2:
        print(f"captioning chart: {charts[1]}")
    return charts[0]
