"""Evaluation: answer extraction, scoring against hand-computed tables, circular grouping,
benchmark readers, resume, error rows, and an end-to-end eval of the tiny model."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from conftest import textured_image
from ssl4rl.cli import main
from ssl4rl.eval.extract import extract_choice
from ssl4rl.eval.questions import read_questions
from ssl4rl.eval.runner import benchmark_items, run
from ssl4rl.eval.scoring import summarize
from ssl4rl.reward import compute_score

OPTIONS = {"A": "a red car", "B": "a blue boat", "C": "two dogs", "D": "nothing"}


@pytest.mark.parametrize(
    "response, expected",
    [
        ("<think>boats float</think> <answer>B</answer>", "B"),
        ("<answer> (c) </answer>", None),  # lower case is not an option letter
        ("<answer>(C)</answer>", "C"),
        ("The answer is D.", "D"),
        ("Answer: A", "A"),
        ("B. a blue boat", "B"),
        ("<answer>two dogs</answer>", "C"),
        ("I think a red car", "A"),
        ("A or B.", None),
        ("<answer>E</answer>", None),
        ("", None),
        ("<answer>B</answer> wait, <answer>D</answer>", "D"),
        ("a red car or a blue boat", None),
    ],
)
def test_extraction(response, expected):
    assert extract_choice(response, dict(OPTIONS)) == expected


def record(index, category, l2, correct, choice="A", error=None):
    from ssl4rl.eval.questions import CIRCULAR_OFFSET

    group = str(int(index) % CIRCULAR_OFFSET)
    return {"index": str(index), "group": group, "category": category, "l2_category": l2, "correct": correct, "choice": choice, "error": error}


def test_scores_equal_a_table_computed_by_hand():
    records = [
        record(1, "ocr", "perception", True), record(2, "ocr", "perception", False, choice=None),
        record(3, "ocr", "perception", True), record(4, "count", "perception", False),
        record(5, "logic", "reasoning", True), record(6, "logic", "reasoning", False, choice=None, error="image does not decode"),
        record(1000001, "ocr", "perception", True), record(1000003, "ocr", "perception", False),
        record(2000001, "ocr", "perception", True),
    ]  # fmt: skip
    summary = summarize(records, circular=True)
    # 9 rows, 5 right; ocr 4 right of 6; count 0/1; logic 1/2; perception 4/7; reasoning 1/2.
    assert summary["accuracy"] == round(5 / 9, 4) and summary["questions"] == 9
    assert summary["per_category"] == {"count": {"n": 1, "accuracy": 0.0}, "logic": {"n": 2, "accuracy": 0.5}, "ocr": {"n": 6, "accuracy": round(4 / 6, 4)}}
    assert summary["per_l2_category"] == {"perception": {"n": 7, "accuracy": round(4 / 7, 4)}, "reasoning": {"n": 2, "accuracy": 0.5}}
    assert summary["unparseable"] == 1 and summary["errors"] == 1
    # Circular groups: 1 (3 copies, all right) ok; 2 wrong; 3 (one copy wrong) wrong; 4 wrong; 5 ok; 6 wrong.
    assert summary["circular"]["groups"] == 6 and summary["circular"]["accuracy"] == round(2 / 6, 4)
    assert summary["circular"]["per_category"]["ocr"] == {"n": 3, "accuracy": round(1 / 3, 4)}


def png_b64(seed: int, size=(64, 48)) -> str:
    buffer = io.BytesIO()
    textured_image(seed, *size).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def write_mmbench_tsv(path: Path, questions: int = 6) -> Path:
    """MMBench's layout: originals, then circular copies whose image is the original's index."""
    header = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "l2-category", "image"]
    lines = ["\t".join(header)]
    for q in range(questions):
        options = ["red", "green", "blue", "yellow"]
        answer = "ABCD"[q % 4]
        hint = "" if q % 2 else "Look closely."
        lines.append("\t".join([str(q), f"What colour is thing {q}?", hint, *options, answer, ["color", "count"][q % 2], "perception", png_b64(q)]))
        for k in (1, 2, 3):  # options rotated by k: the right text moves k letters on
            rotated = options[k:] + options[:k]
            new_answer = "ABCD"[rotated.index(options["ABCD".index(answer)])]
            lines.append("\t".join([str(q + k * 1_000_000), f"What colour is thing {q}?", hint, *rotated, new_answer, ["color", "count"][q % 2], "perception", str(q)]))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_tsv_reader_resolves_image_references_and_circular_groups(tmp_path):
    questions = read_questions(write_mmbench_tsv(tmp_path / "MMBench_DEV_EN.tsv"))
    assert len(questions) == 24
    by_index = {q.index: q for q in questions}
    assert by_index["1000002"].images == by_index["2"].images and by_index["2"].images[0].startswith(b"\x89PNG")
    assert {q.group for q in questions} == {str(i) for i in range(6)}
    assert by_index["0"].hint == "Look closely." and by_index["1"].hint == ""
    assert by_index["1000000"].options["A"] == "green" and by_index["1000000"].answer == "D"


def test_blink_lists_and_hf_formats(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    images = f"['{png_b64(1)}', '{png_b64(2)}']"
    (tmp_path / "BLINK.tsv").write_text(f"index\tquestion\tA\tB\tanswer\tcategory\timage\n0\tSame object?\tyes\tno\tB\tMulti-view\t{images}\n")
    blink = read_questions(tmp_path / "BLINK.tsv")[0]
    assert len(blink.images) == 2 and blink.category == "Multi-view" and blink.options == {"A": "yes", "B": "no"}
    png = base64.b64decode(png_b64(3))
    seed = pa.table({
        "question": ["How many?"], "choice_a": ["1"], "choice_b": ["2"], "choice_c": ["3"], "choice_d": ["4"],
        "answer": ["C"], "question_type_id": [5], "image": [[{"bytes": png, "path": None}]],
    })  # fmt: skip
    (tmp_path / "seed").mkdir()
    pq.write_table(seed, tmp_path / "seed" / "test-00000.parquet")
    q = read_questions(tmp_path / "seed")[0]
    assert q.options == {"A": "1", "B": "2", "C": "3", "D": "4"} and q.answer == "C" and q.images == [png] and q.category == "5"
    mmbench_hf = pa.table({"index": [7], "question": ["Q?"], "hint": [None], "A": ["x"], "B": ["y"], "C": [None], "D": [None], "answer": ["A"], "category": ["c"], "image": [png_b64(4)]})
    pq.write_table(mmbench_hf, tmp_path / "mmbench.parquet")
    q = read_questions(tmp_path / "mmbench.parquet")[0]
    assert q.options == {"A": "x", "B": "y"} and q.images[0].startswith(b"\x89PNG") and q.hint == ""


class ScriptedBackend:
    """Answers from a function of the prompt; can stop the run after some batches."""

    def __init__(self, answer, stop_after=None):
        self.answer, self.stop_after, self.calls = answer, stop_after, 0

    def generate(self, prompts, images):
        self.calls += 1
        if self.stop_after is not None and self.calls > self.stop_after:
            raise KeyboardInterrupt
        assert all(p.count("<image>") == len(imgs) for p, imgs in zip(prompts, images))
        return [self.answer(p) for p in prompts]


def _answer_by_hash(prompt: str) -> str:
    return f"<think>hm</think> <answer>{'ABCD'[sum(map(ord, prompt)) % 4]}</answer>"


def test_resume_after_interruption_gives_the_same_summary(tmp_path):
    items = benchmark_items(str(write_mmbench_tsv(tmp_path / "MMBench_DEV_EN.tsv")), None, None)
    whole = run(items, ScriptedBackend(_answer_by_hash), str(tmp_path / "whole"), batch_size=5, circular=True)
    with pytest.raises(KeyboardInterrupt):
        run(items, ScriptedBackend(_answer_by_hash, stop_after=2), str(tmp_path / "part"), batch_size=5, circular=True)
    with open(tmp_path / "part" / "predictions.jsonl", "a") as torn:
        torn.write('{"index": "torn')  # a line cut short by the interruption
    assert len((tmp_path / "part" / "predictions.jsonl").read_text().splitlines()) == 11
    resumed_backend = ScriptedBackend(_answer_by_hash)
    resumed = run(items, resumed_backend, str(tmp_path / "part"), batch_size=5, circular=True)
    assert resumed == whole and resumed_backend.calls == 3  # only the 14 unfinished rows were asked
    lines = (tmp_path / "part" / "predictions.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["index"] for line in lines) == sorted(i.key for i in items)


def test_a_corrupt_image_becomes_an_error_row_and_the_run_goes_on(tmp_path):
    path = write_mmbench_tsv(tmp_path / "bench.tsv", questions=2)
    text = path.read_text().replace(png_b64(1), base64.b64encode(b"not an image at all" * 10).decode())
    path.write_text(text)
    summary = run(benchmark_items(str(path), None, None), ScriptedBackend(lambda p: "<answer>A</answer>"), str(tmp_path / "out"), circular=True)
    assert summary["questions"] == 8 and summary["errors"] == 4  # question 1 and its three circular copies
    rows = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert sum(r["error"] is not None and "decode" in r["error"] for r in rows) == 4


def test_bad_inputs_are_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "bad.tsv").write_text("index\tquestion\timage\n0\tq\txx\n")
    assert main(["eval", "--model", str(tmp_path / "none"), "--data", str(tmp_path / "bad.tsv"), "--out", str(tmp_path / "o")]) == 2
    assert "missing column(s) answer" in capsys.readouterr().err
    tsv = write_mmbench_tsv(tmp_path / "ok.tsv", questions=1)
    assert main(["eval", "--model", str(tmp_path / "no-model"), "--data", str(tsv), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such model folder" in err
    assert main(["report", str(tmp_path / "nothing"), "--out", str(tmp_path / "r.png")]) == 2


def test_end_to_end_eval_of_the_tiny_model(tiny_model, rotation_set, tmp_path, capsys):
    tsv = write_mmbench_tsv(tmp_path / "MMBench_DEV_EN.tsv", questions=3)
    out = tmp_path / "mmbench"
    args = ["eval", "--model", str(tiny_model), "--bench", "mmbench", "--data", str(tsv), "--out", str(out), "--batch-size", "4", "--max-new-tokens", "16", "--backend", "hf"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == summary["questions"] == 12 and "circular" in summary
    options = {q.index: q.options for q in read_questions(tsv)}
    for row in rows:  # the stored score is the extraction of the stored response
        assert row["choice"] == extract_choice(row["prediction"], options[row["index"]])
        assert row["correct"] == (row["choice"] == row["answer"])
    assert summary["unparseable"] == sum(r["choice"] is None for r in rows)
    assert "| overall | 12 |" in (out / "report.md").read_text()

    puzzles = tmp_path / "puzzles"
    assert main(["eval", "--model", str(tiny_model), "--puzzles", str(rotation_set), "--out", str(puzzles), "--max-new-tokens", "24", "--backend", "hf"]) == 0
    puzzle_summary = json.loads((puzzles / "summary.json").read_text())
    manifest = json.loads((rotation_set / "manifest.json").read_text())
    assert puzzle_summary["per_category"]["rotation"]["n"] == manifest["rows"]["test"]
    for row in map(json.loads, (puzzles / "predictions.jsonl").read_text().splitlines()):
        scored = compute_score("ssl4rl/rotation", row["prediction"], row["answer"])  # the training verifier
        assert (row["acc"], row["format"]) == (scored["acc"], scored["format"])

    chart = tmp_path / "compare.png"
    assert main(["report", str(out), str(puzzles), "--out", str(chart)]) == 0
    assert Image.open(chart).size[0] > 300 and "| overall |" in capsys.readouterr().out
