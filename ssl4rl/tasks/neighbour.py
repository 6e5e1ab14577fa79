"""Neighbour prediction on a graph: which of K candidate nodes is adjacent to the centre node in
the full graph? The edge is not shown.

The true neighbour is a uniformly drawn neighbour of the centre (hubs are drawn often: the
friendship paradox); distractors are the nodes whose degree is closest to the truth's shown
degree (its degree minus the hidden edge) among nodes that are not linked to the centre (a
puzzle is skipped when one of them is off by more than half that degree, and 2) (hop distance >= 2; at
`hard`, exactly 2 without the hidden edge: they share a neighbour with the centre, and so must
the truth once its edge is hidden, else the puzzle is skipped). The shown subgraph is the neighbourhood of the centre and
every candidate (nearest first, the centre's turn first), the truth's edge to the centre removed;
a centre that would show no edge is skipped. The right letter is drawn uniformly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ssl4rl.errors import SkipItem
from ssl4rl.sources.graph import Graph
from ssl4rl.tasks.common import LETTERS, LetterAnswer, Puzzle
from ssl4rl.tasks.graph_common import Layout, ball, check_options, choice_vars, distances, letter_lines, place
from ssl4rl.tasks.graph_distractors import draw_far

DISTANCES = ("any", "two")


@dataclass
class Neighbour(LetterAnswer):
    """Find the candidate node that is linked to the centre node (its edge is hidden)."""

    candidates: int = 4  # K: candidate nodes
    hops: int = 1  # neighbourhood radius shown around the centre and each candidate
    max_nodes: int = 16  # most nodes shown
    text_chars: int = 160  # each node text is cut to this many characters
    distance: str = "any"  # distractors: 'any' node not linked to the centre, or 'two' hops away

    name: ClassVar[str] = "neighbour"
    modality: ClassVar[str] = "graph"
    FOCUS: ClassVar[tuple[str, ...]] = ("centre",)  # params naming the node the puzzle is about
    partners: ClassVar[int] = 0
    DIFFICULTY: ClassVar[dict] = {
        "easy": {"candidates": 3},
        "medium": {"candidates": 4},
        "hard": {"candidates": 6, "max_nodes": 20, "distance": "two"},
    }

    @property
    def focus_nodes(self) -> int:
        """Nodes always shown when a row is fitted to the budget: the centre and its candidates."""
        return 1 + self.candidates

    def __post_init__(self):
        if self.distance not in DISTANCES:
            raise ValueError(f"distance must be one of {', '.join(DISTANCES)} (got {self.distance!r})")
        check_options(self, min_nodes=self.candidates + 1)

    def make(self, rng: np.random.Generator, graph: Graph, node: int) -> Puzzle:
        friends = sorted(graph.adj[node])
        if not friends:
            raise SkipItem("isolated-node")
        truth = friends[int(rng.integers(len(friends)))]
        hidden = [(node, truth)]
        if self.distance == "two" and distances(graph, node, 2, hidden).get(truth) != 2:
            raise SkipItem("truth-not-two-hops")  # distractors share a neighbour with the centre: so must the truth
        # the truth shows one edge fewer than it has (the hidden one): distractors match that
        distractors = draw_far(rng, graph, node, self.candidates - 1, self.distance, {truth}, hidden, len(graph.adj[truth]) - 1)
        order, slot = place(rng, truth, distractors)
        nodes = ball(rng, graph, [node, *order], self.hops, self.max_nodes, hidden)
        layout = Layout(rng, graph, nodes, hidden)
        if not layout.shows_edge(node):  # its only edge is the hidden one: nothing to reason from
            raise SkipItem("centre-shows-no-edge")
        numbers = [layout.number[n] for n in order]
        params = layout.params(self.text_chars)
        params.update(candidates=self.candidates, centre=layout.number[node], candidate_nodes=numbers)
        return Puzzle(
            images=[],
            answer=LETTERS[slot],
            prompt_vars={"centre": layout.number[node], "nodes": layout.node_lines(self.text_chars), "edges": layout.edge_text(),
                         "candidates": letter_lines([f"node {n}" for n in numbers]), **choice_vars(self.candidates)},
            params=params,
        )  # fmt: skip
