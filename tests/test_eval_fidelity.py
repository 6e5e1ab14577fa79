"""Evaluation a reviewer can trust: both answer matchers and both jigsaw scorings against tables
scored by hand, held-out accuracy by image content, honest reports and readable charts."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from ssl4rl.build import BuildConfig, build
from ssl4rl.cli import main
from ssl4rl.eval.extract import extract_choice
from ssl4rl.eval.heldout import train_image_hashes
from ssl4rl.eval.questions import read_questions
from ssl4rl.eval.report import draw, markdown
from ssl4rl.eval.runner import benchmark_items, puzzle_items, run
from ssl4rl.reward import compute_score
from test_eval import ScriptedBackend, png_b64, write_mmbench_tsv

CARS = {"A": "a red car", "B": "a blue boat", "C": "two dogs", "D": "nothing"}
YES_NO = {"A": "yes, there is one", "B": "no"}

# (response, options, ssl4rl matcher, vlmevalkit matcher), each scored by hand from the rules in
# ssl4rl/eval/extract.py (VLMEvalKit: whole response; ours: the last <answer> block first).
MCQ_TABLE = [
    ("<think>boats float</think> <answer>B</answer>", CARS, "B", None),  # VLMEvalKit sees no lone letter
    ("<answer>\nB\n</answer>", CARS, "B", "B"),
    ("The answer is D.", CARS, "D", "D"),
    ("A cat is on the left, so the answer is B", CARS, "B", "B"),  # two letters; 'answer is B' decides
    ("B is wrong because it is clearly shown in the picture", CARS, None, None),  # letter not among the last four words
    ("**C**", CARS, "C", "C"),
    ("<answer>nothingness</answer>", CARS, None, "D"),  # substring vs whole word
    ("I'm not sure, maybe two dogs", CARS, "C", "C"),
    ("I cannot answer.", YES_NO, None, "B"),  # 'no' inside 'cannot'
    ("<answer>I am unable to determine this</answer>", YES_NO, None, None),
    ("Cannot determine the answer", CARS, None, None),  # VLMEvalKit's own refusal phrase
    ("<answer>Z</answer>", CARS, None, None),
    ("<answer>B</answer> wait, <answer>D</answer>", CARS, "D", None),
    ("A or B.", CARS, None, None),
]


@pytest.mark.parametrize("response, options, ours, vlmevalkit", MCQ_TABLE)
def test_both_matchers_on_messy_answers_scored_by_hand(response, options, ours, vlmevalkit):
    assert extract_choice(response, dict(options)) == ours
    assert extract_choice(response, dict(options), matcher="vlmevalkit") == vlmevalkit


# (response, permutation score, parity score) against truth 3,1,4,2, scored by hand.
JIGSAW_TABLE = [
    ("<think>x</think> <answer>3,1,4,2</answer>", 1.0, 1.0),
    ("<answer>3,1,1,1</answer>", 0.0, 0.5),  # not a permutation; two positions right
    ("<answer>1,3,4,2</answer>", 0.5, 0.5),
    ("<answer> 3, 1, 2, 4 </answer>", 0.5, 0.5),
    ("<answer>3 1 4 2</answer>", 1.0, 0.0),  # the reference splits on commas only: one item, not an int
    ("<answer>[3,1,4,2]</answer>", 1.0, 0.5),  # '[3' and '2]' are not ints: those two positions earn nothing
    ("<answer>3,1,4,2.</answer>", 1.0, 0.75),
    ("<answer>3,1</answer> then <answer>3,1,4,2</answer>", 1.0, 0.5),  # last block vs first block
    ("<ANSWER>3,1,4,2</ANSWER>", 1.0, 0.0),  # the reference's tags are case-sensitive
    ("<answer>3,1,4,2,5</answer>", 0.0, 1.0),  # extra items: not a permutation; ignored by the reference
    ("<answer>03,1,x,2</answer>", 0.0, 0.75),  # int('03') == 3; 'x' loses its own position only
    ("user\n<answer>1,1,1,1</answer>\nassistant\n<answer>3,1,4,2</answer>", 1.0, 1.0),  # after the last 'assistant\n'
    ("<answer>3,1,4,2</answer>\nassistant\nno answer", 1.0, 0.0),
    ("3,1,4,2", 0.0, 0.0),
]


@pytest.mark.parametrize("response, permutation, parity", JIGSAW_TABLE)
def test_jigsaw_scorings_on_messy_answers_scored_by_hand(response, permutation, parity):
    assert compute_score("ssl4rl/jigsaw", response, "3,1,4,2")["acc"] == permutation
    assert compute_score("ssl4rl/jigsaw", response, "3,1,4,2", jigsaw_scoring="parity")["acc"] == parity


def write_bench_tsv(path, questions: int):
    """Questions with images large enough to build puzzles from; each has one circular copy
    that refers to the original's image by index."""
    lines = ["index\tquestion\tA\tB\tanswer\tcategory\timage"]
    for q in range(questions):
        lines.append(f"{q}\tWhich?\tleft\tright\t{'AB'[q % 2]}\tc{q % 3}\t{png_b64(200 + q, (120, 100))}")
        lines.append(f"{q + 1_000_000}\tWhich?\tright\tleft\t{'BA'[q % 2]}\tc{q % 3}\t{q}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_heldout_accuracy_counts_only_questions_whose_images_were_not_trained_on(tmp_path, capsys):
    tsv = write_bench_tsv(tmp_path / "MMBench_DEV_EN.tsv", questions=12)
    puzzles = tmp_path / "rotation"
    build(BuildConfig(task="rotation", source=str(tsv), out=str(puzzles), options={"square": False}, test_fraction=0.5), progress_bar=False)
    # Independent of the hashes: --no-square rotation shows the source image untouched as image 1.
    trained = {row["images"][0]["bytes"] for path in puzzles.glob("train-*.parquet") for row in pq.read_table(path).to_pylist()}
    questions = read_questions(tsv)
    expected = {q.index: not any(image in trained for image in q.images) for q in questions}
    assert 0 < sum(expected.values()) < len(questions)  # both kinds present

    items = benchmark_items(str(tsv), None, None, train_hashes=train_image_hashes([str(puzzles)]))
    assert {item.key: item.meta["heldout"] for item in items} == expected
    answer = {q.index: q.answer for q in questions}
    summary = run(items, ScriptedBackend(lambda p: "<answer>A</answer>"), str(tmp_path / "eval"), circular=True, label="base")
    right = {q.index: answer[q.index] == "A" for q in questions}
    held = [i for i in expected if expected[i]]
    assert summary["heldout"]["questions"] == len(held) and summary["heldout"]["excluded"] == len(questions) - len(held)
    assert summary["heldout"]["accuracy"] == round(sum(right[i] for i in held) / len(held), 4)
    assert summary["questions"] == len(questions)
    report = (tmp_path / "eval" / "report.md").read_text()
    assert f"on {len(held)} of {len(questions)} questions" in report
    assert main(["report", str(tmp_path / "eval"), "--out", str(tmp_path / "chart.png")]) == 0
    assert f"| overall (held out) | {100 * summary['heldout']['accuracy']:.2f} (n={len(held)}) |" in capsys.readouterr().out


def test_heldout_needs_builds(tmp_path, capsys):
    tsv = write_mmbench_tsv(tmp_path / "bench.tsv", questions=1)
    assert main(["eval", "--model", str(tmp_path), "--data", str(tsv), "--out", str(tmp_path / "o"), "--heldout", str(tmp_path)]) == 2
    assert "not a puzzle build" in capsys.readouterr().err


def test_puzzle_report_counts_unparseable_answers_and_says_when_nothing_parsed(rotation_set, tmp_path):
    summary = run(puzzle_items(str(rotation_set), None), ScriptedBackend(lambda p: "I think it is rotated"), str(tmp_path / "o"), puzzles=True, label="m")
    n = summary["questions"]
    assert n > 0 and summary["unparseable"] == n and summary["format"] == 0.0
    assert summary["chance"] == 0.25  # rotation by multiples of 90: one of four angles
    report = (tmp_path / "o" / "report.md").read_text()
    assert f"Unparseable answers (scored wrong): {n} of {n}" in report and "No answer could be parsed" in report
    right = run(puzzle_items(str(rotation_set), None), ScriptedBackend(lambda p: "<answer>0</answer>"), str(tmp_path / "r"), puzzles=True, label="m")
    assert right["unparseable"] == 0 and "No answer could be parsed" not in markdown(right)


def test_eval_puzzles_on_a_folder_that_is_not_a_build_is_one_line(tmp_path, capsys):
    (tmp_path / "test-00000.parquet").write_bytes(b"")
    assert main(["eval", "--model", str(tmp_path), "--puzzles", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a puzzle build" in err


def _summary(model, categories, accuracy=0.5, unparseable=0):
    cats = {f"category {i}": {"n": 10 + i, "accuracy": accuracy, "chance": 0.25} for i in range(categories)}
    return {"model": model, "questions": 100, "accuracy": accuracy, "chance": 0.25, "unparseable": unparseable, "errors": 0, "per_category": cats}


def test_chart_labels_every_bar_shows_n_and_chance_and_wraps_many_categories():
    summaries = [_summary("base", 30, accuracy=0.0, unparseable=100), _summary("trained", 30)]
    figure = draw(summaries, ["base", "trained"])
    axes = figure.get_axes()
    assert len(axes) == 3  # 31 categories in panels of 12, not one strip
    assert figure.get_size_inches()[0] <= 16
    for axis in axes:
        bars = [patch for container in axis.containers for patch in container]
        labels = [text.get_text() for text in axis.texts]
        assert len(labels) == len(bars) > 0  # a value on every bar, zeros included
        assert all("n=" in tick.get_text() for tick in axis.get_xticklabels())
        assert "chance" in axis.get_legend_handles_labels()[1]
    assert "no answer could be parsed: base" in figure._suptitle.get_text()


def test_eval_command_reports_heldout_and_rescores_with_another_matcher(tmp_path, capsys, monkeypatch):
    import ssl4rl.eval.backends as backends

    tsv = write_bench_tsv(tmp_path / "bench.tsv", questions=8)
    puzzles = tmp_path / "jigsaw"
    build(BuildConfig(task="jigsaw", source=str(tsv), out=str(puzzles), test_fraction=0.5), progress_bar=False)
    # Right in VLMEvalKit's eyes only: the whole response has the letter among its last words.
    monkeypatch.setattr(backends, "make_backend", lambda *a, **k: ScriptedBackend(lambda p: "<answer>maybe</answer> so A"))
    base = ["eval", "--model", "m", "--data", str(tsv), "--heldout", str(puzzles), "--out", str(tmp_path / "e")]
    assert main(base) == 0
    ours = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert "held out" in capsys.readouterr().out and ours["unparseable"] == 16
    assert ours["heldout"]["questions"] + ours["heldout"]["excluded"] == 16 and ours["heldout"]["excluded"] > 0
    assert main([*base, "--matcher", "vlmevalkit"]) == 0  # same predictions, scored again
    theirs = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert theirs["unparseable"] == 0 and theirs["accuracy"] == 0.5
