"""What every puzzle shares: the Puzzle record, seeding, prompt templates and answer parsing.

A task is a small dataclass whose fields are its options. `make(rng, source, others)` samples
the random parameters first and renders the images from them, so the parameters are the label;
`score(response, ground_truth)` verifies a model's answer against that label.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

IMAGE_PLACEHOLDER = "<image>"


@dataclass
class Puzzle:
    images: list[Image.Image | bytes]  # bytes: a source image shown untouched
    answer: str  # the ground truth, exactly as a correct model would write it
    prompt_vars: dict[str, Any] = field(default_factory=dict)  # fills the task's prompt template
    params: dict[str, Any] = field(default_factory=dict)  # what the verifier needs (JSON-able)


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from (global seed, task, sample id, ...): stable across runs and workers."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def rng_for(*parts: object) -> np.random.Generator:
    return np.random.default_rng(derive_seed(*parts))


def load_template(task_name: str, path: str | None = None) -> str:
    """The editable prompt template configs/prompts/<task>.txt (or the file `path`, or
    `path`/<task>.txt when it is a folder: one per task of a mix) plus the shared answer format,
    unless the template states its own (it shows `<answer>`): a short prompt for a small model
    must not pay ~100 tokens of instructions on every row.

    >>> load_template("rotation").endswith("<answer> your answer </answer>")
    True
    """
    prompts = resources.files("ssl4rl.configs") / "prompts"
    if path and Path(path).is_dir():
        path = str(Path(path) / f"{task_name}.txt")
    body = (open(path).read() if path else (prompts / f"{task_name}.txt").read_text()).strip()
    if "<answer>" in body.lower():
        return body
    answer_format = (prompts / "answer_format.txt").read_text().strip()
    return f"{body}\n\n{answer_format}"


def image_list(label: str, count: int) -> str:
    """'Tile 1: <image>' lines, one per image, for templates that show a variable number."""
    return "\n".join(f"{label} {i}: {IMAGE_PLACEHOLDER}" for i in range(1, count + 1))


_CLOSE = re.compile(r"<\s*/\s*answer\s*>", re.IGNORECASE)
_OPEN = re.compile(r"<\s*answer\s*>", re.IGNORECASE)


def extract_answer(response: str) -> str | None:
    """The text of the last <answer>...</answer> block, stripped; None when there is none.

    >>> extract_answer("<think>maybe 90</think> <answer> 180 </answer>")
    '180'
    >>> extract_answer("<ANSWER>a</Answer> then <answer>b</answer>")
    'b'
    >>> extract_answer("no tags") is None
    True
    """
    if not isinstance(response, str):
        return None
    last_close = None
    for last_close in _CLOSE.finditer(response):
        pass
    if last_close is None:
        return None
    head = response[: last_close.start()]
    last_open = None
    for last_open in _OPEN.finditer(head):
        pass
    if last_open is None:
        return None
    return head[last_open.end() :].strip()


CUT_BLOCK = 16  # JPEG's largest block (a 4:2:0 MCU): cuts on this grid keep every piece at one block phase


def block_floor(length: int) -> int:
    """The largest multiple of CUT_BLOCK not above `length`.

    >>> block_floor(75), block_floor(64), block_floor(15)
    (64, 64, 0)
    """
    return length - length % CUT_BLOCK


def block_ceil(length: float) -> int:
    """The smallest multiple of CUT_BLOCK not below `length`.

    >>> block_ceil(28), block_ceil(32.0)
    (32, 32)
    """
    return -int(-length // CUT_BLOCK) * CUT_BLOCK


LETTERS = "ABCDEFGHIJ"


def parse_letter(response: str, count: int) -> str | None:
    """The answered option letter among the first `count` letters, for multiple-choice puzzles.

    >>> [parse_letter(f"<answer>{a}</answer>", 4) for a in ("B", "(c)", "D.", "E", "AB")]
    ['B', 'C', 'D', None, None]
    """
    text = extract_answer(response)
    if text is None:
        return None
    letter = text.strip().strip("().[]:").strip().upper()
    return letter if len(letter) == 1 and letter in LETTERS[:count] else None


MAX_CANDIDATES = 8  # multiple-choice puzzles offer 2..8 lettered candidates


def candidate_lines(count: int) -> str:
    """'Candidate A: <image>' lines, one per candidate.

    >>> print(candidate_lines(2))
    Candidate A: <image>
    Candidate B: <image>
    """
    return "\n".join(f"Candidate {LETTERS[i]}: {IMAGE_PLACEHOLDER}" for i in range(count))


def letter_choices(count: int) -> str:
    """'A, B or C'.

    >>> letter_choices(2), letter_choices(4)
    ('A or B', 'A, B, C or D')
    """
    letters = list(LETTERS[:count])
    return f"{', '.join(letters[:-1])} or {letters[-1]}"


def candidate_prompt_vars(count: int) -> dict:
    """Template fields of a lettered-candidate puzzle: {k}, {candidates} (image lines), {letters}."""
    return {"k": count, "candidates": candidate_lines(count), "letters": letter_choices(count)}


def count_from(params: dict | None, default: int = MAX_CANDIDATES) -> int:
    """The number of candidates recorded in params, or `default` when params are missing or odd."""
    try:
        count = int(params["candidates"])  # type: ignore[index]
    except (TypeError, KeyError, ValueError, OverflowError):
        return default
    return count if 2 <= count <= MAX_CANDIDATES else default


class LetterAnswer:
    """parse/score for puzzles answered with one candidate letter (params['candidates'] = K).

    >>> LetterAnswer.parse("<answer>(b)</answer>"), LetterAnswer.score("<answer>B</answer>", "B", {"candidates": 4})
    ('B', 1.0)
    >>> LetterAnswer.score("<answer>E</answer>", "E", {"candidates": 4}), LetterAnswer.score(None, "A", {"candidates": "x"})
    (0.0, 0.0)
    """

    @staticmethod
    def parse(response: str) -> str | None:
        return parse_letter(response, MAX_CANDIDATES)

    @classmethod
    def score(cls, response: str, ground_truth: str, params: dict | None = None) -> float:
        """1.0 for the right letter among the puzzle's K candidates, else 0.0; never raises."""
        return float(parse_letter(response, count_from(params)) == ground_truth)
