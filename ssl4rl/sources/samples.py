"""The bundled default: real photographs that ship inside scikit-image, so building needs no
download. Synthetic drawings (chessboards, logos, phantoms) are left out."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ssl4rl.errors import UserError
from ssl4rl.sources.folder import FolderSource

PHOTOS = [
    "astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "clock_motion.png",
    "coffee.png", "coins.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png",
    "moon.png", "motorcycle_left.png", "motorcycle_right.png", "page.png", "retina.jpg",
    "rocket.jpg", "text.png",
]  # fmt: skip


def samples_dir() -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("--source samples needs scikit-image (pip install scikit-image)")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


class SamplesSource(FolderSource):
    kind = "samples"

    def __init__(self):
        root = samples_dir()
        files = [root / name for name in PHOTOS if (root / name).is_file()]
        if not files:
            raise UserError(f"no sample photos found in {root}")
        super().__init__(root, files)
