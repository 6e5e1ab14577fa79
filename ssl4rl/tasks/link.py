"""Link prediction on a graph: do nodes u and v share an edge in the full graph?

Every puzzle draws both a linked pair (the item node u and a random neighbour v) and an unlinked
pair, then yes or no 50/50, so no node is asked only one way (a node is skipped when either
pair cannot be made: no neighbour, a leaf end that would show no edge once its edge is hidden,
no candidate two hops away). A yes pair's edge is removed from the shown subgraph, so its ends
each show one edge fewer than they have; the unlinked pair's ends are the nodes whose degrees
are closest to those shown degrees (u's minus one, v's minus one), so shown degrees do not tell
the answer, and the second end is not linked to the first: anywhere (`easy`, drawn with
probability proportional to degree + 1) or exactly two hops away (`hard`: they share a
neighbour); `medium` mixes both. The order of the two in the question is random.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ssl4rl.images import SkipImage
from ssl4rl.tasks.common import Puzzle
from ssl4rl.tasks.graph_common import Layout, ball, check_options, parse_yes_no
from ssl4rl.tasks.neighbour import closest_in_degree, degree_biased_pool, draw_far

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
        check_options(self)

    def make(self, rng: np.random.Generator, graph, node: int) -> Puzzle:
        friends = sorted(graph.adj[node])
        if not friends:
            raise SkipImage("isolated-node")
        v = friends[int(rng.integers(len(friends)))]
        if len(friends) == 1 or len(graph.adj[v]) == 1:  # a linked end would show no edge at all
            raise SkipImage("leaf-pair")
        negatives = self.negatives if self.negatives != "mixed" else ("two" if rng.random() < 0.5 else "any")
        # The no pair is drawn whatever the answer (a failure skips the node, never one answer):
        # its ends have the degrees the linked ends show once their edge is hidden.
        u = closest_in_degree(rng, graph, degree_biased_pool(rng, graph, lambda n: n not in (node, v), 1), 1, len(friends) - 1)[0]
        w = draw_far(rng, graph, u, 1, negatives, {node, v}, [], len(graph.adj[v]) - 1)[0]
        linked = bool(rng.random() < 0.5)
        ends = [node, v] if linked else [u, w]
        pair = ends if rng.random() < 0.5 else ends[::-1]
        hidden = [(node, v)] if linked else []
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
