"""Geometric correspondence (SSL-R1): find, in a warped view, the point marked in the original.

View 1 is the image (centre-cropped to a square, resized to `size`) with one marked point.
View 2 is the same image warped by a random affine or perspective transform, with K lettered
candidate points; exactly one is the marked point mapped through the transform. Every point is in
pixel-index coordinates (pixel (i, j) has its centre at x=i, y=j); `matrix` maps view 1 to view 2.

Shortcut controls:
- the warp is rendered from the clean image; markers are drawn on top afterwards, and every
  marker (view 1's and all candidates) has one style and one colour, drawn at integer centres,
  so the markers are pixel-identical and only the surrounding geometry tells them apart;
- every candidate is the marked point sent through its own transform of the level's family
  (K transforms drawn alike, their images of the marked point pairwise at least `min_distance`
  apart), and the one that renders view 2 is then picked uniformly among the K. A mild warp
  moves the true point little from the marked coordinates, but it moves every distractor just
  as little, so no rule on coordinates (nearest to the marked point, nearest to the centre,
  leftmost, ...) beats chance, and neither does the letter;
- every candidate lies on warped image content under every candidate's transform (so, whichever
  is the truth, none sits on the empty border the warp leaves, which would mark it as a distractor).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ssl4rl.errors import SkipItem
from ssl4rl.images import SourceImage
from ssl4rl.tasks.common import LETTERS, Puzzle, parse_letter

MODES = ("affine", "perspective", "random")
MAX_CANDIDATES = 8
MARKER_RADIUS = 0.022  # of the view side
MAX_ROTATION = 60.0  # degrees, at strength 1
MAX_LOG_SCALE = 0.3  # scale in [e^-0.3, e^0.3] at strength 1
MAX_SHEAR = 0.35
MAX_SHIFT = 0.2  # of the view side
MAX_CORNER = 0.2  # perspective: each corner moves up to this fraction of the side (keeps the quad convex)
POINT_TRIES = 12  # marked points tried before the image is skipped
TRANSFORM_BATCH = 160  # transforms of the family drawn per marked point
PALETTE = [(230, 25, 75), (255, 225, 25), (70, 240, 240), (240, 50, 230), (60, 200, 60), (0, 90, 255)]


def apply(matrix, x, y):
    """Map points through a 3x3 homography (scalars or arrays).

    >>> apply([[2, 0, 1], [0, 2, 0], [0, 0, 1]], 3.0, 4.0)
    (7.0, 8.0)
    """
    m = np.asarray(matrix, dtype=np.float64)
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    w = m[2, 0] * x + m[2, 1] * y + m[2, 2]
    u = (m[0, 0] * x + m[0, 1] * y + m[0, 2]) / w
    v = (m[1, 0] * x + m[1, 1] * y + m[1, 2]) / w
    if u.ndim == 0:
        return float(u), float(v)
    return u, v


def homography_from_corners(src, dst) -> np.ndarray:
    """The 3x3 matrix mapping four source points onto four destination points."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    h = np.linalg.solve(np.asarray(rows, np.float64), np.asarray(rhs, np.float64))
    return np.append(h, 1.0).reshape(3, 3)


def sample_transform(
    rng: np.random.Generator, width: int, height: int, mode: str = "affine", strength: float = 0.5
) -> np.ndarray:
    """A random forward matrix (view 1 -> view 2, pixel-index coordinates).

    Affine: rotation, log-uniform scale, shear and shift about the image centre, their ranges
    scaled by `strength`. Perspective: the same affine after a corner-jitter homography of the
    view (each corner moves up to MAX_CORNER * strength of the side).
    """
    if mode not in ("affine", "perspective"):
        raise ValueError(f"mode must be 'affine' or 'perspective' (got {mode!r})")
    angle = math.radians(rng.uniform(-1, 1) * MAX_ROTATION * strength)
    scale = math.exp(rng.uniform(-1, 1) * MAX_LOG_SCALE * strength)
    shear = rng.uniform(-1, 1) * MAX_SHEAR * strength
    shift_x, shift_y = rng.uniform(-1, 1, 2) * MAX_SHIFT * strength * np.array([width, height])
    cx, cy = (width - 1) / 2, (height - 1) / 2
    rotate = np.array([[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]])
    affine = rotate @ np.array([[1, shear, 0], [0, 1, 0], [0, 0, 1]]) @ np.diag([scale, scale, 1.0])
    to_centre = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], np.float64)
    back = np.array([[1, 0, cx + shift_x], [0, 1, cy + shift_y], [0, 0, 1]], np.float64)
    matrix = back @ affine @ to_centre
    if mode == "perspective":
        corners = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.float64)
        jitter = rng.uniform(-1, 1, (4, 2)) * MAX_CORNER * strength * np.array([width, height])
        matrix = matrix @ homography_from_corners(corners, corners + jitter)
    return matrix / matrix[2, 2]


def pil_coefficients(matrix) -> tuple[float, ...]:
    """PIL's PERSPECTIVE data for a forward matrix. PIL maps each OUTPUT pixel to an INPUT
    position, in continuous coordinates (pixel i spans [i, i+1)), so the data is the inverse,
    conjugated by the half-pixel shift between the two conventions."""
    shift = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    unshift = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])
    inverse = shift @ np.linalg.inv(np.asarray(matrix, np.float64)) @ unshift
    inverse /= inverse[2, 2]
    return tuple(float(c) for c in inverse.flatten()[:8])


def warp(image: Image.Image, matrix, size: tuple[int, int], resample=Image.Resampling.BICUBIC) -> Image.Image:
    """`image` warped by the forward `matrix` onto a canvas of `size`; uncovered pixels are black."""
    return image.transform(size, Image.Transform.PERSPECTIVE, pil_coefficients(matrix), resample, fillcolor=(0, 0, 0))


def sample_candidates(rng, size: int, count: int, min_distance: float, margin: float, mode: str, strength: float):
    """A marked point of view 1 and `count` transforms of one family whose images of it are
    `margin` inside view 2, pairwise at least `min_distance` px apart, and on image content
    under each of the transforms. The transforms are taken first-come from one stream of iid
    draws (at most TRANSFORM_BATCH), so any of them may serve as the truth.
    (point, matrices, images, modes) or None."""
    low, high = margin, size - 1 - margin
    point = rng.uniform(low, high, 2)

    def inside(x: float, y: float) -> bool:
        return low <= x <= high and low <= y <= high

    taken: list[tuple[np.ndarray, np.ndarray, tuple[float, float], str]] = []  # (matrix, inverse, image, mode)
    for _ in range(TRANSFORM_BATCH):
        drawn_mode = mode if mode != "random" else ("affine", "perspective")[int(rng.integers(2))]
        matrix = sample_transform(rng, size, size, drawn_mode, strength)
        image = apply(matrix, *point)
        if not inside(*image) or any(math.dist(image, other[2]) < min_distance for other in taken):
            continue
        inverse = np.linalg.inv(matrix)
        # Whichever transform renders view 2, every candidate must lie on image content.
        if not all(inside(*apply(inverse, *other[2])) and inside(*apply(other[1], *image)) for other in taken):
            continue
        taken.append((matrix, inverse, image, drawn_mode))
        if len(taken) == count:
            return point, [t[0] for t in taken], np.array([t[2] for t in taken]), [t[3] for t in taken]
    return None


def _local_mean(pixels: np.ndarray, x: float, y: float, radius: int) -> np.ndarray:
    h, w = pixels.shape[:2]
    x, y = int(round(x)), int(round(y))
    window = pixels[max(0, y - radius) : min(h, y + radius + 1), max(0, x - radius) : min(w, x + radius + 1)]
    return window.reshape(-1, 3).mean(axis=0)


def marker_colour(views: list[tuple[np.ndarray, list]], radius: int) -> tuple[int, int, int]:
    """The palette colour farthest from the surroundings of every marker (one colour for all)."""
    means = [_local_mean(pixels, x, y, 2 * radius) for pixels, points in views for x, y in points]
    distance = [min(float(np.linalg.norm(np.array(c) - m)) for m in means) for c in PALETTE]
    return PALETTE[int(np.argmax(distance))]


def draw_marker(draw: ImageDraw.ImageDraw, x: float, y: float, radius: int, colour) -> None:
    """A filled disc with a black outer and a white inner ring, centred on the nearest pixel."""
    x, y = int(round(x)), int(round(y))
    ring = max(1, radius // 4)
    for r, fill in ((radius, (0, 0, 0)), (radius - ring, (255, 255, 255)), (radius - 2 * ring, colour)):
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)


def draw_label(draw: ImageDraw.ImageDraw, x: float, y: float, radius: int, letter: str, font, size: int) -> None:
    """The letter in a white box up and right of the marker, flipped to stay inside the view."""
    x, y = int(round(x)), int(round(y))
    left, top, right, bottom = draw.textbbox((0, 0), letter, font=font)
    pad = max(1, radius // 4)
    box_w, box_h = right - left + 2 * pad, bottom - top + 2 * pad
    bx = x + radius if x + radius + box_w <= size else x - radius - box_w
    by = y - radius - box_h if y - radius - box_h >= 0 else y + radius
    draw.rectangle((bx, by, bx + box_w - 1, by + box_h - 1), fill=(255, 255, 255), outline=(0, 0, 0))
    draw.text((bx + pad - left, by + pad - top), letter, fill=(0, 0, 0), font=font)


def square_view(image: Image.Image, size: int) -> Image.Image:
    """Centre square crop resized to size x size."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    crop = image.crop((left, top, left + side, top + side))
    return crop if side == size else crop.resize((size, size), Image.Resampling.LANCZOS)


@dataclass
class Correspondence:
    """Pick the candidate in a warped view that marks the same scene point as view 1's marker."""

    candidates: int = 4  # K lettered candidates in view 2 (2..8)
    strength: float = 0.5  # 0..1: scales rotation, scale, shear, shift and perspective
    mode: str = "affine"  # 'affine', 'perspective' or 'random' (each puzzle one of the two)
    min_distance: float = 0.08  # between candidates, as a fraction of the view diagonal
    size: int = 384  # side of both square views in px

    name: ClassVar[str] = "correspondence"
    partners: ClassVar[int] = 0
    min_side: ClassVar[int] = 64
    DIFFICULTY: ClassVar[dict[str, dict]] = {
        "easy": {"candidates": 3, "strength": 0.25, "mode": "affine", "min_distance": 0.05},
        "medium": {},
        "hard": {"candidates": 6, "strength": 1.0, "mode": "perspective"},
    }

    def __post_init__(self):
        if not 2 <= self.candidates <= MAX_CANDIDATES:
            raise ValueError(f"candidates must be 2..{MAX_CANDIDATES} (got {self.candidates})")
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1] (got {self.strength})")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)} (got {self.mode!r})")
        if self.size < 128:
            raise ValueError(f"size must be at least 128 (got {self.size})")
        # Room for K points this far apart even in a strongly shrunk view 2 (kept at half the side).
        limit = 0.5 / math.sqrt(2 * self.candidates)
        if not 0.03 <= self.min_distance <= limit:
            raise ValueError(
                f"min_distance must be in [0.03, {limit:.3f}] for {self.candidates} candidates (got {self.min_distance})"
            )

    @property
    def radius(self) -> int:
        return max(4, int(round(MARKER_RADIUS * self.size)))

    def make(self, rng: np.random.Generator, source: SourceImage, others=()) -> Puzzle:
        size, radius, k = self.size, self.radius, self.candidates
        distance = self.min_distance * size * math.sqrt(2)
        margin = radius + 2
        for _ in range(POINT_TRIES):
            drawn = sample_candidates(rng, size, k, distance, margin, self.mode, self.strength)
            if drawn is not None:
                break
        else:
            raise SkipItem("too-small")
        marked, matrices, images, modes = drawn
        truth = int(rng.integers(k))
        matrix, mode = matrices[truth], modes[truth]

        base = square_view(source.pixels, size)
        second = warp(base, matrix, (size, size))
        first = base.copy()
        colour = marker_colour([(np.asarray(first), [marked]), (np.asarray(second), list(images))], radius)
        font = ImageFont.load_default(size=max(8, int(round(2.0 * radius))))
        draw = ImageDraw.Draw(second)
        for (x, y), letter in zip(images, LETTERS):
            draw_label(draw, x, y, radius, letter, font, size)
        for x, y in images:  # markers on top of any label, so all of them stay identical
            draw_marker(draw, x, y, radius, colour)
        draw_marker(ImageDraw.Draw(first), *marked, radius, colour)
        letters = LETTERS[:k]
        return Puzzle(
            images=[first, second],
            answer=letters[truth],
            prompt_vars={"count": k, "letters": ", ".join(letters)},
            params={
                "candidates": k,
                "mode": mode,
                "strength": self.strength,
                "size": size,
                "matrix": [[float(v) for v in row] for row in matrix],
                "candidate_matrices": [[[float(v) for v in row] for row in m] for m in matrices],
                "point": [float(v) for v in marked],
                "candidate_points": [[float(v) for v in p] for p in images],
                "true_index": truth,
                "radius": radius,
                "marker_colour": list(colour),
            },
        )

    @staticmethod
    def parse(response: str) -> str | None:
        """The answered candidate letter (A..H), else None.

        >>> [Correspondence.parse(f"<answer>{a}</answer>") for a in ("B", "(c)", "h.", "I", "A and B")]
        ['B', 'C', 'H', None, None]
        >>> Correspondence.parse("the answer is B") is None
        True
        """
        return parse_letter(response, MAX_CANDIDATES)

    @classmethod
    def score(cls, response: str, ground_truth: str, params: dict | None = None) -> float:
        """1.0 for the true letter, else 0.0; a letter beyond the puzzle's K is wrong.

        >>> [Correspondence.score(f"<think>x</think><answer>{a}</answer>", "C") for a in ("C", "c", "D")]
        [1.0, 1.0, 0.0]
        """
        try:
            count = int((params or {}).get("candidates", MAX_CANDIDATES))
        except (TypeError, ValueError, AttributeError):
            count = MAX_CANDIDATES
        answer = parse_letter(response, max(1, min(count, MAX_CANDIDATES)))
        return float(answer is not None and answer == ground_truth)
