"""A graph as the puzzles see it: a text-attributed graph or a knowledge graph, nodes 0..n-1,
built from raw columns by `assemble`, which every reader (bundled, tables, releases) calls.

Held-out edges: a fixed share of a text-attributed graph's edges (by a hash of the two node ids,
HELDOUT_EDGES) and a knowledge graph's valid/test triples are removed from the graph puzzles are
made from, so `ssl4rl eval --graph-task link-prediction` asks about links no training prompt showed.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import accumulate

from ssl4rl.errors import UserError

HELDOUT_EDGES = 0.1  # share of a text-attributed graph's edges kept out of every puzzle


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
