"""A build's longest text prompts counted in the model's own tokens, as verl counts them.

The manifest's lengths are the build's count: exact only when it was built with `--processor` of
the model that trains. Graph builds use a calibrated estimate of Qwen's tokenizer, and a less
efficient tokenizer spends more tokens on the same text, so verl's `filter_overlong_prompts`
would drop rows without a word. Counting every row would be slow on large builds, so the rows are
ranked by the estimate (the prompt column only), the `top` longest of each split are tokenized
with the model's processor through its chat template (`ssl4rl.budget`, verl's way for a text
row), and further rows too while their estimate, scaled by the largest exact / estimate ratio
seen and a margin, could still pass the limit. Rows with images are not counted here: their
text is counted by an upper bound (UTF-8 bytes) unless the build was counted exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ssl4rl.budget import TokenBudget
from ssl4rl.schema import DATA_SOURCE_PREFIX, split_files
from ssl4rl.tasks import is_graph_task

TOP = 64  # rows of each split tokenized whatever their estimate
MARGIN = 1.2  # on the largest exact / estimate ratio seen, before a row is taken to fit


@dataclass
class SplitLengths:
    """One split's text rows: how many, how many were tokenized, how many are over the limit."""

    split: str
    rows: int
    counted: int
    over: int
    longest: int  # exact, among the rows counted


def text_prompts(data: Path, split: str) -> list[str]:
    """The user turns of a split's rows whose task shows no images (graph puzzles)."""
    import pyarrow.parquet as pq

    prompts = []
    for path in split_files(data, split):
        table = pq.read_table(path, columns=["data_source", "prompt"])
        for source, prompt in zip(table.column("data_source").to_pylist(), table.column("prompt").to_pylist()):
            if is_graph_task(str(source).removeprefix(DATA_SOURCE_PREFIX)):
                prompts.append(prompt[-1]["content"])
    return prompts


def exact_lengths(prompts: list[str], tokenizer: TokenBudget, limit: int, top: int = TOP, margin: float = MARGIN) -> tuple[int, int, int]:
    """(rows counted, rows over `limit`, longest exact count) for prompts ranked by the estimate."""
    estimate = TokenBudget(estimate=True)
    ranked = sorted(((estimate.text_tokens(p), p) for p in prompts), key=lambda pair: pair[0], reverse=True)
    counted = over = longest = 0
    ratio = 0.0
    for guess, prompt in ranked:
        if counted >= top and guess * ratio * margin <= limit:
            break  # sorted: every later row is shorter by the estimate
        exact = tokenizer.text_tokens(prompt)
        counted, over, longest = counted + 1, over + (exact > limit), max(longest, exact)
        ratio = max(ratio, exact / max(guess, 1))
    return counted, over, longest


def split_lengths(data: Path, model: str, limit: int, splits=("train", "test")) -> list[SplitLengths]:
    """Each split's text rows counted with `model`'s processor; raises OSError / ValueError /
    ImportError when it cannot be loaded (no such folder, not in the hub cache, no transformers)."""
    tokenizer = None
    results = []
    for split in splits:
        prompts = text_prompts(data, split)
        if not prompts:
            continue
        tokenizer = tokenizer or TokenBudget.from_processor(model, limit)
        results.append(SplitLengths(split, len(prompts), *exact_lengths(prompts, tokenizer, limit)))
    return results
