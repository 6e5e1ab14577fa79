"""Graphs as a source: a graph read once, with one item per node so the builder's sharding,
seeding, split and resume work as for images.

Each node is an item: its stable id is the node id and its payload (`node_payload`) is what the
content hash, and so the train/test split, is computed from. The graph itself travels by
reference (`GraphRef`): every worker loads it once (`load_graph`, cached). A reference names a
bundled graph (ssl4rl.sources.graph_samples), a preset with its data folder (the release as it
ships, ssl4rl.sources.graph_releases, or tables) or a folder of tables (ssl4rl.sources.graph_tables).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ssl4rl.errors import UserError
from ssl4rl.sources import graph_releases, graph_samples, graph_tables
from ssl4rl.sources.common import RawItem
from ssl4rl.sources.graph import Graph
from ssl4rl.sources.graph_samples import BUNDLED
from ssl4rl.sources.presets import PRESETS


def node_payload(node_id: str) -> bytes:
    """What a node's content hash (split, dedup) is computed from."""
    return b"graph-node\0" + node_id.encode("utf-8")


@dataclass(frozen=True)
class GraphRef:
    """How to load a graph: a bundled name, a preset with its data folder, or a folder path."""

    source: str
    data: str | None = None


@functools.lru_cache(maxsize=2)
def load_graph(ref: GraphRef) -> Graph:
    """The graph a reference names, read once per process."""
    if ref.source in BUNDLED:
        if ref.data is not None:
            raise UserError(f"source '{ref.source}' is bundled and takes no --data")
        return graph_samples.bundled(ref.source)
    if ref.source in PRESETS and PRESETS[ref.source].kind == "graph":
        if ref.data is None:
            preset = PRESETS[ref.source]
            raise UserError(f"source '{ref.source}' needs --data PATH: {preset.download} (download: {preset.url})")
        return read_preset(ref.source, Path(ref.data))
    if ref.data is not None:
        raise UserError(f"unknown graph source '{ref.source}' (bundled: {', '.join(BUNDLED)}; presets: {', '.join(graph_presets())})")
    if not Path(ref.source).exists():
        raise UserError(f"graph source '{ref.source}' is neither bundled ({', '.join(BUNDLED)}), a preset ({', '.join(graph_presets())}) nor an existing folder")
    return graph_tables.read_folder(Path(ref.source), Path(ref.source).name)


def read_preset(name: str, folder: Path) -> Graph:
    """A preset's folder: the release as it ships (ssl4rl.sources.graph_releases), or already
    in the table / triple layout."""
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder (--data of source '{name}')")
    tables = any(folder.glob("nodes.*")) or any(folder.glob("edges.*")) or (folder / "train.txt").is_file()
    if name in graph_releases.READERS and not tables:
        return graph_releases.READERS[name](folder, name)
    return graph_tables.read_folder(folder, name)


def graph_presets() -> list[str]:
    return [name for name, preset in PRESETS.items() if preset.kind == "graph"]


class GraphSource:
    """The builder's reader over a graph: first the counted drops, then one item per node."""

    kind = "graph"

    def __init__(self, ref: GraphRef):
        self.ref = ref
        self.graph = load_graph(ref)
        self.path = ref.data or ref.source
        self.preset = ref.source if ref.source in BUNDLED or ref.data is not None else None

    def published_split(self, node_id: str) -> str | None:
        """A release's published split (test nodes), else None: the builder's hash split."""
        if not self.graph.test_nodes:
            return None
        return "test" if self.graph.index[node_id] in self.graph.test_nodes else "train"

    def __iter__(self) -> Iterator[RawItem]:
        for what, reason in self.graph.skips:
            yield RawItem(what, None, reason)
        for node_id in self.graph.ids:
            yield RawItem(node_id, node_payload(node_id))


def open_graph_source(source: str, data: str | None = None) -> GraphSource:
    return GraphSource(GraphRef(source, str(data) if data is not None else None))
