"""Link prediction on a graph: do nodes u and v share an edge in the full graph?

Every puzzle draws both a linked pair (the item node u and a random neighbour v) and an unlinked
pair, then yes or no 50/50, so no node is asked only one way (a node is skipped when either
pair cannot be made: no neighbour, a leaf end that would show no edge once its edge is hidden,
no candidate two hops away). A yes pair's edge is removed from the shown subgraph, so its ends
each show one edge fewer than they have; the unlinked pair's ends are the nodes whose degrees
are closest to those shown degrees (u's minus one, v's minus one), so shown degrees do not tell
the answer, and the second end is not linked to the first: anywhere (`easy`, drawn with
probability proportional to degree + 1) or exactly two hops away (`hard`: they share a
neighbour); `medium` mixes both. The unlinked pair is also matched to the linked pair's shape in
the shown graph (shared neighbours, path length; `structure`), so neither answers: a node whose
pairs cannot be matched is skipped. The order of the two in the question is random.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ssl4rl.errors import SkipItem
from ssl4rl.tasks.common import Puzzle
from ssl4rl.tasks.graph_common import Layout, ball, check_options, parse_yes_no
from ssl4rl.tasks.graph_common import induced_edges
from ssl4rl.tasks.graph_distractors import degree_biased_pool, draw_far, ranked_by_degree

FIRST_ENDS = 4  # first ends of an unlinked pair tried, closest in degree first


def structure(graph, nodes: list[int], a: int, b: int, hidden: list[tuple[int, int]] = ()) -> tuple[int, int]:
    """The shape of a pair in the shown graph: (shared neighbours up to 3, path length 2, 3 or 0
    for longer or none), what a linked pair and an unlinked pair are matched on."""
    links: dict[int, set[int]] = {n: set() for n in nodes}
    for x, y in induced_edges(graph, nodes, hidden):
        links[x].add(y)
        links[y].add(x)
    shared = len(links[a] & links[b])
    path = 2 if shared else 3 if any(links[z] & links[b] for z in links[a]) else 0
    return min(shared, 3), path

NEGATIVES = ("any", "two", "mixed")


@dataclass
class Link:
    """Decide whether two graph nodes are linked (a linked pair's edge is hidden)."""

    hops: int = 1  # neighbourhood radius shown around u and v
    max_nodes: int = 16  # most nodes shown
    text_chars: int = 160  # each node text is cut to this many characters
    negatives: str = "mixed"  # no pairs: 'any' node not linked, 'two' hops away, or 'mixed'

    name: ClassVar[str] = "link"
    modality: ClassVar[str] = "graph"
    FOCUS: ClassVar[tuple[str, ...]] = ("u", "v")  # params naming the nodes the puzzle is about
    partners: ClassVar[int] = 0
    DIFFICULTY: ClassVar[dict] = {"easy": {"negatives": "any"}, "medium": {"negatives": "mixed"}, "hard": {"negatives": "two", "max_nodes": 20}}

    @property
    def focus_nodes(self) -> int:
        """Nodes always shown when a row is fitted to the budget: u and v."""
        return 2

    def __post_init__(self):
        if self.negatives not in NEGATIVES:
            raise ValueError(f"negatives must be one of {', '.join(NEGATIVES)} (got {self.negatives!r})")
        check_options(self)

    def make(self, rng: np.random.Generator, graph, node: int) -> Puzzle:
        friends = sorted(graph.adj[node])
        if not friends:
            raise SkipItem("isolated-node")
        v = friends[int(rng.integers(len(friends)))]
        if len(friends) == 1 or len(graph.adj[v]) == 1:  # a linked end would show no edge at all
            raise SkipItem("leaf-pair")
        hidden = [(node, v)]
        linked_nodes = ball(rng, graph, [node, v], self.hops, self.max_nodes, hidden)
        shape = structure(graph, linked_nodes, node, v, hidden)
        # The no pair is drawn whatever the answer (a failure skips the node, never one answer):
        # its ends have the degrees the linked ends show once their edge is hidden, and the shown
        # graph around it has the linked pair's shape (shared neighbours, path length).
        u, w, negatives, unlinked_nodes = self._unlinked(rng, graph, node, v, shape)
        linked = bool(rng.random() < 0.5)
        ends, nodes = ([node, v], linked_nodes) if linked else ([u, w], unlinked_nodes)
        pair = ends if rng.random() < 0.5 else ends[::-1]
        layout = Layout(rng, graph, nodes, hidden if linked else [])
        a, b = (layout.number[n] for n in pair)
        params = layout.params(self.text_chars)
        params.update(u=a, v=b, negatives=negatives)
        return Puzzle(
            images=[],
            answer="yes" if linked else "no",
            prompt_vars={"u": a, "v": b, "nodes": layout.node_lines(self.text_chars), "edges": layout.edge_text()},
            params=params,
        )

    def _unlinked(self, rng: np.random.Generator, graph, node: int, v: int, shape: tuple) -> tuple:
        """(u, w, 'any' or 'two', shown nodes) of an unlinked pair: u the closest in degree to the
        node's shown degree, w to v's, not linked to u, anywhere and/or two hops away (`negatives`),
        the first whose shown neighbourhood has the linked pair's `shape`."""
        firsts = ranked_by_degree(rng, graph, degree_biased_pool(rng, graph, lambda n: n not in (node, v), 1), len(graph.adj[node]) - 1)[:FIRST_ENDS]
        kinds = ("two", "any") if self.negatives == "mixed" else (self.negatives,)
        for u in firsts:
            pool: dict[int, str] = {}
            for kind in kinds:
                try:
                    found = draw_far(rng, graph, u, 1, kind, {node, v}, [], len(graph.adj[v]) - 1, keep_all=True)
                except SkipItem:
                    continue
                for w in found:
                    pool.setdefault(w, kind)
            for w in ranked_by_degree(rng, graph, sorted(pool), len(graph.adj[v]) - 1):
                nodes = ball(rng, graph, [u, w], self.hops, self.max_nodes)
                if structure(graph, nodes, u, w) == shape:
                    return u, w, pool[w], nodes
        raise SkipItem("no-shape-matched-pair")

    @staticmethod
    def parse(response: str) -> str | None:
        return parse_yes_no(response)

    @classmethod
    def score(cls, response: str, ground_truth: str, params: dict | None = None) -> float:
        return float(cls.parse(response) == str(ground_truth).strip().lower() and ground_truth in ("yes", "no"))
