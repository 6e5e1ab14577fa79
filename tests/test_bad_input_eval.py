"""Bad input at the evaluation layer: a row that cannot be asked as written is an error row
(counted, scored wrong, never asked), and a data file of the wrong kind is one line, exit 2."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from ssl4rl.cli import main
from ssl4rl.eval.questions import read_questions
from ssl4rl.eval.runner import benchmark_items, run
from test_eval import ScriptedBackend, png_b64

HEADER = ["index", "question", "A", "B", "answer", "category", "image"]


def write_tsv(path, rows: list[list[str]]):
    path.write_text("\n".join("\t".join(row) for row in [HEADER, *rows]) + "\n")
    return path


def test_rows_whose_image_is_missing_become_error_rows_and_are_never_asked(tmp_path):
    path = write_tsv(tmp_path / "bench.tsv", [
        ["0", "q0", "x", "y", "A", "c", png_b64(0)],
        ["1", "q1", "x", "y", "B", "c", "0"],  # a reference to row 0: fine
        ["2", "q2", "x", "y", "A", "c", "77"],  # a reference to an index that does not exist
        ["3", "q3", "x", "y", "A", "c", ""],  # no image at all
    ])  # fmt: skip
    questions = {q.index: q for q in read_questions(path)}
    assert questions["1"].images == questions["0"].images and questions["1"].problem is None
    assert "77" in questions["2"].problem and questions["3"].problem == "no image"
    asked = []
    backend = ScriptedBackend(lambda prompt: asked.append(prompt) or "<answer>A</answer>")
    summary = run(benchmark_items(str(path), None, None), backend, str(tmp_path / "out"))
    assert len(asked) == 2 and all("<image>" in prompt for prompt in asked)
    assert summary["questions"] == 4 and summary["errors"] == 2
    rows = {r["index"]: r for r in map(json.loads, (tmp_path / "out" / "predictions.jsonl").read_text().splitlines())}
    assert rows["2"]["correct"] is False and "77" in rows["2"]["error"] and rows["3"]["error"] == "no image"


def test_a_missing_image_path_is_an_error_row(tmp_path):
    header = ["index", "question", "A", "B", "answer", "image_path"]
    (tmp_path / "bench.tsv").write_text("\t".join(header) + "\n" + "\t".join(["0", "q", "x", "y", "A", "gone.png"]) + "\n")
    (question,) = read_questions(tmp_path / "bench.tsv")
    assert "gone.png" in question.problem


def test_a_csv_or_a_non_parquet_file_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "bench.csv").write_text("index,question,A,B,answer,image\n0,q,x,y,A,abc\n")
    (tmp_path / "fake.parquet").write_text("index,question\n")
    for data in ("bench.csv", "fake.parquet"):
        code = main(["eval", "--model", str(tmp_path / "none"), "--data", str(tmp_path / data), "--out", str(tmp_path / "o")])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and err.startswith("ssl4rl: error:") and data in err


def test_a_tsv_with_a_byte_order_mark_and_stray_bytes_reads(tmp_path):
    text = "\t".join(HEADER) + "\n" + "\t".join(["0", "caf\xe9", "x", "y", "A", "c", png_b64(0)]) + "\n"
    (tmp_path / "bench.tsv").write_bytes(b"\xef\xbb\xbf" + text.encode("latin-1"))
    (question,) = read_questions(tmp_path / "bench.tsv")
    assert question.index == "0" and question.problem is None


def test_parquet_rows_without_images_are_error_rows(tmp_path):
    table = pa.table({"index": [0, 1], "question": ["q", "q"], "A": ["x", "x"], "B": ["y", "y"], "answer": ["A", "A"], "image": [png_b64(0), None]})
    pq.write_table(table, tmp_path / "b.parquet")
    problems = [q.problem for q in read_questions(tmp_path / "b.parquet")]
    assert problems == [None, "no image"]
