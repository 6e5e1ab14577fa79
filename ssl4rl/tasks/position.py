"""Position: the full image and a crop from one cell of an N x N grid; answer the cell's name.

The crop's side is a random 20-80 % of the cell's (kept at least 28 px), placed uniformly
inside the cell, so it never straddles a cell border. Optional photometric augmentation
(colour jitter, grayscale, blur) stops pixel-exact template matching.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ssl4rl.errors import SkipItem
from ssl4rl.images import SourceImage
from ssl4rl.tasks.augment import PRESETS, augment
from ssl4rl.tasks.common import Puzzle, extract_answer

MIN_CROP = 28
ROW_NAMES = {2: ["top", "bottom"], 3: ["top", "middle", "bottom"]}
COLUMN_NAMES = {2: ["left", "right"], 3: ["left", "center", "right"]}


def cell_names(grid: int) -> list[str]:
    """Row-major cell names.

    >>> cell_names(2)
    ['top-left', 'top-right', 'bottom-left', 'bottom-right']
    >>> cell_names(3)[4]
    'middle-center'
    """
    return [f"{row}-{col}" for row in ROW_NAMES[grid] for col in COLUMN_NAMES[grid]]


def cell_box(width: int, height: int, grid: int, cell: int) -> tuple[int, int, int, int]:
    row, col = divmod(cell, grid)
    return col * width // grid, row * height // grid, (col + 1) * width // grid, (row + 1) * height // grid


@dataclass
class Position:
    """Say which grid cell a crop was taken from."""

    grid: int = 2  # N: 2 (four corners) or 3 (adds middle/center cells)
    min_crop: float = 0.2  # smallest crop side as a fraction of the cell side
    max_crop: float = 0.8  # largest crop side as a fraction of the cell side
    augment: bool = False  # colour jitter / grayscale / blur on the crop

    name: ClassVar[str] = "position"
    partners: ClassVar[int] = 0
    DIFFICULTY: ClassVar[dict] = {
        "easy": {"grid": 2, "min_crop": 0.5, "max_crop": 0.8},
        "medium": {"grid": 2, "min_crop": 0.2, "max_crop": 0.8},
        "hard": {"grid": 3, "min_crop": 0.2, "max_crop": 0.5, "augment": True},
    }

    def __post_init__(self):
        if self.grid not in ROW_NAMES:
            raise ValueError(f"grid must be 2 or 3 (got {self.grid})")
        if not 0 < self.min_crop <= self.max_crop <= 1:
            raise ValueError(f"need 0 < min_crop <= max_crop <= 1 (got {self.min_crop}, {self.max_crop})")

    @property
    def min_side(self) -> int:
        return int(np.ceil(MIN_CROP / self.max_crop)) * self.grid

    def prompt_vars(self) -> dict:
        return {"names": ", ".join(cell_names(self.grid)), "grid": self.grid}

    def sizes_at_most(self, width: int, height: int) -> list[tuple[int, int]]:
        """The largest the puzzle's images can be for a width x height source (the full image,
        the largest crop of the widest cell): the builder fits the token budget from these
        before making the puzzle (ssl4rl.prescale)."""
        cell_w, cell_h = -(-width // self.grid), -(-height // self.grid)
        return [(width, height), (max(MIN_CROP, int(self.max_crop * cell_w)), max(MIN_CROP, int(self.max_crop * cell_h)))]

    def make(self, rng: np.random.Generator, source: SourceImage, others=()) -> Puzzle:
        names = cell_names(self.grid)
        cell = int(rng.integers(len(names)))
        left, top, right, bottom = cell_box(*source.size, self.grid, cell)
        cell_w, cell_h = right - left, bottom - top
        low = max(self.min_crop, MIN_CROP / min(cell_w, cell_h))
        if low > self.max_crop:
            raise SkipItem("too-small")
        fraction = rng.uniform(low, self.max_crop)
        crop_w, crop_h = max(MIN_CROP, int(fraction * cell_w)), max(MIN_CROP, int(fraction * cell_h))
        x = left + int(rng.integers(0, cell_w - crop_w + 1))
        y = top + int(rng.integers(0, cell_h - crop_h + 1))
        crop = source.pixels.crop((x, y, x + crop_w, y + crop_h))
        if self.augment:
            crop = augment(rng, crop, PRESETS["light"])
        return Puzzle(
            images=[source.original(), crop],
            answer=names[cell],
            prompt_vars=self.prompt_vars(),
            params={"grid": self.grid, "box": [x, y, x + crop_w, y + crop_h]},
        )

    @staticmethod
    def parse(response: str) -> str | None:
        """The answered cell name, normalised.

        >>> [Position.parse(f"<answer>{a}</answer>") for a in ("top left", "Top-Left", "top_left")]
        ['top-left', 'top-left', 'top-left']
        """
        text = extract_answer(response)
        if text is None:
            return None
        return re.sub(r"[\s_\-]+", "-", text.strip().strip(".").lower()) or None

    @classmethod
    def score(cls, response: str, ground_truth: str, params: dict | None = None) -> float:
        return float(cls.parse(response) == ground_truth)
