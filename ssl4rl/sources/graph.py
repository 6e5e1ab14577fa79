"""Graphs as a source: a text-attributed graph or a knowledge graph, read once, with one item per
node so the builder's sharding, seeding, split and resume work as for images.

Each node is an item: its stable id is the node id and its payload (`node_payload`) is what the
content hash, and so the train/test split, is computed from. The graph itself travels by
reference (`GraphRef`): every worker loads it once (`load_graph`, cached).

Held-out edges: a fixed share of a text-attributed graph's edges (by a hash of the two node ids,
HELDOUT_EDGES) and a knowledge graph's valid/test triples are removed from the graph puzzles are
made from, so `ssl4rl eval --graph-task link-prediction` asks about links no training prompt showed.
"""

from __future__ import annotations

import functools
import hashlib
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Iterator

from ssl4rl.errors import UserError
from ssl4rl.sources.common import RawImage

HELDOUT_EDGES = 0.1  # share of a text-attributed graph's edges kept out of every puzzle
BUNDLED = {
    "karate": "Zachary's karate club (networkx): 34 members, the two clubs as labels, no text",
    "florentine": "Florentine families (networkx): 15 families, their names as text",
    "lesmis": "Les Miserables co-occurrence (networkx): 77 characters, their names as text",
    "synthetic": "a seeded text-attributed graph: 160 notes in 4 topic communities, topics as labels",
    "synthetic-kg": "a seeded knowledge graph: people, cities and countries with 5 relations",
}


@dataclass
class Graph:
    """Nodes 0..n-1 with their source ids, texts and labels; the training adjacency (held-out
    edges removed); for knowledge graphs the relations of each directed training edge."""

    name: str
    ids: list[str]
    texts: list[str]
    labels: list[str | None]
    adj: list[set[int]]
    heldout: set[tuple[int, int]] = field(default_factory=set)  # (min, max) node pairs
    relations: dict[tuple[int, int], list[str]] = field(default_factory=dict)  # KG: (head, tail) -> relations
    heldout_facts: list[tuple[int, str, int]] = field(default_factory=list)  # KG: valid/test triples
    skips: list[tuple[str, str]] = field(default_factory=list)  # (what, reason) dropped while reading
    test_nodes: set[int] = field(default_factory=set)  # a release's published test split (Wiki-CS), else empty

    def __post_init__(self):
        self.index = {node_id: i for i, node_id in enumerate(self.ids)}
        self.facts = {(h, r, t) for (h, t), rels in self.relations.items() for r in rels} | set(self.heldout_facts)
        self._full = {}  # node -> held-out partners
        for u, v in self.heldout:
            self._full.setdefault(u, set()).add(v)
            self._full.setdefault(v, set()).add(u)
        for h, _, t in self.heldout_facts:
            self._full.setdefault(h, set()).add(t)
            self._full.setdefault(t, set()).add(h)
        self._weights = list(accumulate(len(a) + 1 for a in self.adj))  # degree-biased sampling
        self.out_facts: dict[int, list[tuple[str, int]]] = {}  # KG: head -> sorted (relation, tail)
        self.tails: dict[str, list[int]] = {}  # KG: relation -> sorted tails
        for (h, t), rels in sorted(self.relations.items()):
            for r in rels:
                self.out_facts.setdefault(h, []).append((r, t))
                self.tails.setdefault(r, []).append(t)
        for facts in self.out_facts.values():
            facts.sort()
        self.tails = {r: sorted(set(ts)) for r, ts in self.tails.items()}

    @property
    def is_kg(self) -> bool:
        return bool(self.relations) or bool(self.heldout_facts)

    def __len__(self) -> int:
        return len(self.ids)

    def linked(self, u: int, v: int) -> bool:
        """An edge of the full graph, held-out edges included."""
        return v in self.adj[u] or v in self._full.get(u, ())

    def degree_biased(self, rng) -> int:
        """A node drawn with probability proportional to its degree + 1: the distribution of a
        random edge's end, so true neighbours and distractors do not differ in degree."""
        return bisect_right(self._weights, int(rng.integers(self._weights[-1])))


def node_payload(node_id: str) -> bytes:
    """What a node's content hash (split, dedup) is computed from."""
    return b"graph-node\0" + node_id.encode("utf-8")


def is_heldout_edge(a: str, b: str) -> bool:
    """Whether the edge between node ids a and b is held out of the puzzles (order-free)."""
    key = "\0".join(sorted((a, b))).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") / 2**64 < HELDOUT_EDGES


def assemble(name: str, ids: list, texts: list, labels: list, edges: list, relations: list | None = None,
             heldout_facts: list | None = None, skips: list | None = None) -> Graph:
    """A Graph from raw columns: duplicate node ids, edges to unknown nodes, self-loops and
    duplicate edges are dropped and counted; an empty graph is an error."""
    skips = list(skips or [])
    index: dict[str, int] = {}
    kept_ids, kept_texts, kept_labels = [], [], []
    for node_id, text, label in zip(ids, texts, labels):
        node_id = "" if node_id is None else str(node_id)
        if node_id == "" or node_id in index:
            skips.append((f"node:{node_id}", "duplicate-node" if node_id else "missing-node-id"))
            continue
        index[node_id] = len(kept_ids)
        kept_ids.append(node_id)
        kept_texts.append("" if text is None else " ".join(str(text).split()))
        kept_labels.append(None if label is None or str(label) == "" else str(label))
    if not kept_ids:
        raise UserError(f"{name}: the graph has no nodes")
    adj: list[set[int]] = [set() for _ in kept_ids]
    heldout: set[tuple[int, int]] = set()
    rel: dict[tuple[int, int], list[str]] = {}
    for k, (src, dst) in enumerate(edges):
        src, dst = str(src), str(dst)
        what = f"edge:{src}->{dst}"
        if src not in index or dst not in index:
            skips.append((what, "edge-unknown-node"))
            continue
        u, v = index[src], index[dst]
        if u == v:
            skips.append((what, "self-loop"))
            continue
        if relations is not None:  # knowledge graph: directed, labelled; one fact per (h, r, t)
            rels = rel.setdefault((u, v), [])
            if relations[k] in rels:
                skips.append((what, "duplicate-edge"))
                continue
            rels.append(relations[k])
            adj[u].add(v)
            adj[v].add(u)
            continue
        pair = (min(u, v), max(u, v))
        if v in adj[u] or pair in heldout:
            skips.append((what, "duplicate-edge"))
        elif is_heldout_edge(src, dst):
            heldout.add(pair)
        else:
            adj[u].add(v)
            adj[v].add(u)
    facts = []
    for h, r, t in heldout_facts or []:
        if str(h) in index and str(t) in index and str(h) != str(t):
            facts.append((index[str(h)], str(r), index[str(t)]))
        else:
            skips.append((f"fact:{h}->{t}", "edge-unknown-node" if str(h) != str(t) else "self-loop"))
    if not any(adj):
        raise UserError(f"{name}: the graph has no edges (after dropping self-loops and edges to unknown nodes)")
    return Graph(name, kept_ids, kept_texts, kept_labels, adj, heldout, rel, facts, skips)


@dataclass(frozen=True)
class GraphRef:
    """How to load a graph: a bundled name, a preset with its data folder, or a folder path."""

    source: str
    data: str | None = None


@functools.lru_cache(maxsize=2)
def load_graph(ref: GraphRef) -> Graph:
    """The graph a reference names, read once per process."""
    from ssl4rl.sources import graph_samples, graph_tables
    from ssl4rl.sources.presets import PRESETS

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
    from ssl4rl.sources import graph_releases, graph_tables

    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder (--data of source '{name}')")
    tables = any(folder.glob("nodes.*")) or any(folder.glob("edges.*")) or (folder / "train.txt").is_file()
    if name in graph_releases.READERS and not tables:
        return graph_releases.READERS[name](folder, name)
    return graph_tables.read_folder(folder, name)


def graph_presets() -> list[str]:
    from ssl4rl.sources.presets import PRESETS

    return [name for name, preset in PRESETS.items() if preset.kind == "graph"]


class GraphSource:
    """The builder's reader over a graph: first the counted drops, then one item per node."""

    kind = "graph"

    def __init__(self, ref: GraphRef):
        self.ref = ref
        self.graph = load_graph(ref)
        self.path = ref.data or ref.source
        self.preset = ref.source if ref.source in BUNDLED or ref.data is not None else None

    def split_of(self, node_id: str) -> str | None:
        """A release's published split (test nodes), else None: the builder's hash split."""
        if not self.graph.test_nodes:
            return None
        return "test" if self.graph.index[node_id] in self.graph.test_nodes else "train"

    def __iter__(self) -> Iterator[RawImage]:
        for what, reason in self.graph.skips:
            yield RawImage(what, None, reason)
        for node_id in self.graph.ids:
            yield RawImage(node_id, node_payload(node_id))


def open_graph_source(source: str, data: str | None = None) -> GraphSource:
    return GraphSource(GraphRef(source, str(data) if data is not None else None))
