"""Link prediction on a graph: do nodes u and v share an edge in the full graph?

Yes and no are drawn 50/50 for every pair, and a node that could not have both answers (no
neighbour, or at `hard` no node two hops away) is skipped, so no node is only ever asked one
way. A yes pair's edge is removed from the shown subgraph, so its two ends each show one edge fewer
than they have; a no pair's v is the node whose degree is closest to that of a random neighbour
of u (what a yes pair's v would have been) minus 2, among nodes not linked to u, so the shown
degrees of the pair, and with one hop the number of nodes shown, match between yes and no but
for the neighbours the two share (the evidence the task asks for). Negatives lie anywhere
(`easy`) or exactly two hops away (`hard`: they share a neighbour); `medium` mixes both. The order of u and v in the question is random.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ssl4rl.images import SkipImage
from ssl4rl.tasks.common import Puzzle
from ssl4rl.tasks.graph_common import Layout, ball, distances, parse_yes_no
from ssl4rl.tasks.neighbour import draw_far

NEGATIVES = ("any", "two", "mixed")


@dataclass
class Link:
    """Decide whether two graph nodes are linked (a linked pair's edge is hidden)."""

    hops: int = 1  # neighbourhood radius shown around u and v
    max_nodes: int = 16  # most nodes shown
    text_chars: int = 60  # each node text is cut to this many characters
    negatives: str = "mixed"  # no pairs: 'any' node not linked, 'two' hops away, or 'mixed'

    name: ClassVar[str] = "link"
    modality: ClassVar[str] = "graph"
    partners: ClassVar[int] = 0
    min_side: ClassVar[int] = 1
    DIFFICULTY: ClassVar[dict] = {"easy": {"negatives": "any"}, "medium": {"negatives": "mixed"}, "hard": {"negatives": "two", "max_nodes": 20}}

    def __post_init__(self):
        if self.negatives not in NEGATIVES:
            raise ValueError(f"negatives must be one of {', '.join(NEGATIVES)} (got {self.negatives!r})")
        if not 1 <= self.hops <= 3 or self.max_nodes < 2 or self.text_chars < 8:
            raise ValueError(f"hops must be 1..3, max_nodes at least 2 and text_chars at least 8 (got {self.hops}, {self.max_nodes}, {self.text_chars})")

    def make(self, rng: np.random.Generator, graph, node: int) -> Puzzle:
        friends = sorted(graph.adj[node])
        if not friends:
            raise SkipImage("isolated-node")
        negatives = self.negatives if self.negatives != "mixed" else ("two" if rng.random() < 0.5 else "any")
        if negatives == "two" and not any(d == 2 and not graph.linked(node, n) for n, d in distances(graph, node, 2).items()):
            raise SkipImage("too-few-distance-2-nodes")
        linked = bool(rng.random() < 0.5)
        other = friends[int(rng.integers(len(friends)))]  # a yes pair's v
        if not linked:  # a yes pair's ends each show one edge fewer than they have: a no pair's v makes up for both
            other = draw_far(rng, graph, node, 1, negatives, set(), [], len(graph.adj[other]) - 2)[0]
        pair = [node, other] if rng.random() < 0.5 else [other, node]
        hidden = [(node, other)] if linked else []
        nodes = ball(rng, graph, pair, self.hops, self.max_nodes, hidden)
        layout = Layout(rng, graph, nodes, hidden)
        u, v = (layout.number[n] for n in pair)
        params = layout.params(self.text_chars)
        params.update(u=u, v=v, negatives=negatives)
        return Puzzle(
            images=[],
            answer="yes" if linked else "no",
            prompt_vars={"u": u, "v": v, "nodes": layout.node_lines(self.text_chars), "edges": layout.edge_text()},
            params=params,
        )

    @staticmethod
    def parse(response: str) -> str | None:
        return parse_yes_no(response)

    @classmethod
    def score(cls, response: str, ground_truth: str, params: dict | None = None) -> float:
        return float(cls.parse(response) == str(ground_truth).strip().lower() and ground_truth in ("yes", "no"))
