"""Rotation: the original and a copy rotated counter-clockwise by theta; answer theta in degrees.

Shortcut control:
- square mode (default) centre-crops the original to a square first, so width and height of
  the rotated copy cannot reveal whether theta is 90/270 or 0/180;
- when the granularity admits angles that are not multiples of 90, every rotated copy is cropped
  to the largest axis-aligned square that fits inside the worst angle of the set, so there are
  no black corners and the crop size is the same for every theta;
- in such a set every angle, 0 and 90 included, takes the same resampling path (two bicubic
  rotations through a random intermediate angle), so sharpness cannot split exact transposes
  from resampled angles; sets of multiples of 90 stay exact transposes;
- the square crop starts at a multiple of 16 px and has a side that is a multiple of 16, so a
  JPEG source's 8x8 (16x16 chroma) block grid sits at the same phase in both images, whatever
  the angle.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from PIL import Image

from ssl4rl.images import SourceImage
from ssl4rl.tasks.common import CUT_BLOCK, Puzzle, extract_answer

_TRANSPOSE = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}


def largest_inscribed_rect(width: int, height: int, degrees: float) -> tuple[float, float]:
    """Width and height of the largest axis-aligned rectangle inside a width x height
    rectangle rotated by `degrees` (both centred)."""
    sin_a, cos_a = abs(math.sin(math.radians(degrees))), abs(math.cos(math.radians(degrees)))
    if sin_a < 1e-12 or cos_a < 1e-12:  # multiples of 90 keep the whole image
        return (float(width), float(height)) if cos_a > sin_a else (float(height), float(width))
    long_side, short_side = max(width, height), min(width, height)
    if short_side <= 2 * sin_a * cos_a * long_side or abs(sin_a - cos_a) < 1e-10:
        half = 0.5 * short_side
        if width >= height:
            return half / sin_a, half / cos_a
        return half / cos_a, half / sin_a
    cos_2a = cos_a * cos_a - sin_a * sin_a
    return (width * cos_a - height * sin_a) / cos_2a, (height * cos_a - width * sin_a) / cos_2a


def centre_crop(image: Image.Image, width: int, height: int) -> Image.Image:
    """Crop to width x height around the centre; the offsets round down."""
    left, top = (image.width - width) // 2, (image.height - height) // 2
    return image.crop((left, top, left + width, top + height))


def _same_parity(target: float, reference: int) -> int:
    """The largest integer <= target whose difference to `reference` is even, so a centre crop
    commutes exactly with 90-degree rotations."""
    value = int(math.floor(target))
    return value if (reference - value) % 2 == 0 else value - 1


INTERMEDIATE = (20.0, 70.0)  # degrees: range of the intermediate angle of resampled rotations


def rotate_resampled(image: Image.Image, degrees: float, intermediate: float) -> Image.Image:
    """Rotate counter-clockwise by `degrees` in two bicubic steps (degrees + intermediate, then
    -intermediate), so every angle, multiples of 90 included, is interpolated the same way."""
    first = image.rotate(degrees + intermediate, resample=Image.Resampling.BICUBIC, expand=True)
    return first.rotate(-intermediate, resample=Image.Resampling.BICUBIC, expand=True)


def block_square(width: int, height: int) -> tuple[int, int, int, int]:
    """The centred square box whose corner and side are multiples of CUT_BLOCK (when the image
    allows; images under CUT_BLOCK px keep their short side).

    >>> block_square(200, 150), block_square(150, 150), block_square(40, 10)
    ((16, 0, 160, 144), (0, 0, 144, 144), (15, 0, 25, 10))
    """
    side = min(width, height)
    if side >= CUT_BLOCK:
        side -= side % CUT_BLOCK
    left, top = (width - side) // 2, (height - side) // 2
    if side % CUT_BLOCK == 0:
        left, top = left - left % CUT_BLOCK, top - top % CUT_BLOCK
    return left, top, left + side, top + side


def rotate_ccw(image: Image.Image, degrees: int) -> Image.Image:
    """Rotate counter-clockwise; multiples of 90 are exact pixel transposes."""
    degrees %= 360
    if degrees == 0:
        return image.copy()
    if degrees in _TRANSPOSE:
        return image.transpose(_TRANSPOSE[degrees])
    return image.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=True)


@dataclass
class Rotation:
    """Predict the counter-clockwise rotation angle between two images."""

    granularity: int = 90  # angles are 0, g, 2g, ..., 360 - g
    square: bool = True  # centre-crop the original to a square first (no aspect-ratio shortcut)

    name: ClassVar[str] = "rotation"
    partners: ClassVar[int] = 0
    min_side: ClassVar[int] = 56
    DIFFICULTY: ClassVar[dict] = {"easy": {"granularity": 180}, "medium": {"granularity": 90}, "hard": {"granularity": 45}}

    def __post_init__(self):
        if not 0 < self.granularity < 360 or 360 % self.granularity:
            raise ValueError(f"granularity must divide 360 (got {self.granularity})")

    @property
    def angles(self) -> list[int]:
        return list(range(0, 360, self.granularity))

    def _crop_size(self, width: int, height: int, degrees: int) -> tuple[int, int]:
        """Size of the rotated copy; in square mode the same for every angle of the set.

        A 1-px margin on each side keeps interpolated edge pixels (blended with the black
        outside) out of the crop.
        """
        margin = 0 if all(a % 90 == 0 for a in self.angles) else 2
        if self.square:
            side = min(min(largest_inscribed_rect(width, height, a)) for a in self.angles)
            side = _same_parity(side + 1e-6 - margin, width)
            return side, side
        inner_w, inner_h = largest_inscribed_rect(width, height, degrees)
        if degrees % 180 == 90:
            width, height = height, width
        margin = 0 if degrees % 90 == 0 else 2
        return _same_parity(inner_w + 1e-6 - margin, width), _same_parity(inner_h + 1e-6 - margin, height)

    def prompt_vars(self) -> dict:
        return {"angles": ", ".join(map(str, self.angles)), "granularity": self.granularity}

    def sizes_at_most(self, width: int, height: int) -> list[tuple[int, int]]:
        """The largest the puzzle's images can be for a width x height source (the image shown,
        the rotated copy at its widest and tallest): the builder fits the token budget from these
        before making the puzzle (ssl4rl.prescale)."""
        left, top, right, bottom = block_square(width, height) if self.square else (0, 0, width, height)
        width, height = right - left, bottom - top
        crops = [self._crop_size(width, height, angle) for angle in self.angles]
        return [(width, height), (max(w for w, _ in crops), max(h for _, h in crops))]

    def make(self, rng: np.random.Generator, source: SourceImage, others=()) -> Puzzle:
        theta = int(rng.choice(self.angles))
        base = source.pixels
        if self.square:
            box = block_square(*base.size)
            if box != (0, 0, *base.size):
                base = base.crop(box)
        shown = source.original() if base is source.pixels else base
        if all(a % 90 == 0 for a in self.angles):
            rotated = rotate_ccw(base, theta)
        else:
            rotated = rotate_resampled(base, theta, float(rng.uniform(*INTERMEDIATE)))
        crop_w, crop_h = self._crop_size(base.width, base.height, theta)
        if rotated.size != (crop_w, crop_h):
            rotated = centre_crop(rotated, crop_w, crop_h)
        return Puzzle(
            images=[shown, rotated],
            answer=str(theta),
            prompt_vars=self.prompt_vars(),
            params={"granularity": self.granularity},
        )

    @staticmethod
    def parse(response: str) -> int | None:
        """The answered angle, an integer in [0, 360) written plainly, or None.

        Only plain angles count: reading `27090` or `450` modulo 360 let a policy collect the
        reward with digit soup (every `...90` string is 90 modulo 360), which GRPO found within
        ten steps on the tiny model and which wrecked its answer format.

        >>> [Rotation.parse(f"<answer>{a}</answer>") for a in ("90", "90°", "90 degrees", "0", "270.")]
        [90, 90, 90, 0, 270]
        >>> [Rotation.parse(f"<answer>{a}</answer>") for a in ("-270", "450", "360", "27090", "090", "9 0")]
        [None, None, None, None, None, None]
        """
        text = extract_answer(response)
        if text is None:
            return None
        match = re.fullmatch(r"(0|[1-9]\d{0,2})\s*(?:°|º|deg|degs|degree|degrees)?\.?", text, re.IGNORECASE)
        return int(match.group(1)) if match and int(match.group(1)) < 360 else None

    @classmethod
    def score(cls, response: str, ground_truth: str, params: dict | None = None) -> float:
        answer = cls.parse(response)
        return float(answer is not None and answer == int(ground_truth) % 360)
