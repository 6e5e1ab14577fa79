"""Placeholder: being written (issue 5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass
class Inpainting:
    name: ClassVar[str] = "inpainting"
    partners: ClassVar[int] = 0
    min_side: ClassVar[int] = 56
    DIFFICULTY: ClassVar[dict] = {"easy": {}, "medium": {}, "hard": {}}

    def make(self, rng, source, others=()):
        raise NotImplementedError("inpainting is being written")

    @staticmethod
    def parse(response):
        return None

    @classmethod
    def score(cls, response, ground_truth, params=None):
        return 0.0
