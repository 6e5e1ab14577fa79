"""CapArena-Auto results in words: a run's report.md, and the captioning rows of `ssl4rl report`.

Every score is shown with what it rests on: battles per baseline, how many got no verdict and
why, and caption length, since judges favour long captions (CapArena reports Length_Avg beside
its scores for that reason).
"""

from __future__ import annotations

from pathlib import Path

from ssl4rl.eval.caparena import BASELINES

COMPARABLE = ("Comparable to CapArena's leaderboard only with its judge (gpt-4o-2024-08-06) and one order per battle "
              "(`--judge-orders one`); another judge gives another scale.")  # fmt: skip


def _baselines(summaries: list[dict]) -> list[str]:
    """Baselines of all runs, CapArena's three first in its order (summary.json sorts its keys)."""
    found = {b for s in summaries for b in s["per_baseline"]}
    return [b for b in BASELINES if b in found] + sorted(found - set(BASELINES))


def is_caparena(summary: dict) -> bool:
    return summary.get("benchmark") == "caparena"


def _orders_text(summary: dict) -> str:
    if summary["orders"] == "both":
        return "both orders (each battle judged with the model's caption first and second; the score averages them)"
    return "one order per battle, drawn from the image name (CapArena's protocol)"


def _undecided(row: dict) -> int:
    return row["malformed"] + row["failed"] + row["missing"]


def markdown(summary: dict) -> str:
    """report.md of one captioning run."""
    lines = [f"# {summary.get('model') or 'evaluation'}: CapArena-Auto captioning", "",
             f"Judge: {summary['judge']}; {_orders_text(summary)}.", "",
             "| baseline | battles | score | win | loss | tie | malformed | failed | missing | model first | model second | words (model) | words (baseline) |",
             "| --- |" + " --- |" * 12]  # fmt: skip
    for name in _baselines([summary]):
        row = summary["per_baseline"][name]
        orders = [f"{row['by_order'][o]:.2f}" if o in row["by_order"] else "-" for o in ("model_first", "model_second")]
        lines.append(f"| {name} | {row['battles']} | {row['score']:.2f} | {row['win']} | {row['loss']} | {row['tie']} | {row['malformed']} | "
                     f"{row['failed']} | {row['missing']} | {orders[0]} | {orders[1]} | {row['words'] if row['words'] is not None else '-'} | "
                     f"{row['baseline_words'] if row['baseline_words'] is not None else '-'} |")  # fmt: skip
    lines.append(f"| overall (mean of baselines) | {summary['battles']} | {summary['score']:.2f} | {summary['win']} | {summary['loss']} | {summary['tie']} | "
                 f"{summary['malformed']} | {summary['failed']} | {summary['missing']} | - | - | {summary['words'] if summary['words'] is not None else '-'} | - |")  # fmt: skip
    lines += ["", "Score = 100 x (wins - losses) / battles against that baseline (CapArena's Score_gpt/cog/cpm); overall = their mean (Score_avg).",
              f"Caption length: {summary['words']} words on average (CapArena's count, `caption.split(' ')`) over {summary['captions']} of "
              f"{summary['images']} images captioned; judges favour longer captions, so read a score beside its length."]  # fmt: skip
    undecided = _undecided(summary)
    if undecided:
        lines += ["", f"**{undecided} of {summary['battles']} battles have no verdict** (malformed {summary['malformed']}, failed {summary['failed']}, "
                      f"missing {summary['missing']}): they count as neither win nor loss, as in CapArena's script. A rerun tries failed and missing "
                      "battles again; battles.jsonl holds each reply and reason."]  # fmt: skip
    if summary.get("caption_errors"):
        lines += ["", f"Images without a caption: {summary['caption_errors']} (reasons in captions.jsonl)."]
    lines += ["", COMPARABLE]
    return "\n".join(lines) + "\n"


def comparison_table(summaries: list[dict], names: list[str]) -> str:
    """One column per captioning run: overall and per-baseline scores, length, battles without a verdict."""
    baselines = _baselines(summaries)
    lines = ["| captioning (CapArena-Auto) | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    lines.append("| score (mean of baselines) | " + " | ".join(f"{s['score']:.2f} (n={s['battles']})" for s in summaries) + " |")
    for baseline in baselines:
        cells = [f"{s['per_baseline'][baseline]['score']:.2f} (n={s['per_baseline'][baseline]['battles']})" if baseline in s["per_baseline"] else "-" for s in summaries]
        lines.append(f"| vs {baseline} | " + " | ".join(cells) + " |")
    lines.append("| caption words (mean) | " + " | ".join(str(s["words"]) if s["words"] is not None else "-" for s in summaries) + " |")
    lines.append("| battles without verdict | " + " | ".join(str(_undecided(s)) for s in summaries) + " |")
    lines.append("| judge | " + " | ".join(f"{s['judge']} ({s['orders']} order{'s' if s['orders'] == 'both' else ''})" for s in summaries) + " |")
    return "\n".join(lines) + "\n"


def draw(summaries: list[dict], names: list[str]):
    """Grouped bars, -100..100: overall and each baseline, one bar per run, value on each bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    categories = ["overall", *_baselines(summaries)]
    width = 0.8 / len(summaries)
    figure, axis = plt.subplots(figsize=(max(7, 1.6 * len(categories) * max(1, len(summaries) / 2) + 3), 4.6))
    for k, (summary, name) in enumerate(zip(summaries, names)):
        values = [summary["score"] if c == "overall" else summary["per_baseline"].get(c, {}).get("score") for c in categories]
        xs = [i + (k - (len(summaries) - 1) / 2) * width for i in range(len(categories))]
        bars = axis.bar(xs, [v or 0.0 for v in values], width, label=f"{name} ({summary['words']} words)")
        axis.bar_label(bars, [f"{v:.1f}" if v is not None else "-" for v in values], padding=3, fontsize=8)
    axis.axhline(0, color="black", linewidth=0.8)
    axis.set_xticks(range(len(categories)), [c if c == "overall" else f"vs {c}" for c in categories], fontsize=8)
    axis.set_ylim(-110, 110)
    axis.set_ylabel("CapArena score (wins - losses, %)")
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.tight_layout()
    return figure


def chart_path(out: str, with_accuracy_chart: bool) -> Path:
    """The captioning chart's file: `out` itself, or beside the accuracy chart as NAME-captioning.png."""
    path = Path(out)
    return path.with_name(f"{path.stem}-captioning{path.suffix or '.png'}") if with_accuracy_chart else path
