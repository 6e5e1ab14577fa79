"""Knowledge-graph link completion: which candidate entity completes (head, relation, ?)?

The hidden fact is drawn uniformly among the head's training facts. No fact between the head and
any candidate is shown (a symmetric relation's reverse, an inverse relation or a duplicate would
state the answer again; dropped for every candidate alike, so a link to the head tells nothing),
and a head left with no shown fact is skipped. Distractors are entities e for which
(head, relation, e) is no fact of any split: drawn with probability proportional to degree + 1
(`any`), or among the entities that are tails of the same relation elsewhere (`relation`: the
right type, so the type alone does not answer). The right letter is drawn uniformly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ssl4rl.errors import SkipItem
from ssl4rl.tasks.common import LETTERS, LetterAnswer, Puzzle
from ssl4rl.tasks.graph_common import Layout, TRIES, ball, check_options, choice_vars, letter_lines, place

POOLS = ("any", "relation")


@dataclass
class KGLink(LetterAnswer):
    """Complete a knowledge-graph fact (head, relation, ?) among K candidate entities."""

    candidates: int = 4  # K: candidate tail entities
    hops: int = 1  # neighbourhood radius shown around the head and each candidate
    max_nodes: int = 16  # most entities shown
    text_chars: int = 160  # each entity text is cut to this many characters
    pool: str = "relation"  # distractors: 'any' entity, or tails of the same 'relation'

    name: ClassVar[str] = "kg-link"
    modality: ClassVar[str] = "graph"
    FOCUS: ClassVar[tuple[str, ...]] = ("head",)  # params naming the node the puzzle is about
    knowledge_graph: ClassVar[bool] = True  # asks about relations: the source must be a knowledge graph
    partners: ClassVar[int] = 0
    DIFFICULTY: ClassVar[dict] = {"easy": {"candidates": 3, "pool": "any"}, "medium": {"candidates": 4, "pool": "relation"}, "hard": {"candidates": 6, "pool": "relation", "max_nodes": 20}}

    @property
    def focus_nodes(self) -> int:
        """Nodes always shown when a row is fitted to the budget: the head and its candidates."""
        return 1 + self.candidates

    def __post_init__(self):
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)} (got {self.pool!r})")
        check_options(self, min_nodes=self.candidates + 1)

    def _distractors(self, rng: np.random.Generator, graph, head: int, relation: str) -> list[int]:
        count, picked = self.candidates - 1, []
        if self.pool == "relation":
            tails = [t for t in graph.tails.get(relation, ()) if (head, relation, t) not in graph.facts and t != head]
            if len(tails) < count:
                raise SkipItem("too-few-same-relation-tails")
            return [tails[int(i)] for i in rng.choice(len(tails), size=count, replace=False)]
        for _ in range(TRIES * count):
            other = graph.degree_biased(rng)
            if other != head and other not in picked and (head, relation, other) not in graph.facts:
                picked.append(other)
                if len(picked) == count:
                    return picked
        raise SkipItem("too-few-distant-nodes")

    def make(self, rng: np.random.Generator, graph, node: int) -> Puzzle:
        if not graph.is_kg:
            raise ValueError("kg-link needs a knowledge graph (triples or an edges table with a relation column)")
        facts = graph.out_facts.get(node, [])
        if not facts:
            raise SkipItem("no-fact")
        relation, truth = facts[int(rng.integers(len(facts)))]
        distractors = self._distractors(rng, graph, node, relation)
        order, slot = place(rng, truth, distractors)
        hidden = (node, relation, truth)
        nodes = ball(rng, graph, [node, *order], self.hops, self.max_nodes, [(node, c) for c in order])  # as shown: no head-candidate fact
        layout = Layout(rng, graph, nodes, hidden_fact=hidden, unlinked=(node, order))
        if not layout.shows_edge(node):
            raise SkipItem("head-shows-no-fact")
        numbers = [layout.number[n] for n in order]
        params = layout.params(self.text_chars)
        params.update(candidates=self.candidates, head=layout.number[node], relation=relation, candidate_nodes=numbers)
        return Puzzle(
            images=[],
            answer=LETTERS[slot],
            prompt_vars={"head": layout.number[node], "relation": relation, "nodes": layout.node_lines(self.text_chars),
                         "edges": layout.edge_text(), "candidates": letter_lines([f"entity {n}" for n in numbers]), **choice_vars(self.candidates)},
            params=params,
        )  # fmt: skip
