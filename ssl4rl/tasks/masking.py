"""Attribute masking on a graph: a node's neighbourhood with that node's text hidden; which of K
candidate texts is its own?

Distractor texts come from nodes that are not shown (a shown node's text would mark itself as
wrong), differ from the truth and from each other as shown (after truncation), and are drawn
uniformly (`near` off) or from nodes just outside the shown neighbourhood (`near`: the same
region of the graph, so similar topics); the right letter is drawn uniformly. A node that shows
no edge (isolated once held-out edges are removed) is skipped. No labels are used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ssl4rl.errors import SkipItem
from ssl4rl.sources.graph import Graph
from ssl4rl.tasks.common import LETTERS, LetterAnswer, Puzzle
from ssl4rl.tasks.graph_common import Layout, TRIES, ball, check_options, choice_vars, distances, letter_lines, place, truncate


@dataclass
class Masking(LetterAnswer):
    """Recover a graph node's hidden text from its neighbourhood."""

    candidates: int = 4  # K: candidate texts
    hops: int = 1  # neighbourhood radius shown around the masked node
    max_nodes: int = 12  # most nodes shown
    text_chars: int = 160  # each node text is cut to this many characters
    near: bool = False  # distractors from just outside the shown neighbourhood

    name: ClassVar[str] = "masking"
    modality: ClassVar[str] = "graph"
    FOCUS: ClassVar[tuple[str, ...]] = ("target",)  # params naming the node the puzzle is about
    partners: ClassVar[int] = 0
    DIFFICULTY: ClassVar[dict] = {
        "easy": {"candidates": 3, "hops": 1},
        "medium": {"candidates": 4, "hops": 1},
        "hard": {"candidates": 6, "hops": 2, "max_nodes": 16, "near": True},
    }

    @property
    def focus_nodes(self) -> int:
        """Nodes always shown when a row is fitted to the budget: the masked node."""
        return 1

    def __post_init__(self):
        check_options(self)

    def _distractors(self, rng: np.random.Generator, graph: Graph, node: int, shown: set[int]) -> list[int]:
        taken = {truncate(graph.texts[node], self.text_chars)}
        pool = []
        if self.near:
            ring = distances(graph, node, self.hops + 2)
            pool = sorted(n for n in ring if n not in shown)
            pool = [pool[i] for i in rng.permutation(len(pool))]
        picked = []
        draws = iter(pool)
        for _ in range(len(pool) + TRIES * self.candidates):
            if len(picked) == self.candidates - 1:
                break
            other = next(draws, None)
            if other is None:
                other = int(rng.integers(len(graph)))
            text = truncate(graph.texts[other], self.text_chars)
            if other in shown or text in taken or not text:
                continue
            taken.add(text)
            picked.append(other)
        if len(picked) < self.candidates - 1:
            raise SkipItem("too-few-distinct-texts")
        return picked

    def make(self, rng: np.random.Generator, graph: Graph, node: int) -> Puzzle:
        if not graph.texts[node]:
            raise SkipItem("no-text")
        nodes = ball(rng, graph, [node], self.hops, self.max_nodes)
        distractors = self._distractors(rng, graph, node, set(nodes))
        order, slot = place(rng, node, distractors)
        layout = Layout(rng, graph, nodes)
        if not layout.shows_edge(node):  # isolated once held-out edges are gone: no neighbourhood to read
            raise SkipItem("no-shown-edge")
        texts = [truncate(graph.texts[n], self.text_chars) for n in order]
        params = layout.params(self.text_chars, masked=node)
        params.update(candidates=self.candidates, target=layout.number[node], candidate_ids=[graph.ids[n] for n in order],
                      candidate_lengths=[len(t) for t in texts], cut=params["cut"] + sum(len(graph.texts[n]) > self.text_chars for n in order))  # fmt: skip
        return Puzzle(
            images=[],
            answer=LETTERS[slot],
            prompt_vars={"target": layout.number[node], "nodes": layout.node_lines(self.text_chars, masked=node),
                         "edges": layout.edge_text(), "candidates": letter_lines(texts), **choice_vars(self.candidates)},
            params=params,
        )  # fmt: skip
