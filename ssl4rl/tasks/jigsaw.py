"""Jigsaw: the image cut into a K x K grid, tiles shown as K*K separate images in shuffled order.

Answer format (the SSL4RL reference's semantics): for each grid position in row-major order,
the 1-based number of the shown tile that belongs there.

Worked example, K=2. Grid positions are 1=top-left, 2=top-right, 3=bottom-left,
4=bottom-right. If the tiles are shown in the order [bottom-left, top-right, top-left,
bottom-right], then the top-left piece is shown 3rd, top-right 2nd, bottom-left 1st and
bottom-right 4th, so the answer is `3,2,1,4`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from PIL import Image

from ssl4rl.errors import SkipItem
from ssl4rl.images import SourceImage
from ssl4rl.tasks.common import Puzzle, block_ceil, block_floor, extract_answer, image_list

MIN_TILE = 28  # Qwen2.5-VL's patch merger needs at least 28 px on a side


def tile_boxes(width: int, height: int, k: int, gap: float = 0.0) -> list[tuple[int, int, int, int]]:
    """Row-major tile boxes of a K x K grid whose cells are multiples of CUT_BLOCK px (the
    right/bottom remainder is dropped), so every tile of a JPEG source starts at the same
    8x8 / 16x16 block phase and the phase cannot tell a tile's column or row.

    A gap (fraction of the cell) is removed around each tile, so neighbouring edges no longer
    line up pixel for pixel; the inset is the same for every tile, so the phase stays shared.

    >>> tile_boxes(200, 150, 2)
    [(0, 0, 96, 64), (96, 0, 192, 64), (0, 64, 96, 128), (96, 64, 192, 128)]
    """
    cell_w, cell_h = block_floor(width // k), block_floor(height // k)
    inset_x, inset_y = int(round(cell_w * gap / 2)), int(round(cell_h * gap / 2))
    return [
        (c * cell_w + inset_x, r * cell_h + inset_y, (c + 1) * cell_w - inset_x, (r + 1) * cell_h - inset_y)
        for r in range(k)
        for c in range(k)
    ]


def cut_tiles(image: Image.Image, k: int, gap: float = 0.0) -> list[Image.Image]:
    """The tiles of `tile_boxes`, row-major."""
    return [image.crop(box) for box in tile_boxes(image.width, image.height, k, gap)]


def min_grid_side(k: int, gap: float = 0.0) -> int:
    """The smallest image side whose block-aligned cells hold tiles of at least MIN_TILE px.

    >>> min_grid_side(2), min_grid_side(4, 0.1), min_grid_side(2, 0.2)
    (64, 128, 96)
    """
    return block_ceil(MIN_TILE / (1.0 - gap)) * k


def assemble(tiles: list[Image.Image], k: int) -> Image.Image:
    """Inverse of cut_tiles (gap 0): row-major tiles back into one image."""
    tile_w, tile_h = tiles[0].size
    canvas = Image.new("RGB", (tile_w * k, tile_h * k))
    for position, tile in enumerate(tiles):
        canvas.paste(tile, ((position % k) * tile_w, (position // k) * tile_h))
    return canvas


_TOKEN = re.compile(r"\d+|\S")  # no nested quantifiers: one pass, linear in the text


def numbers_in(text: str) -> list[int] | None:
    """Numbers of 1-3 digits separated by whitespace, one ',' or one ';', optionally in [] or ()
    and followed by '.'; None for anything else.

    A tokenizer instead of one regular expression: `\\s*[,;\\s]\\s*` can split a whitespace run
    in many ways, and a failing match then backtracks exponentially.

    >>> numbers_in("[3, 1;4 2]."), numbers_in("3,,1"), numbers_in("1234")
    ([3, 1, 4, 2], None, None)
    """
    text = text.strip()
    text = text[:-1] if text.endswith(".") else text
    text = text[1:] if text.startswith(("[", "(")) else text
    text = text[:-1] if text.endswith(("]", ")")) else text
    numbers: list[int] = []
    after_separator = False
    for match in _TOKEN.finditer(text):  # stops at the first token that does not fit
        token = match.group()
        if token.isdecimal() and len(token) <= 3:
            numbers.append(int(token))
            after_separator = False
        elif token in (",", ";") and numbers and not after_separator:
            after_separator = True
        else:
            return None
    return numbers if numbers and not after_separator else None


@dataclass
class Jigsaw:
    """Put shuffled tiles back in their grid positions."""

    grid: int = 2  # K: the image becomes K x K tiles
    gap: float = 0.0  # fraction of each cell removed around its tile (0 = touching edges)

    name: ClassVar[str] = "jigsaw"
    partners: ClassVar[int] = 0
    DIFFICULTY: ClassVar[dict] = {"easy": {"grid": 2}, "medium": {"grid": 3}, "hard": {"grid": 4, "gap": 0.1}}

    def __post_init__(self):
        if not 2 <= self.grid <= 6:
            raise ValueError(f"grid must be between 2 and 6 (got {self.grid})")
        if not 0.0 <= self.gap < 0.5:
            raise ValueError(f"gap must be in [0, 0.5) (got {self.gap})")

    @property
    def min_side(self) -> int:
        return min_grid_side(self.grid, self.gap)

    def prompt_vars(self) -> dict:
        return {"tiles": image_list("Tile", self.grid**2), "k": self.grid, "n": self.grid**2}

    def sizes_at_most(self, width: int, height: int) -> list[tuple[int, int]]:
        """The tiles' sizes for a width x height source (all alike): the builder fits the token
        budget from these before making the puzzle (ssl4rl.prescale)."""
        left, top, right, bottom = tile_boxes(width, height, self.grid, self.gap)[0]
        return [(right - left, bottom - top)] * self.grid**2

    def make(self, rng: np.random.Generator, source: SourceImage, others=()) -> Puzzle:
        k = self.grid
        tiles = cut_tiles(source.pixels, k, self.gap)
        if min(tiles[0].size) < MIN_TILE:  # only under min_side, which the builder skips earlier
            raise SkipItem("too-small")
        shown_order = rng.permutation(k * k)  # shown_order[i] = grid position of the i-th shown tile
        answer = np.empty(k * k, dtype=int)
        answer[shown_order] = np.arange(1, k * k + 1)  # answer[position] = 1-based shown index
        return Puzzle(
            images=[tiles[p] for p in shown_order],
            answer=",".join(map(str, answer)),
            prompt_vars=self.prompt_vars(),
            params={"grid": k},
        )

    @staticmethod
    def parse(response: str) -> list[int] | None:
        """The answered tile numbers, in grid order.

        >>> [Jigsaw.parse(f"<answer>{a}</answer>") for a in ("3,1,4,2", "3, 1, 4, 2", "[3,1,4,2]", "3 1 4 2")]
        [[3, 1, 4, 2], [3, 1, 4, 2], [3, 1, 4, 2], [3, 1, 4, 2]]
        """
        text = extract_answer(response)
        return None if text is None else numbers_in(text)

    @classmethod
    def score(cls, response: str, ground_truth: str, params: dict | None = None) -> float:
        """Fraction of grid positions right, only for a valid permutation of 1..K*K."""
        truth = [int(n) for n in ground_truth.split(",")]
        answer = cls.parse(response)
        if answer is None or sorted(answer) != list(range(1, len(truth) + 1)):
            return 0.0
        return sum(a == t for a, t in zip(answer, truth)) / len(truth)
