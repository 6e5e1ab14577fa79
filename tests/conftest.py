"""Fixtures that make their own data: folders of small, distinct, textured images."""

from __future__ import annotations

import contextlib
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


@pytest.fixture(scope="session")
def rotation_set(tmp_path_factory) -> Path:
    """A small rotation puzzle set built from generated images."""
    from ssl4rl.build import BuildConfig, build

    root = tmp_path_factory.mktemp("rotation")
    photos = write_folder(root / "photos", 16, size=(140, 120))
    out = root / "data"
    build(BuildConfig(task="rotation", source=str(photos), out=str(out), per_image=2, test_fraction=0.25), progress_bar=False)
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, rotation_set) -> Path:
    """The tiny offline Qwen2.5-VL, warm-started on the answer format (shared by the session)."""
    import os

    os.environ["HF_HUB_OFFLINE"] = "1"
    from ssl4rl.tiny_vlm import make_tiny_qwen2_5_vl, warm_start

    path = make_tiny_qwen2_5_vl(tmp_path_factory.mktemp("tiny") / "model")
    warm_start(path, rotation_set, steps=60)
    return path


def saved_actor_weights(actor: Path) -> dict:
    """A verl FSDP actor's whole tensors as its ranks saved them: each DTensor's local shards
    joined along its shard dimension (1-D meshes), plain tensors as saved."""
    import json

    import torch

    world = json.loads((actor / "fsdp_config.json").read_text())["world_size"]
    ranks = [torch.load(actor / f"model_world_size_{world}_rank_{r}.pt", weights_only=False) for r in range(world)]
    whole = {}
    for name, first in ranks[0].items():
        placement = first.placements[0] if hasattr(first, "placements") else None
        if placement is not None and placement.is_shard():
            whole[name] = torch.cat([shards[name].to_local() for shards in ranks], dim=placement.dim)
        else:
            whole[name] = first.to_local() if placement is not None else first
    return whole


def lora_fused(weights: dict, r: int, alpha: float) -> dict:
    """The plain model's weights from a PEFT-wrapped state dict: base + alpha/r * B @ A."""
    plain = {k.removeprefix("base_model.model.").replace(".base_layer.", "."): v for k, v in weights.items() if ".lora_" not in k}
    for name, down in weights.items():
        if ".lora_A." in name:
            up = weights[name.replace(".lora_A.", ".lora_B.")]
            target = name.split(".lora_A.")[0].removeprefix("base_model.model.") + ".weight"
            plain[target] = plain[target] + (alpha / r) * (up @ down)
    return plain


@pytest.fixture(scope="session")
def text_model(tmp_path_factory):
    """The tiny offline Qwen2 text model (graph puzzles), untrained; shared by the session."""
    from ssl4rl.tiny_lm import make_tiny_qwen2

    return make_tiny_qwen2(tmp_path_factory.mktemp("lm") / "tiny")


@contextlib.contextmanager
def build_interrupted_at(call: int):
    """Inside the block the builder's driver stops at its `call`-th item (KeyboardInterrupt, as
    Ctrl-C would), with what came before written; the block must raise it. After the block builds
    run whole again."""
    import ssl4rl.build as build_module

    real, calls = build_module.make_rows, {"n": 0}

    def interrupted(job):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return real(job)

    build_module.make_rows = interrupted
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        build_module.make_rows = real
