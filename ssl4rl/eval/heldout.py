"""Held-out questions: those none of whose images were a source image of a build's train split.

The SSL4RL recipe builds puzzles from a benchmark's own images and then scores that benchmark;
a question whose image the model trained on is not held out. Builds record each source image's
content hash (`extra_info.source_hash`, the hash the train/test split is decided by), so the
check is exact whatever the task: a benchmark image is compared by the same hash of its bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from ssl4rl.errors import UserError
from ssl4rl.schema import content_key, is_puzzle_build, split_files


def train_image_hashes(builds: list[str]) -> set[str]:
    """Content hashes of every source image in the builds' train splits."""
    hashes: set[str] = set()
    for build in builds:
        folder = Path(build)
        if not folder.is_dir() or not is_puzzle_build(folder):
            raise UserError(f"--heldout {build}: not a puzzle build folder (made by `ssl4rl build`)")
        for path in split_files(folder, "train"):
            infos = pq.read_table(path, columns=["extra_info"]).column("extra_info").to_pylist()
            found = {info.get("source_hash") or "" for info in infos}
            if "" in found:
                raise UserError(f"--heldout {build}: rows without extra_info.source_hash (built by an older ssl4rl); rebuild it")
            hashes |= found
    return hashes


def train_graph_pairs(builds: list[str]) -> set[frozenset]:
    """Node-id pairs of the builds' train splits that a model saw linked or asked about: every
    shown edge, and each puzzle's asked pairs (link's u and v, a centre or head and each
    candidate). A link-prediction question is held out when its pair is none of these."""
    pairs: set[frozenset] = set()
    for build in builds:
        for path in split_files(build, "train"):
            for info in pq.read_table(path, columns=["extra_info"]).column("extra_info").to_pylist():
                params = json.loads(info.get("params") or "{}")
                ids = params.get("original")
                if not ids:
                    continue
                asked = [(a, b) for a, b in params.get("edges", [])]
                if "u" in params:
                    asked.append((params["u"], params["v"]))
                focus = params.get("centre", params.get("head"))
                asked += [(focus, c) for c in params.get("candidate_nodes", [])] if focus is not None else []
                pairs |= {frozenset((ids[a], ids[b])) for a, b in asked}
    return pairs


def image_hash(data: bytes) -> str:
    return content_key(data).hex()


def is_heldout(images: list[bytes], train_hashes: set[str]) -> bool:
    return not any(image_hash(data) in train_hashes for data in images)
