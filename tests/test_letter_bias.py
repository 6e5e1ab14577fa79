"""Node classification measures the model, not its letter bias: options are shuffled per
question (deterministically), and reports show which letters the model gave."""

from __future__ import annotations

from collections import Counter, defaultdict

from ssl4rl.eval.graph import graph_items
from ssl4rl.eval.report import comparison_table, markdown
from ssl4rl.eval.runner import run


class Always:
    def __init__(self, letter):
        self.letter = letter

    def generate(self, prompts, images):
        return [f"<answer>{self.letter}</answer>"] * len(prompts)


def test_an_always_same_letter_model_scores_near_chance_on_every_class(tmp_path):
    items = graph_items("node-classification", "synthetic", None, None, test_fraction=0.3)
    assert items == items and [i.prompt for i in items] == [i.prompt for i in graph_items("node-classification", "synthetic", None, None, test_fraction=0.3)]
    letters = Counter(item.meta["answer"] for item in items)
    assert len(letters) == 4 and max(letters.values()) < 0.5 * len(items)  # uniform-ish over A-D, never one letter
    by_class = defaultdict(set)
    for item in items:
        by_class[item.meta["category"]].add(item.meta["answer"])
    assert all(len(answers) > 1 for answers in by_class.values())  # no class is always the same letter
    for letter in "ABCD":
        summary = run(items, Always(letter), str(tmp_path / letter))
        assert summary["accuracy"] < 0.5 and summary["chance"] == 0.25
        assert summary["answers_given"] == {letter: 1.0}


def test_karate_options_are_not_always_in_one_order(tmp_path):
    items = graph_items("node-classification", "karate", None, None, test_fraction=0.5)
    assert len({item.meta["answer"] for item in items}) == 2
    summary = run(items, Always("B"), str(tmp_path / "ev"))
    text = markdown(summary)
    assert "Answers given" in text and "B 100%" in text
    assert "| answers given | B 100% |" in comparison_table([summary], ["always-b"])
