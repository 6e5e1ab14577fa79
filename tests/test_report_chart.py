"""`ssl4rl report`'s chart: each bar's n under that bar, in the bars' order, and each run's
chance over its own bar (never an average of runs' chances)."""

from __future__ import annotations

import pytest

from ssl4rl.eval.report import draw


def _summary(n: int, accuracy: float, chance: float) -> dict:
    return {"questions": n, "accuracy": accuracy, "chance": chance, "per_category": {"rotation": {"n": n, "accuracy": accuracy, "chance": chance}}}


def test_counts_follow_the_bars_and_each_run_has_its_own_chance():
    import matplotlib.pyplot as plt

    summaries = [_summary(18, 0.5, 0.25), _summary(44, 0.6, 0.5), _summary(3, 0.7, 0.367)]
    figure = draw(summaries, ["a", "b", "c"])
    axis = figure.axes[0]
    labels = [t.get_text() for t in axis.get_xticklabels()]
    assert labels == ["overall\nn=18/44/3", "rotation\nn=18/44/3"]
    heights = [bar.get_height() for bar in axis.patches]
    bars = sorted(axis.patches, key=lambda b: b.get_x())
    segments = [seg for collection in axis.collections for seg in collection.get_segments()]
    levels = sorted(round(seg[0][1], 1) for seg in segments)
    assert levels == sorted([25.0, 50.0, 36.7] * 2)  # three runs, two categories: no averaged line
    for seg in segments:  # every chance line lies over exactly one bar
        x0, x1 = seg[0][0], seg[1][0]
        under = [b for b in bars if b.get_x() - 1e-9 <= x0 and x1 <= b.get_x() + b.get_width() + 1e-9]
        assert len(under) == 1
    assert sorted(heights) == pytest.approx(sorted([50, 60, 70] * 2))
    plt.close(figure)
