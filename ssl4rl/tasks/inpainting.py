"""Inpainting (SSL-R1): an image with a flat grey square hole, then K candidate patches; answer
the letter of the patch that was cut out.

The true patch is the exact pixels under the hole. Distractors are same-size patches from
other places of the same image, and every candidate's place is hidden in the shown image: the
hole in grey, the distractors' places in dark grey. With `cross_image` > 0 some distractors come
from other images of the split instead (not the default: see below).

Shortcut controls:
- every candidate has the hole's size and is cut pixel-exact, so size and format tell nothing;
  the true patch's position among the candidates is drawn uniformly;
- same-image distractors share the hole's palette, sharpness and compression history (patches
  from other images were the only ones not matching the shown image's colours: a histogram
  match picked the truth 86-91 % of the time), and since their places are hidden too, no
  candidate's pixels appear in the shown image (a visible distractor marked itself as wrong);
- boxes do not overlap, and their corners are multiples of 16 px, so a JPEG source's block
  phase is the same in every candidate and cannot point at the hole's position;
- every candidate differs visibly from every other (mean absolute difference of their 8x8
  box-averaged thumbnails >= MIN_DIFFERENCE grey levels): two look-alike candidates would make
  two right answers; images where no such distractors can be found are skipped as 'ambiguous'.
Known remaining cue: with `cross_image` > 0, patches from other images differ in palette and
sharpness from the shown image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from PIL import Image

from ssl4rl.errors import SkipItem
from ssl4rl.images import SourceImage
from ssl4rl.tasks.common import CUT_BLOCK, LETTERS, MAX_CANDIDATES, LetterAnswer, Puzzle, block_ceil, block_floor, candidate_prompt_vars

MIN_PATCH = 28  # Qwen2.5-VL's patch merger needs at least 28 px on a side
HOLE_GREY = (128, 128, 128)
HIDDEN_GREY = (48, 48, 48)  # the distractors' places in the shown image
MAX_OVERLAP = 0.0  # largest shared area (fraction of a patch) between two same-image boxes
MIN_DIFFERENCE = 10.0  # smallest mean absolute difference (grey levels) between two candidates' thumbnails
THUMBNAIL = 8  # side of the box-averaged thumbnail the difference is measured on
TRIES = 100  # free places tested for distinctness per distractor (per region)
NEARBY = 2.5  # nearby distractors: top-left corner within this many hole sides of the hole's

Box = tuple[int, int, int, int]


def overlap(a: Box, b: Box) -> float:
    """Shared area of two equal-size boxes as a fraction of one box's area.

    >>> overlap((0, 0, 10, 10), (5, 0, 15, 10)), overlap((0, 0, 10, 10), (10, 10, 20, 20))
    (0.5, 0.0)
    """
    width = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return width * height / ((a[2] - a[0]) * (a[3] - a[1]))


def _thumbnail(patch: np.ndarray) -> np.ndarray:
    image = Image.fromarray(patch).resize((THUMBNAIL, THUMBNAIL), Image.Resampling.BOX)
    return np.asarray(image, dtype=np.int16)


def visible_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two patches' 8x8 box-averaged thumbnails: what a person sees
    at a glance, not pixel noise (two patches of one flat sky differ by noise only).

    >>> flat, noisy = np.full((32, 32, 3), 100, np.uint8), np.full((32, 32, 3), 100, np.uint8)
    >>> noisy[::2, ::2] += 9
    >>> visible_difference(flat, noisy) < 4.0, visible_difference(flat, flat + 20) == 20.0
    (True, True)
    """
    return float(np.abs(_thumbnail(a) - _thumbnail(b)).mean())


def block_position(rng: np.random.Generator, low: int, high: int) -> int | None:
    """A uniform multiple of CUT_BLOCK in [low, high], or None when there is none."""
    first, last = block_ceil(low), block_floor(high)
    return None if last < first else CUT_BLOCK * int(rng.integers(first // CUT_BLOCK, last // CUT_BLOCK + 1))


@dataclass
class Inpainting(LetterAnswer):
    """Pick the patch that fills a grey hole in an image."""

    candidates: int = 4  # K: patches shown, one of them right (2..8)
    hole: float = 0.25  # hole side as a fraction of the image's shorter side (at least 28 px)
    cross_image: float = 0.0  # share of the K-1 distractors taken from other images (a palette cue)
    nearby: bool = False  # same-image distractors from around the hole (harder), else from anywhere

    name: ClassVar[str] = "inpainting"
    min_side: ClassVar[int] = 2 * MIN_PATCH
    DIFFICULTY: ClassVar[dict[str, dict]] = {
        "easy": {"candidates": 3, "hole": 0.25, "nearby": False},
        "medium": {"candidates": 4, "hole": 0.25, "nearby": False},
        "hard": {"candidates": 6, "hole": 0.15, "nearby": True},
    }

    def __post_init__(self):
        if not 2 <= self.candidates <= MAX_CANDIDATES:
            raise ValueError(f"candidates must be between 2 and {MAX_CANDIDATES} (got {self.candidates})")
        if not 0.0 < self.hole <= 0.5:
            raise ValueError(f"hole must be in (0, 0.5] (got {self.hole})")
        if not 0.0 <= self.cross_image <= 1.0:
            raise ValueError(f"cross_image must be in [0, 1] (got {self.cross_image})")

    @property
    def partners(self) -> int:
        return self.candidates - 1 if self.cross_image > 0 else 0

    @staticmethod
    def _place(rng, region: Box, side: int, boxes: list[Box], pixels: np.ndarray, distinct) -> Box | None:
        """A random block-aligned box with its corner in `region` that overlaps none of `boxes`
        and whose patch is `distinct`; every free corner is a candidate (in random order), at
        most TRIES of them are tested for distinctness."""
        x0, y0, x1, y1 = region
        xs = range(block_ceil(x0), block_floor(x1) + 1, CUT_BLOCK)
        ys = range(block_ceil(y0), block_floor(y1) + 1, CUT_BLOCK)
        tested = 0
        for flat in rng.permutation(len(xs) * len(ys)) if len(xs) and len(ys) else []:
            y, x = ys[int(flat) // len(xs)], xs[int(flat) % len(xs)]
            box = (x, y, x + side, y + side)
            if any(overlap(box, b) > MAX_OVERLAP for b in boxes):
                continue
            if distinct(pixels[y : y + side, x : x + side]):
                return box
            tested += 1
            if tested == TRIES:
                break
        return None

    def make(self, rng: np.random.Generator, source: SourceImage, others=()) -> Puzzle:
        width, height = source.size
        side = max(MIN_PATCH, int(self.hole * min(width, height)))
        if 2 * side > min(width, height):
            raise SkipItem("too-small")
        pixels = np.asarray(source.pixels)
        hx, hy = block_position(rng, 0, width - side), block_position(rng, 0, height - side)
        if hx is None or hy is None:
            raise SkipItem("too-small")
        hole: Box = (hx, hy, hx + side, hy + side)
        true_patch = pixels[hy : hy + side, hx : hx + side]
        chosen = [true_patch]  # pixels of every accepted candidate, for the distinctness check
        ambiguous = False

        def distinct(patch: np.ndarray) -> bool:
            nonlocal ambiguous
            if all(visible_difference(patch, other) >= MIN_DIFFERENCE for other in chosen):
                return True
            ambiguous = True
            return False

        # Distractors from other images: (source index in `others`, box); -1 is this image.
        distractors: list[tuple[int, Box]] = []
        wanted = self.candidates - 1
        usable = [i for i, other in enumerate(others) if min(other.size) >= side]
        n_cross = min(len(usable), int(round(self.cross_image * wanted)))
        for pick in rng.choice(len(usable), size=n_cross, replace=False) if n_cross else []:
            index = usable[int(pick)]
            other_w, other_h = others[index].size
            other_pixels = np.asarray(others[index].pixels)
            for _ in range(TRIES // 5):
                x, y = int(rng.integers(0, other_w - side + 1)), int(rng.integers(0, other_h - side + 1))
                patch = other_pixels[y : y + side, x : x + side]
                if distinct(patch):
                    distractors.append((index, (x, y, x + side, y + side)))
                    chosen.append(patch)
                    break

        # The rest from this image, away from the hole and from each other.
        boxes = [hole]
        regions = [(0, 0, width - side, height - side)]  # ranges of the top-left corner
        if self.nearby:
            reach = int(NEARBY * side)
            near_x = (max(0, hx - reach), min(width - side, hx + reach))
            near_y = (max(0, hy - reach), min(height - side, hy + reach))
            regions.insert(0, (near_x[0], near_y[0], near_x[1], near_y[1]))
        while len(distractors) < wanted:
            for region in regions:
                box = self._place(rng, region, side, boxes, pixels, distinct)
                if box is not None:
                    distractors.append((-1, box))
                    boxes.append(box)
                    chosen.append(pixels[box[1] : box[3], box[0] : box[2]])
                    break
            else:
                raise SkipItem("ambiguous" if ambiguous else "too-small")

        answer = int(rng.integers(self.candidates))
        order = [distractors[int(i)] for i in rng.permutation(wanted)]
        order.insert(answer, (-1, hole))

        holed = source.pixels.copy()
        for index, box in distractors:
            if index < 0:
                holed.paste(HIDDEN_GREY, box)
        holed.paste(HOLE_GREY, hole)
        images: list[Image.Image | bytes] = [holed]
        for index, box in order:
            images.append((source if index < 0 else others[index]).pixels.crop(box))
        return Puzzle(
            images=images,
            answer=LETTERS[answer],
            prompt_vars=candidate_prompt_vars(self.candidates),
            params={
                "candidates": self.candidates,
                "hole": list(hole),
                "boxes": [list(box) for _, box in order],
                "sources": [(source if index < 0 else others[index]).source_id for index, _ in order],
            },
        )
