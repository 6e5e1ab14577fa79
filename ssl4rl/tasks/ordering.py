"""Patch ordering (SSL-R1 / Jigsaw-R1, single-image form): the image cut into a K x K grid, the
tiles shuffled and composed back into ONE image, each tile marked with its number.

Numbers follow the shuffled image in row-major order (the top-left tile of the shown image is 1).
Answer format (as jigsaw): for each grid position of the ORIGINAL image in row-major order, the
number drawn on the tile that belongs there.

Shortcut controls: the label is the same box (size and corner) on every tile, sized from the
widest number, so its shape says nothing about the tile; the tiles keep their exact pixels
outside the label box, so the answer is recoverable from the image. Tiles are cut on a 16-px
block grid (jigsaw's `tile_boxes`), so a JPEG source's block phase is the same in every tile. Optional thin separator
lines show the grid without changing any tile pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ssl4rl.errors import SkipItem
from ssl4rl.images import SourceImage
from ssl4rl.tasks.common import Puzzle
from ssl4rl.tasks.jigsaw import MIN_TILE, Jigsaw, cut_tiles, min_grid_side

LABEL_FILL, LABEL_INK, SEPARATOR_COLOR = (255, 255, 255), (0, 0, 0), (255, 255, 255)


def _font(tile_w: int, tile_h: int):
    """The label font, sized relative to the tile (at least 10 px)."""
    return ImageFont.load_default(size=max(10, round(0.18 * min(tile_w, tile_h))))


def label_layout(tile_w: int, tile_h: int, count: int) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
    """The label box (x0, y0, x1, y1; half-open, relative to the tile's top-left corner) and the
    point where each number is drawn centred ('mm' anchor). One box for all of 1..count.

    >>> box, _ = label_layout(100, 100, 9)
    >>> box[:2], 0 < box[2] < 50, 0 < box[3] < 50
    ((0, 0), True, True)
    """
    font = _font(tile_w, tile_h)
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    boxes = [draw.textbbox((0, 0), str(n), font=font, anchor="mm") for n in range(1, count + 1)]
    left, top = min(b[0] for b in boxes), min(b[1] for b in boxes)
    right, bottom = max(b[2] for b in boxes), max(b[3] for b in boxes)
    pad = max(2, round(0.25 * font.size)) if hasattr(font, "size") else 2
    width, height = min(tile_w, right - left + 2 * pad), min(tile_h, bottom - top + 2 * pad)
    return (0, 0, width, height), (pad - left, pad - top)


def slot_origin(tile_w: int, tile_h: int, separator: int, slot: int, k: int) -> tuple[int, int]:
    """Top-left corner of the slot-th tile (row-major) in the composed image."""
    row, col = divmod(slot, k)
    return col * (tile_w + separator), row * (tile_h + separator)


def compose(tiles: list[Image.Image], k: int, separator: int) -> Image.Image:
    """Row-major tiles into one image with `separator`-px lines between them (no lines at the border)."""
    tile_w, tile_h = tiles[0].size
    canvas = Image.new("RGB", (k * tile_w + (k - 1) * separator, k * tile_h + (k - 1) * separator), SEPARATOR_COLOR)
    for slot, tile in enumerate(tiles):
        canvas.paste(tile, slot_origin(tile_w, tile_h, separator, slot, k))
    return canvas


def draw_labels(canvas: Image.Image, tile_w: int, tile_h: int, k: int, separator: int) -> None:
    """Number the tiles 1..k*k in row-major order of the composed image, inside label boxes."""
    font = _font(tile_w, tile_h)
    (x0, y0, x1, y1), (tx, ty) = label_layout(tile_w, tile_h, k * k)
    outline = max(1, round(0.06 * font.size)) if hasattr(font, "size") else 1
    draw = ImageDraw.Draw(canvas)
    for slot in range(k * k):
        ox, oy = slot_origin(tile_w, tile_h, separator, slot, k)
        # ImageDraw rectangles include their end points: x1 - 1, y1 - 1 keep the box half-open.
        draw.rectangle((ox + x0, oy + y0, ox + x1 - 1, oy + y1 - 1), fill=LABEL_FILL, outline=LABEL_INK, width=outline)
        draw.text((ox + tx, oy + ty), str(slot + 1), fill=LABEL_INK, font=font, anchor="mm")


@dataclass
class Ordering:
    """Read the numbered, shuffled tiles of one image and give the order that restores it."""

    grid: int = 3  # K: the image becomes K x K tiles
    separator: int = 2  # width in px of the lines between tiles (0 = none)

    name: ClassVar[str] = "ordering"
    partners: ClassVar[int] = 0
    DIFFICULTY: ClassVar[dict[str, dict]] = {"easy": {"grid": 2}, "medium": {}, "hard": {"grid": 4}}

    def __post_init__(self):
        if not 2 <= self.grid <= 5:
            raise ValueError(f"grid must be between 2 and 5 (got {self.grid})")
        if not 0 <= int(self.separator) <= 32:
            raise ValueError(f"separator must be between 0 and 32 px (got {self.separator})")
        self.separator = int(self.separator)  # a bool (True = 1 px) works too

    @property
    def min_side(self) -> int:
        return min_grid_side(self.grid)

    def make(self, rng: np.random.Generator, source: SourceImage, others=()) -> Puzzle:
        k = self.grid
        shown_order = rng.permutation(k * k)  # shown_order[slot] = original grid position shown there
        tiles = cut_tiles(source.pixels, k)
        tile_w, tile_h = tiles[0].size
        if min(tile_w, tile_h) < MIN_TILE:
            raise SkipItem("too-small")
        canvas = compose([tiles[p] for p in shown_order], k, self.separator)
        draw_labels(canvas, tile_w, tile_h, k, self.separator)
        answer = np.empty(k * k, dtype=int)
        answer[shown_order] = np.arange(1, k * k + 1)  # answer[position] = number on its tile
        label_box, _ = label_layout(tile_w, tile_h, k * k)
        return Puzzle(
            images=[canvas],
            answer=",".join(map(str, answer)),
            prompt_vars={"k": k, "n": k * k},
            params={
                "grid": k,
                "order": [int(p) for p in shown_order],
                "separator": self.separator,
                "tile": [tile_w, tile_h],
                "label_box": list(label_box),
            },
        )

    @staticmethod
    def parse(response: str) -> list[int] | None:
        """The answered tile numbers, in the original grid order (as Jigsaw.parse).

        >>> [Ordering.parse(f"<answer>{a}</answer>") for a in ("2,4,1,3", "[2, 4, 1, 3]", "2 4 1 3")]
        [[2, 4, 1, 3], [2, 4, 1, 3], [2, 4, 1, 3]]
        >>> Ordering.parse("<answer>top-left is 2</answer>") is None
        True
        """
        return Jigsaw.parse(response)

    @classmethod
    def score(cls, response: str, ground_truth: str, params: dict | None = None) -> float:
        """Fraction of grid positions right, only for a valid permutation of 1..K*K.

        >>> Ordering.score("<answer>2,4,3,1</answer>", "2,4,1,3"), Ordering.score("<answer>2,2,1,3</answer>", "2,4,1,3")
        (0.5, 0.0)
        """
        return Jigsaw.score(response, ground_truth, params)
