"""Fixtures that make their own data: folders of small, distinct, textured images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def textured_image(seed: int, width: int, height: int) -> Image.Image:
    """Blocky colour noise: every crop is unique, so pixel-exact searches have one answer."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (height // 4 + 1, width // 4 + 1, 3), dtype=np.uint8)
    pixels = np.kron(blocks, np.ones((4, 4, 1), dtype=np.uint8))[:height, :width]
    pixels = pixels ^ rng.integers(0, 8, pixels.shape, dtype=np.uint8)  # break the 4x4 symmetry
    return Image.fromarray(pixels, "RGB")


def write_folder(root: Path, count: int, size=(160, 128), fmt="PNG") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        width, height = size[0] + 8 * (i % 5), size[1] + 4 * (i % 3)
        textured_image(i, width, height).save(root / f"img{i:03d}.{fmt.lower()}", fmt)
    return root


@pytest.fixture
def photo_folder(tmp_path) -> Path:
    return write_folder(tmp_path / "photos", 24)
