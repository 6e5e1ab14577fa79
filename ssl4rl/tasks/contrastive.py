"""Contrastive: two augmented views, of the same image (positive) or of two images (negative).

Positive and negative are drawn 50/50. The partner image of a negative is another image of the
same split, picked by the builder from a window of recent images with the sample's own seed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from ssl4rl.images import SourceImage
from ssl4rl.tasks.augment import PRESETS, augment
from ssl4rl.tasks.common import Puzzle, extract_answer


@dataclass
class Contrastive:
    """Decide whether two augmented views come from the same image."""

    preset: str = "default"  # SimCLR augmentation: 'default' or 'strong'
    size: int = 224  # side of each view

    name: ClassVar[str] = "contrastive"
    partners: ClassVar[int] = 1
    min_side: ClassVar[int] = 28
    DIFFICULTY: ClassVar[dict] = {"easy": {"preset": "default", "size": 336}, "medium": {"preset": "default"}, "hard": {"preset": "strong"}}

    def __post_init__(self):
        if self.preset not in ("default", "strong"):
            raise ValueError(f"preset must be 'default' or 'strong' (got {self.preset!r})")
        if self.size < 28:
            raise ValueError(f"size must be at least 28 (got {self.size})")

    def make(self, rng: np.random.Generator, source: SourceImage, others: list = ()) -> Puzzle:
        aug = replace(PRESETS[self.preset], size=self.size)
        # With no other image available (the first of a split), the pair must be positive.
        positive = not others or bool(rng.random() < 0.5)
        partner = source if positive else others[0]
        first = augment(rng, source.pixels, aug)
        second = augment(rng, partner.pixels, aug)
        return Puzzle(
            images=[first, second],
            answer="positive" if positive else "negative",
            params={"preset": self.preset, "partner_id": None if positive else partner.source_id},
        )

    @staticmethod
    def parse(response: str) -> str | None:
        """'positive' or 'negative' (case-insensitive), else None.

        >>> Contrastive.parse("<answer> Positive </answer>"), Contrastive.parse("<answer>yes</answer>")
        ('positive', None)
        """
        text = extract_answer(response)
        text = text.strip().strip(".").lower() if text else None
        return text if text in ("positive", "negative") else None

    @classmethod
    def score(cls, response: str, ground_truth: str, params: dict | None = None) -> float:
        return float(cls.parse(response) == ground_truth)
