"""Similarity (SSL-R1): contrastive learning as multiple choice. An anchor view, then K candidate
views; exactly one candidate is another augmented view of the anchor's image, the other K-1 are
views of K-1 other images of the split. Answer the letter of the matching candidate.

Shortcut controls: every view (anchor included) is an independent SimCLR-style augmentation
(random resized crop to the same side, flip, colour jitter, grayscale, blur, ...), so size and
format tell nothing and the match is never pixel-exact; the matching candidate's position is
drawn uniformly. An image with fewer than K-1 partner images (the first images of a split) is
skipped as 'no-partners' rather than shown with fewer candidates.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from ssl4rl.errors import SkipItem
from ssl4rl.images import SourceImage
from ssl4rl.tasks.augment import PRESETS, augment
from ssl4rl.tasks.common import LETTERS, MAX_CANDIDATES, LetterAnswer, Puzzle, candidate_prompt_vars


@dataclass
class Similarity(LetterAnswer):
    """Pick the candidate view that shows the same image as the anchor view."""

    candidates: int = 4  # K: candidate views, one of them from the anchor's image (2..8)
    preset: str = "default"  # SimCLR augmentation: 'default' or 'strong'
    size: int = 224  # side of every view

    name: ClassVar[str] = "similarity"
    min_side: ClassVar[int] = 28
    DIFFICULTY: ClassVar[dict[str, dict]] = {
        "easy": {"candidates": 3, "preset": "default"},
        "medium": {"candidates": 4, "preset": "default"},
        "hard": {"candidates": 6, "preset": "strong"},
    }

    def __post_init__(self):
        if not 2 <= self.candidates <= MAX_CANDIDATES:
            raise ValueError(f"candidates must be between 2 and {MAX_CANDIDATES} (got {self.candidates})")
        if self.preset not in ("default", "strong"):
            raise ValueError(f"preset must be 'default' or 'strong' (got {self.preset!r})")
        if self.size < 28:
            raise ValueError(f"size must be at least 28 (got {self.size})")

    @property
    def partners(self) -> int:
        return self.candidates - 1

    def make(self, rng: np.random.Generator, source: SourceImage, others=()) -> Puzzle:
        wanted = self.candidates - 1
        if len(others) < wanted:
            raise SkipItem("no-partners")
        picks = [others[int(i)] for i in rng.choice(len(others), size=wanted, replace=False)]
        answer = int(rng.integers(self.candidates))
        shown = picks[:answer] + [source] + picks[answer:]
        aug = replace(PRESETS[self.preset], size=self.size)
        anchor = augment(rng, source.pixels, aug)
        views = [augment(rng, image.pixels, aug) for image in shown]
        return Puzzle(
            images=[anchor, *views],
            answer=LETTERS[answer],
            prompt_vars=candidate_prompt_vars(self.candidates),
            params={
                "candidates": self.candidates,
                "preset": self.preset,
                "anchor": source.source_id,
                "sources": [image.source_id for image in shown],
            },
        )
