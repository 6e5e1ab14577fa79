"""Inpainting (SSL-R1): an image with a flat grey square hole, then K candidate patches; answer
the letter of the patch that was cut out.

The true patch is the exact pixels under the hole. Distractors are same-size patches from
other places of the same image (overlapping the hole, and each other, by at most MAX_OVERLAP
of their area) and, with `cross_image`, from other images of the split.

Shortcut controls:
- every candidate has the hole's size and is cut pixel-exact, so size and format tell nothing;
  the true patch's position among the candidates is drawn uniformly;
- every candidate differs visibly from every other (mean absolute difference >= MIN_DIFFERENCE):
  two identical candidates would both be wrong, and a distractor identical to the true patch
  (a flat sky, a white margin) would make two right answers; images where no such distractors
  can be found are skipped as 'ambiguous'.
Known remaining cue (hence cross-image distractors by default): a same-image distractor also appears somewhere in the first image, the
true patch does not (its place is grey). Cross-image distractors do not have this cue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from PIL import Image

from ssl4rl.images import SkipImage, SourceImage
from ssl4rl.tasks.common import LETTERS, MAX_CANDIDATES, LetterAnswer, Puzzle, candidate_prompt_vars

MIN_PATCH = 28  # Qwen2.5-VL's patch merger needs at least 28 px on a side
HOLE_GREY = (128, 128, 128)
MAX_OVERLAP = 0.25  # largest shared area (fraction of a patch) between two same-image boxes
MIN_DIFFERENCE = 2.0  # smallest mean absolute pixel difference between two candidates
TRIES = 100  # placement attempts per distractor (per stage)
NEARBY = 1.5  # nearby distractors: top-left corner within this many hole sides of the hole's

Box = tuple[int, int, int, int]


def overlap(a: Box, b: Box) -> float:
    """Shared area of two equal-size boxes as a fraction of one box's area.

    >>> overlap((0, 0, 10, 10), (5, 0, 15, 10)), overlap((0, 0, 10, 10), (10, 10, 20, 20))
    (0.5, 0.0)
    """
    width = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return width * height / ((a[2] - a[0]) * (a[3] - a[1]))


def _difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@dataclass
class Inpainting(LetterAnswer):
    """Pick the patch that fills a grey hole in an image."""

    candidates: int = 4  # K: patches shown, one of them right (2..8)
    hole: float = 0.25  # hole side as a fraction of the image's shorter side (at least 28 px)
    cross_image: float = 1.0  # share of the K-1 distractors taken from other images, when available (no cue)
    nearby: bool = False  # same-image distractors from around the hole (harder), else from anywhere

    name: ClassVar[str] = "inpainting"
    min_side: ClassVar[int] = 2 * MIN_PATCH
    DIFFICULTY: ClassVar[dict[str, dict]] = {
        "easy": {"candidates": 3, "hole": 0.25, "cross_image": 1.0, "nearby": False},
        "medium": {"candidates": 4, "hole": 0.25, "cross_image": 1.0, "nearby": False},
        "hard": {"candidates": 6, "hole": 0.15, "cross_image": 0.0, "nearby": True},
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

    def make(self, rng: np.random.Generator, source: SourceImage, others=()) -> Puzzle:
        width, height = source.size
        side = max(MIN_PATCH, int(self.hole * min(width, height)))
        if 2 * side > min(width, height):
            raise SkipImage("too-small")
        pixels = np.asarray(source.pixels)
        hx, hy = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
        hole: Box = (hx, hy, hx + side, hy + side)
        true_patch = pixels[hy : hy + side, hx : hx + side]
        chosen = [true_patch]  # pixels of every accepted candidate, for the distinctness check
        ambiguous = False

        def distinct(patch: np.ndarray) -> bool:
            nonlocal ambiguous
            if all(_difference(patch, other) >= MIN_DIFFERENCE for other in chosen):
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
            for x0, y0, x1, y1 in regions:
                placed = False
                for _ in range(TRIES):
                    x, y = int(rng.integers(x0, x1 + 1)), int(rng.integers(y0, y1 + 1))
                    box = (x, y, x + side, y + side)
                    if any(overlap(box, b) > MAX_OVERLAP for b in boxes):
                        continue
                    patch = pixels[y : y + side, x : x + side]
                    if distinct(patch):
                        distractors.append((-1, box))
                        boxes.append(box)
                        chosen.append(patch)
                        placed = True
                        break
                if placed:
                    break
            else:
                raise SkipImage("ambiguous" if ambiguous else "too-small")

        answer = int(rng.integers(self.candidates))
        order = [distractors[int(i)] for i in rng.permutation(wanted)]
        order.insert(answer, (-1, hole))

        holed = source.pixels.copy()
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
