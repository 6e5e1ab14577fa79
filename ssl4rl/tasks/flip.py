"""Flip recognition (Spatial-SSRL): K patches of one image, exactly one of them mirrored; answer
the mirrored patch's letter.

Shortcut controls: the patches are square, all the same size and non-overlapping (one per cell
of a grid, jittered inside its cell), so size and overlap say nothing; the mirrored one's
letter is drawn uniformly. A mirrored patch that looks the same as its mirror (mean absolute
difference under `min_asymmetry`) would make the answer unrecoverable, and if only the mirrored
patch had to pass that test, flat patches would never be the answer: so EVERY patch must pass
it; the layout is drawn again a few times, then the image is skipped as 'symmetric'. Patch
corners and sides are multiples of 16 px, so a JPEG source's 8x8 block grid lines up the same
way in a mirrored patch as in the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from PIL import Image

from ssl4rl.errors import SkipItem
from ssl4rl.images import SourceImage
from ssl4rl.tasks.common import CUT_BLOCK, IMAGE_PLACEHOLDER, LETTERS, Puzzle, block_ceil, block_floor, parse_letter

MIN_PATCH = 28
TRIES = 8
AXES = ("horizontal", "vertical", "random")
_TRANSPOSE = {"horizontal": Image.Transpose.FLIP_LEFT_RIGHT, "vertical": Image.Transpose.FLIP_TOP_BOTTOM}
_MIRROR_WORDS = {
    "horizontal": "mirrored left to right",
    "vertical": "mirrored top to bottom",
    "random": "mirrored left to right or top to bottom",
}


def mirror(image: Image.Image, axis: str) -> Image.Image:
    """Exact pixel mirror: 'horizontal' swaps left and right, 'vertical' top and bottom."""
    return image.transpose(_TRANSPOSE[axis])


def asymmetry(image: Image.Image, axis: str) -> float:
    """Mean absolute difference (0..255) between an image and its mirror.

    >>> asymmetry(Image.new("RGB", (30, 30), (9, 9, 9)), "horizontal")
    0.0
    """
    pixels = np.asarray(image, dtype=np.int16)
    flipped = pixels[:, ::-1] if axis == "horizontal" else pixels[::-1]
    return float(np.abs(pixels - flipped).mean())


def _cells(width: int, height: int, side: int) -> tuple[int, int, int, int]:
    """Columns, rows and cell size (in CUT_BLOCK units) of the grid that holds one patch of `side`
    px (a multiple of CUT_BLOCK) per cell."""
    units_w, units_h, units_side = width // CUT_BLOCK, height // CUT_BLOCK, side // CUT_BLOCK
    cols, rows = units_w // units_side, units_h // units_side
    return cols, rows, units_w // cols, units_h // rows


@dataclass
class Flip:
    """Find the one mirrored patch among K patches of an image."""

    candidates: int = 4  # K: patches shown
    patch: float = 0.4  # patch side as a fraction of the image's shorter side
    axis: str = "horizontal"  # 'horizontal', 'vertical' or 'random' (each puzzle picks one)
    min_asymmetry: float = 8.0  # every patch must differ from its mirror by this mean |diff|

    name: ClassVar[str] = "flip"
    partners: ClassVar[int] = 0
    DIFFICULTY: ClassVar[dict[str, dict]] = {
        "easy": {"candidates": 2, "patch": 0.5},
        "medium": {},
        "hard": {"candidates": 6, "patch": 0.25},
    }

    def __post_init__(self):
        if not 2 <= self.candidates <= len(LETTERS):
            raise ValueError(f"candidates must be between 2 and {len(LETTERS)} (got {self.candidates})")
        if not 0 < self.patch <= 0.5:
            raise ValueError(f"patch must be in (0, 0.5] (got {self.patch})")
        per_side = int(1 / self.patch + 1e-9)
        if per_side * per_side < self.candidates:
            raise ValueError(
                f"{self.candidates} non-overlapping patches of side {self.patch} do not fit in a square image "
                f"(at most {per_side * per_side}); use a smaller patch"
            )
        if self.axis not in AXES:
            raise ValueError(f"axis must be one of {', '.join(AXES)} (got {self.axis!r})")
        if not 0 <= self.min_asymmetry < 255:
            raise ValueError(f"min_asymmetry must be in [0, 255) (got {self.min_asymmetry})")

    @property
    def min_side(self) -> int:
        return int(np.ceil(block_ceil(MIN_PATCH) / self.patch - 1e-9))

    def _draw(self, rng: np.random.Generator, width: int, height: int, side: int):
        """One random layout: K boxes in distinct cells, the mirrored index and the axis."""
        cols, rows, cell_w, cell_h = _cells(width, height, side)
        cells = rng.choice(cols * rows, size=self.candidates, replace=False)
        units = side // CUT_BLOCK
        boxes = []
        for cell in cells:
            row, col = divmod(int(cell), cols)
            x = CUT_BLOCK * (col * cell_w + int(rng.integers(0, cell_w - units + 1)))
            y = CUT_BLOCK * (row * cell_h + int(rng.integers(0, cell_h - units + 1)))
            boxes.append((x, y, x + side, y + side))
        flipped = int(rng.integers(self.candidates))
        axis = self.axis if self.axis != "random" else ("horizontal", "vertical")[int(rng.integers(2))]
        return boxes, flipped, axis

    def make(self, rng: np.random.Generator, source: SourceImage, others=()) -> Puzzle:
        width, height = source.size
        side = block_floor(int(self.patch * min(width, height) + 1e-9))
        cols, rows, _, _ = _cells(width, height, max(side, CUT_BLOCK))
        if side < MIN_PATCH or cols * rows < self.candidates:
            raise SkipItem("too-small")
        for _ in range(TRIES):
            boxes, flipped, axis = self._draw(rng, width, height, side)
            if all(asymmetry(source.pixels.crop(box), axis) >= self.min_asymmetry for box in boxes):
                break
        else:
            raise SkipItem("symmetric")
        patches = [source.pixels.crop(box) for box in boxes]
        patches[flipped] = mirror(patches[flipped], axis)
        letters = LETTERS[: self.candidates]
        return Puzzle(
            images=patches,
            answer=letters[flipped],
            prompt_vars={
                "patches": "\n".join(f"Patch {letter}: {IMAGE_PLACEHOLDER}" for letter in letters),
                "n": self.candidates,
                "letters": ", ".join(letters),
                "mirror": _MIRROR_WORDS[self.axis],
            },
            params={"boxes": [list(box) for box in boxes], "flipped": flipped, "axis": axis},
        )

    @staticmethod
    def parse(response: str) -> str | None:
        """The answered patch letter, or None.

        >>> [Flip.parse(f"<answer>{a}</answer>") for a in ("B", "(c)", "d.", "patch B")]
        ['B', 'C', 'D', None]
        """
        return parse_letter(response, len(LETTERS))

    @classmethod
    def score(cls, response: str, ground_truth: str, params: dict | None = None) -> float:
        """1.0 for the mirrored patch's letter (among the K shown, when params tell K), else 0.0.

        >>> Flip.score("<answer>b</answer>", "B"), Flip.score("<answer>E</answer>", "B", {"boxes": [[0, 0, 1, 1]] * 4})
        (1.0, 0.0)
        """
        count = len(LETTERS)
        if isinstance(params, dict) and isinstance(params.get("boxes"), list) and params["boxes"]:
            count = min(len(params["boxes"]), len(LETTERS))
        return float(parse_letter(response, count) == ground_truth)
