"""What the graph puzzles share: neighbourhoods, renumbering and the text a model reads.

A puzzle shows a subgraph: nodes within a few hops of its focus nodes (breadth first, a random
order inside each layer, at most `max_nodes`), with the edges between them (the induced
subgraph) minus the hidden edge. Shown nodes get the numbers 0..n-1 in a random order, so a
number says nothing about the node; nodes are listed by number and edges sorted, so the list
order says nothing either. Texts are cut to `text_chars` characters (the builder shows fewer
nodes, then lowers it to no less than 100, until the row fits the token budget).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ssl4rl.sources.graph import Graph
from ssl4rl.tasks.common import LETTERS, MAX_CANDIDATES, extract_answer, letter_choices

MASK = "[MASKED]"
TRIES = 64  # draws before a puzzle gives up on finding a distractor


def neighbours(graph: Graph, node: int, hidden: list[tuple[int, int]] = ()) -> list[int]:
    """The node's training neighbours in a fixed order, without the hidden edges."""
    gone = {b if a == node else a for a, b in hidden if node in (a, b)}
    return [n for n in sorted(graph.adj[node]) if n not in gone]


def distances(graph: Graph, source: int, max_hops: int, hidden: list[tuple[int, int]] = ()) -> dict[int, int]:
    """Hop distance from `source` to every node within `max_hops` (training graph minus hidden)."""
    seen = {source: 0}
    queue = deque([source])
    while queue:
        node = queue.popleft()
        if seen[node] == max_hops:
            continue
        for other in neighbours(graph, node, hidden):
            if other not in seen:
                seen[other] = seen[node] + 1
                queue.append(other)
    return seen


def ball(rng: np.random.Generator, graph: Graph, roots: list[int], hops: int, limit: int, hidden: list[tuple[int, int]] = ()) -> list[int]:
    """The roots, then nodes layer by layer up to `hops` away, at most `limit` nodes in all (the
    roots always). Within a layer the roots take turns, each adding one node of its own part of
    the layer (a random order within it): the root showing the fewest edges so far goes next
    (ties: the first root, the puzzle's focus, first). So when the limit bites every root still
    shows its nearest nodes, the farthest go first, and candidates show about as many edges as
    each other (a node linked to several roots counts for each)."""
    chosen = list(dict.fromkeys(roots))
    seen = set(chosen)
    linked = [set(neighbours(graph, root, hidden)) for root in chosen]
    shown = [len(linked[i] & seen) for i in range(len(chosen))]
    fronts = [[root] for root in chosen]  # each root's part of the current layer
    for _ in range(hops):
        queues = []
        for front in fronts:
            nxt = sorted({o for n in front for o in neighbours(graph, n, hidden)} - seen)
            queues.append([nxt[i] for i in rng.permutation(len(nxt))])
        fronts = [[] for _ in queues]
        added = [0] * len(queues)
        while len(chosen) < limit:
            for queue in queues:
                while queue and queue[0] in seen:
                    queue.pop(0)
            waiting = [i for i, queue in enumerate(queues) if queue]
            if not waiting:
                break
            turn = min(waiting, key=lambda i: (shown[i], added[i], i))
            node = queues[turn].pop(0)
            seen.add(node)
            chosen.append(node)
            fronts[turn].append(node)
            added[turn] += 1
            for i, near in enumerate(linked):
                shown[i] += node in near
        if len(chosen) >= limit:
            break
    return chosen


def induced_edges(graph: Graph, nodes: list[int], hidden: list[tuple[int, int]] = ()) -> list[tuple[int, int]]:
    """Edges of the training graph between shown nodes, each once as (u, v) with u < v, without
    the hidden edges."""
    shown = set(nodes)
    return sorted({(min(u, v), max(u, v)) for u in nodes for v in graph.adj[u] if v in shown} - {(min(e), max(e)) for e in hidden})


def check_options(task, min_nodes: int = 2) -> None:
    """The options every graph task shares: candidates (where it has them), hops, nodes shown, text length."""
    candidates = getattr(task, "candidates", None)
    if candidates is not None and not 2 <= candidates <= MAX_CANDIDATES:
        raise ValueError(f"candidates must be 2..{MAX_CANDIDATES} (got {candidates})")
    if not 1 <= task.hops <= 3 or task.max_nodes < min_nodes or task.text_chars < 8:
        raise ValueError(
            f"hops must be 1..3, max_nodes at least {min_nodes} and text_chars at least 8 (got {task.hops}, {task.max_nodes}, {task.text_chars})"
        )


def truncate(text: str, chars: int) -> str:
    """At most `chars` characters, cut at a word where one is near, marked with '...'.

    >>> truncate("a long sentence here", 12), truncate("short", 12)
    ('a long...', 'short')
    """
    if len(text) <= chars:
        return text
    cut = text[: max(1, chars - 3)]
    space = cut.rfind(" ")
    return (cut[:space] if space > chars // 2 else cut).rstrip() + "..."


class Layout:
    """A shown subgraph: its nodes, their random numbers, and the text lines of the prompt.

    `hidden` are a plain graph's hidden edges (the answer's); `hidden_fact` a knowledge
    graph's hidden (head, relation, tail): only that fact goes, other relations between the two stay.
    """

    def __init__(self, rng: np.random.Generator, graph: Graph, nodes: list[int], hidden: list[tuple[int, int]] = (),
                 hidden_fact: tuple[int, str, int] | None = None, unlinked: tuple[int, list[int]] | None = None):
        self.graph, self.nodes = graph, nodes
        order = rng.permutation(len(nodes))
        self.number = {node: int(order[i]) for i, node in enumerate(nodes)}
        self.hidden = sorted([min(self.number[u], self.number[v]), max(self.number[u], self.number[v])] for u, v in hidden)
        pairs = induced_edges(graph, nodes, hidden)
        # A KG question's head shows no fact with any candidate (the truth's other facts with the
        # head would restate the answer: a symmetric relation's reverse, an inverse relation, a
        # duplicate under another name), for every candidate alike so being linked tells nothing.
        head, candidates = unlinked or (None, [])
        apart = {(head, c) for c in candidates} | {(c, head) for c in candidates}
        self.facts = sorted(
            (self.number[h], r, self.number[t])
            for u, v in pairs for h, t in ((u, v), (v, u)) for r in graph.relations.get((h, t), ())
            if (h, r, t) != hidden_fact and (h, t) not in apart
        )  # fmt: skip
        if graph.is_kg:
            pairs = sorted({(min(h, t), max(h, t)) for h, _, t in self.facts})
            self.pairs = [list(p) for p in pairs]
        else:
            self.pairs = sorted([min(self.number[u], self.number[v]), max(self.number[u], self.number[v])] for u, v in pairs)

    def node_lines(self, text_chars: int, masked: int | None = None) -> str:
        by_number = sorted(self.nodes, key=self.number.__getitem__)
        lines = []
        for node in by_number:
            text = MASK if node == masked else truncate(self.graph.texts[node], text_chars)
            lines.append(f"{self.number[node]}: {text}" if text else f"{self.number[node]}")
        return "\n".join(lines)

    def edge_text(self) -> str:
        """'0-3, 1-2' for a plain graph; one 'h --relation--> t' line per fact for a KG."""
        if self.graph.is_kg:
            return "\n".join(f"{h} --{r}--> {t}" for h, r, t in self.facts) or "(none)"
        return ", ".join(f"{a}-{b}" for a, b in self.pairs) or "(none)"

    def params(self, text_chars: int, masked: int | None = None) -> dict:
        """What the verifier, audit and tests read: the shown structure, by number, and the
        original node ids (never shown to the model)."""
        by_number = sorted(self.nodes, key=self.number.__getitem__)
        return {
            "nodes": len(self.nodes),
            "edges": self.pairs,
            "hidden": self.hidden,  # the hidden edge (the answer's), by number
            "lengths": [len(MASK if n == masked else truncate(self.graph.texts[n], text_chars)) for n in by_number],
            "original": [self.graph.ids[n] for n in by_number],
            "text_chars": text_chars,
            "cut": sum(len(self.graph.texts[n]) > text_chars for n in by_number if n != masked),  # texts shown shortened
        }

    def shows_edge(self, node: int) -> bool:
        """Whether a node has at least one shown edge (fact)."""
        number = self.number[node]
        return any(number in pair for pair in self.pairs)


def letter_lines(labels: list[str]) -> str:
    """'A. first' lines, one per candidate."""
    return "\n".join(f"{LETTERS[i]}. {label}" for i, label in enumerate(labels))


def place(rng: np.random.Generator, truth, distractors: list) -> tuple[list, int]:
    """The candidates with the truth at a uniformly drawn position, distractors shuffled."""
    order = [distractors[i] for i in rng.permutation(len(distractors))]
    slot = int(rng.integers(len(distractors) + 1))
    return order[:slot] + [truth] + order[slot:], slot


def choice_vars(count: int) -> dict:
    return {"k": count, "letters": letter_choices(count)}


def parse_yes_no(response: str) -> str | None:
    """'yes' or 'no' from the last <answer> block (any case, a trailing full stop allowed).

    >>> [parse_yes_no(f"<answer>{a}</answer>") for a in ("Yes", "no.", "maybe")]
    ['yes', 'no', None]
    """
    text = extract_answer(response)
    text = text.strip().rstrip(".").strip().lower() if text else None
    return text if text in ("yes", "no") else None
