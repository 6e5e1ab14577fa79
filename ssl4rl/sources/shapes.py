"""`--source shapes`: synthetic pictures that a vision tower trained from nothing can learn from.

A benchmark of the training loop needs puzzles a small model can learn in minutes on a CPU;
photos are not that (a from-scratch tower stays at chance on photo orientation). These pictures
are made to be learnable and honest about why: like photos they have an up and a left (the
light falls from the top, the ground is warm on the left and cool on the right), drawn strongly
enough that a 14-pixel patch shows it, and they hold upright, asymmetric glyphs (L, F, P, 7, an
arrow, a flag) in random colours, places and sizes, so no two pictures are alike. Orientation,
mirroring and where a crop or tile came from are then visible from local evidence, as they are
in photos, only louder.

Each picture is a pure function of its index (no global seed: picture 7 is the same in every
build), encoded as PNG; `shapes` gives 1000 pictures, `shapes:N` gives N.
"""

from __future__ import annotations

import hashlib
import random
from typing import Iterator

import numpy as np
from PIL import Image, ImageDraw

from ssl4rl.errors import UserError
from ssl4rl.images import encode_png
from ssl4rl.sources.common import RawItem

DEFAULT_COUNT = 1000
SIZE = 168  # pixels a side: 6x6 visual tokens at 28 px a token (Qwen2.5-VL), so the pictures weigh in a short prompt
MAX_COUNT = 10_000_000
GRAIN = 6  # +- grey levels of per-pixel noise

# Glyphs on a unit square, upright; none has a mirror or rotation symmetry.
GLYPHS = {
    "L": [(0.1, 0.0), (0.4, 0.0), (0.4, 0.7), (0.9, 0.7), (0.9, 1.0), (0.1, 1.0)],
    "F": [(0.1, 0.0), (0.9, 0.0), (0.9, 0.25), (0.4, 0.25), (0.4, 0.45), (0.75, 0.45), (0.75, 0.7), (0.4, 0.7), (0.4, 1.0), (0.1, 1.0)],
    "P": [(0.15, 0.0), (0.85, 0.0), (0.85, 0.55), (0.45, 0.55), (0.45, 1.0), (0.15, 1.0)],
    "7": [(0.1, 0.0), (0.9, 0.0), (0.9, 0.3), (0.55, 1.0), (0.25, 1.0), (0.55, 0.3), (0.1, 0.3)],
    "arrow": [(0.5, 0.0), (1.0, 0.45), (0.65, 0.45), (0.65, 1.0), (0.35, 1.0), (0.35, 0.45), (0.0, 0.45)],
    "flag": [(0.1, 0.0), (0.9, 0.2), (0.3, 0.4), (0.3, 1.0), (0.1, 1.0)],
}  # fmt: skip


def parse_count(source: str) -> int | None:
    """The picture count of a `shapes` / `shapes:N` source name; None for any other name.

    >>> parse_count("shapes"), parse_count("shapes:250"), parse_count("samples")
    (1000, 250, None)
    """
    name, _, count = source.partition(":")
    if name != "shapes":
        return None
    if not count:
        return DEFAULT_COUNT
    if not count.isdigit() or not 1 <= int(count) <= MAX_COUNT:
        raise UserError(f"source '{source}': write shapes:N with N a whole number from 1 to {MAX_COUNT}")
    return int(count)


def picture_rng(index: int) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(f"ssl4rl-shapes/{index}".encode()).digest()[:8], "big"))


def background(rng: random.Random) -> np.ndarray:
    """Light from the top (bright to dark, downwards), warm on the left and cool on the right."""
    y = np.linspace(0.0, 1.0, SIZE)[:, None]
    x = np.linspace(0.0, 1.0, SIZE)[None, :]
    light = 235 - (150 + rng.uniform(-15, 15)) * y
    warmth = (x - 0.5) * (110 + rng.uniform(-15, 15))
    green = rng.uniform(-20, 20)
    red, blue = light - warmth, light + warmth
    return np.clip(np.stack([red, np.broadcast_to(light * 0.85 + green, red.shape), blue], axis=-1), 0, 255)


def draw_picture(index: int) -> Image.Image:
    """Picture `index`: the background, then 2-3 upright glyphs, each lit from the top."""
    rng = picture_rng(index)
    image = Image.fromarray(background(rng).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(2, 3)):
        name = rng.choice(sorted(GLYPHS))
        side = rng.uniform(0.3, 0.5) * SIZE
        left, top = rng.uniform(0, SIZE - side), rng.uniform(0, SIZE - side)
        colour = tuple(rng.randrange(30, 226) for _ in range(3))
        outline = tuple(max(0, c - 90) for c in colour)  # the shaded bottom edge below
        points = [(left + px * side, top + py * side) for px, py in GLYPHS[name]]
        draw.polygon([(x, y + 2) for x, y in points], fill=outline)
        draw.polygon(points, fill=colour)
    # fine grain, as a sensor adds: flat areas would otherwise give the two views of a puzzle
    # an 8-pixel block structure that turns with the picture (the audit's block-phase probe)
    grain = np.random.default_rng(rng.getrandbits(64)).integers(-GRAIN, GRAIN + 1, (SIZE, SIZE, 3))
    return Image.fromarray(np.clip(np.asarray(image, np.int16) + grain, 0, 255).astype(np.uint8), "RGB")


class ShapesSource:
    """N synthetic pictures, read lazily in index order (ids `shape-000000`, ...)."""

    kind = "shapes"

    def __init__(self, count: int = DEFAULT_COUNT):
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[RawItem]:
        for index in range(self.count):
            yield RawItem(f"shape-{index:06d}", encode_png(draw_picture(index)))
