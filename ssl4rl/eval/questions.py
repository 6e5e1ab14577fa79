"""Multiple-choice questions from VLMEvalKit TSVs and Hugging Face dataset files, in one shape.

VLMEvalKit TSV (MMBench_DEV_EN, SEEDBench_IMG, MMStar, RealWorldQA, BLINK): `index`,
`question`, option columns `A`, `B`, ..., `answer` (a letter), optional `hint`, `category`,
`l2-category`/`l2_category`; `image` is base64, a list of them (BLINK), or the index of another
row whose image it reuses (MMBench's circular copies). Hugging Face files (parquet): the same
columns (HuggingFaceM4/MMBench, base64 images) or `choice_a`..`choice_d` (lmms-lab/SEED-Bench),
images as `datasets.Image` values or lists of them.
"""

from __future__ import annotations

import ast
import base64
import binascii
import csv
import math
import string
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ssl4rl.errors import UserError
from ssl4rl.sources.tsv import REFERENCE_MAX_CHARS
from ssl4rl.tasks.common import IMAGE_PLACEHOLDER

# `--bench` names: the benchmarks whose VLMEvalKit files the readers know (mmbench: circular).
BENCHMARKS = ("mmbench", "seedbench", "mmstar", "realworldqa", "blink", "mme-realworld")
CIRCULAR_OFFSET = 1_000_000  # VLMEvalKit: circular copies of question i have index i + k * 1e6
LETTERS = string.ascii_uppercase[:10]


@dataclass
class Question:
    index: str
    question: str
    options: dict[str, str]
    answer: str
    images: list[bytes]
    hint: str = ""
    category: str = ""
    l2_category: str = ""
    extra: dict = field(default_factory=dict)
    problem: str | None = None  # why the question cannot be asked as written (then it is an error row)

    @property
    def group(self) -> str:
        """The circular group: the original question's index."""
        try:
            return str(int(float(self.index)) % CIRCULAR_OFFSET)
        except ValueError:
            return self.index


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() in ("", "nan", "None")


def _text(value) -> str:
    return "" if _blank(value) else str(value).strip()


def _options(row: dict) -> dict[str, str]:
    options = {letter: _text(row.get(letter)) for letter in LETTERS if not _blank(row.get(letter))}
    if not options:  # lmms-lab/SEED-Bench style
        options = {letter: _text(row.get(f"choice_{letter.lower()}")) for letter in LETTERS if not _blank(row.get(f"choice_{letter.lower()}"))}
    return options


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        return b""


def _image_values(value) -> list[bytes]:
    """bytes of each image in a TSV string, a datasets.Image struct, or a list of either."""
    if _blank(value):
        return []
    if isinstance(value, list):
        return [data for item in value for data in _image_values(item)]
    if isinstance(value, dict):
        if value.get("bytes"):
            return [value["bytes"]]
        return [Path(value["path"]).read_bytes()] if value.get("path") and Path(value["path"]).is_file() else [b""]
    if isinstance(value, (bytes, bytearray)):
        return [bytes(value)]
    text = str(value).strip()
    if text.startswith("["):
        try:
            return [data for item in ast.literal_eval(text) for data in _image_values(item)]
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return [b""]
    return [_b64(text)]


def _question(row: dict, images: list[bytes], where: str, problem: str | None = None) -> Question:
    options = _options(row)
    answer = _text(row.get("answer")).upper()
    if answer not in options:
        raise UserError(f"{where}: question {row.get('index')} has answer {answer!r}, not one of its options {sorted(options)}")
    return Question(
        index=_text(row.get("index")),
        question=_text(row.get("question")),
        options=options,
        answer=answer,
        images=images,
        hint=_text(row.get("hint")),
        category=_text(row.get("category") or row.get("question_type_id") or row.get("data_type")),
        l2_category=_text(row.get("l2-category") or row.get("l2_category")),
        problem=problem or (None if images else "no image"),
    )


REQUIRED = ("question", "answer")


def _check_columns(columns: list[str], where: Path) -> None:
    missing = [c for c in REQUIRED if c not in columns]
    has_options = "A" in columns or "choice_a" in columns
    has_images = any(c in columns for c in ("image", "images", "image_path"))
    if missing or not has_options or not has_images:
        needs = missing + ([] if has_options else ["A/B/... or choice_a/..."]) + ([] if has_images else ["image"])
        raise UserError(f"{where}: missing column(s) {', '.join(needs)} (columns: {', '.join(columns)})")


def read_tsv(path: Path) -> list[Question]:
    csv.field_size_limit(sys.maxsize)
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows:
        raise UserError(f"{path}: no rows")
    _check_columns(list(rows[0]), path)
    if "index" not in rows[0]:
        for i, row in enumerate(rows):
            row["index"] = str(i)
    by_index = {row["index"]: row.get("image", "") for row in rows}
    questions = []
    for row in rows:
        image, problem = row.get("image", ""), None
        if not _blank(image) and len(str(image)) <= REFERENCE_MAX_CHARS:
            reference = str(image).strip()
            image = by_index.get(reference, "")  # an index: the image of that row
            problem = None if not _blank(image) else f"image refers to index {reference}, which has no image"
        if _blank(image) and row.get("image_path"):
            path_value = path.parent / row["image_path"]
            image = base64.b64encode(path_value.read_bytes()).decode() if path_value.is_file() else ""
            problem = None if image else f"image file {row['image_path']} not found"
        questions.append(_question(row, _image_values(image), str(path), problem))
    return questions


def read_parquet(path: Path) -> list[Question]:
    import pyarrow.parquet as pq

    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    if not files:
        raise UserError(f"{path}: no .parquet files")
    questions = []
    for file in files:
        try:
            table = pq.read_table(file)
        except (OSError, ValueError) as error:  # ArrowInvalid is a ValueError
            raise UserError(f"{file}: not a readable parquet file ({error})") from None
        _check_columns(table.column_names, file)
        image_column = next(c for c in ("image", "images") if c in table.column_names)
        for i, row in enumerate(table.to_pylist()):
            row.setdefault("index", i)
            questions.append(_question(row, _image_values(row[image_column]), str(file)))
    return questions


def read_questions(data: str | Path, limit: int | None = None) -> list[Question]:
    path = Path(data)
    if not path.exists():
        raise UserError(f"{data}: no such file or folder")
    if path.is_file() and path.suffix.lower() not in (".tsv", ".parquet"):
        raise UserError(f"{data}: not a .tsv or .parquet file (or a folder of parquet files)")
    questions = read_tsv(path) if path.suffix.lower() == ".tsv" else read_parquet(path)
    return questions[:limit] if limit else questions


def load_mcq_template(path: str | None = None) -> str:
    prompts = resources.files("ssl4rl.configs") / "prompts"
    body = (open(path).read() if path else (prompts / "mcq.txt").read_text()).strip()
    return body + "\n\n" + (prompts / "answer_format.txt").read_text().strip()


def mcq_prompt(question: Question, template: str) -> str:
    """Image markers first, then hint, question and lettered options, then the CoT instruction.

    >>> q = Question("1", "What is it?", {"A": "cat", "B": "dog"}, "A", [b"x"], hint="A pet.")
    >>> print(mcq_prompt(q, "{hint}Question: {question}\\nOptions:\\n{options}"))
    <image>
    Hint: A pet.
    Question: What is it?
    Options:
    A. cat
    B. dog
    """
    options = "\n".join(f"{letter}. {text}" for letter, text in question.options.items())
    hint = f"Hint: {question.hint}\n" if question.hint else ""
    markers = "".join(f"{IMAGE_PLACEHOLDER}\n" for _ in question.images)
    return markers + template.format(hint=hint, question=question.question, options=options)
