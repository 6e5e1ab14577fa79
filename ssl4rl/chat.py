"""A puzzle row as chat messages: the form TRL, Hugging Face `generate` and vLLM take.

The verl row keeps `<image>` markers in its prompt text; a chat template wants image parts in
place. A text model (graph puzzles) keeps the prompt as one plain user turn and has no images.
"""

from __future__ import annotations

from pathlib import Path

from ssl4rl.errors import UserError
from ssl4rl.schema import split_files
from ssl4rl.tasks.common import IMAGE_PLACEHOLDER


def to_trl_prompt(text: str) -> list[dict]:
    """One user turn whose `<image>` markers become image parts, in place.

    >>> to_trl_prompt("Image 1: <image> and <image>?")[0]["content"]
    [{'type': 'text', 'text': 'Image 1: '}, {'type': 'image', 'text': None}, {'type': 'text', 'text': ' and '}, {'type': 'image', 'text': None}, {'type': 'text', 'text': '?'}]
    """
    parts: list[dict] = []
    for i, chunk in enumerate(text.split(IMAGE_PLACEHOLDER)):
        if i:
            parts.append({"type": "image", "text": None})
        if chunk:
            parts.append({"type": "text", "text": chunk})
    return [{"role": "user", "content": parts}]


def load_split(data_dir: str | Path, split: str, text_only: bool = False):
    """The build folder's split as a datasets.Dataset in TRL's format. text_only (a text model,
    graph puzzles): the prompt stays one plain user turn and the empty `images` column goes;
    a row with images is an error."""
    import datasets

    files = [str(p) for p in split_files(data_dir, split)]
    if not files:
        raise UserError(f"{data_dir}: no {split}-*.parquet files (build a puzzle set with `ssl4rl build` first)")
    if text_only:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        if any(pc.max(pc.list_value_length(pq.read_table(f, columns=["images"]).column("images"))).as_py() for f in files):
            raise UserError(f"{data_dir}: its puzzles show images, and a text model cannot see them: train a vision-language model, or build graph puzzles")
    data = datasets.load_dataset("parquet", data_files=files, split="train")
    if text_only:
        data = data.remove_columns("images")
        return data.map(lambda row: {"prompt": [{"role": "user", "content": row["prompt"][0]["content"]}]})
    data = data.cast_column("images", datasets.Sequence(datasets.Image()))
    return data.map(lambda row: {"prompt": to_trl_prompt(row["prompt"][0]["content"])})
