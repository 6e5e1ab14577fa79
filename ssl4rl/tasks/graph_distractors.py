"""Distractor nodes for graph puzzles and graph evaluation: nodes not linked to a focus node that
look like the truth by degree, so a hub among leaves never gives the answer away."""

from __future__ import annotations

import numpy as np

from ssl4rl.errors import SkipItem
from ssl4rl.sources.graph import Graph
from ssl4rl.tasks.graph_common import TRIES, distances

POOL = 32  # degree-biased draws that the distractors closest in degree are taken from


def draw_far(rng: np.random.Generator, graph: Graph, centre: int, count: int, distance: str, exclude: set[int],
             hidden: list[tuple[int, int]], degree: int, keep_all: bool = False) -> list[int]:
    """`count` distinct nodes not linked to `centre` in the full graph, the closest in degree to
    `degree` (ties in random order): among POOL degree-biased draws from anywhere (`any`), or
    among the nodes exactly two hops away in the graph as shown (`two`: without the `hidden`
    edge, since a node reached only through the hidden neighbour would hang off it). `keep_all`:
    the whole pool, unranked."""
    blocked = set(exclude) | {centre}
    if distance == "two":
        pool = sorted(n for n, d in distances(graph, centre, 2, hidden).items() if d == 2 and n not in blocked and not graph.linked(centre, n))
        if len(pool) < count:
            raise SkipItem("too-few-distance-2-nodes")
    else:
        pool = degree_biased_pool(rng, graph, lambda n: n not in blocked and not graph.linked(centre, n), count)
    if keep_all:
        return pool
    return closest_in_degree(rng, graph, pool, count, degree)


def degree_biased_pool(rng: np.random.Generator, graph: Graph, allowed, count: int) -> list[int]:
    """Up to POOL distinct allowed nodes drawn with probability proportional to degree + 1."""
    found: set[int] = set()
    for _ in range(TRIES * POOL):
        other = graph.degree_biased(rng)
        if allowed(other):
            found.add(other)
            if len(found) == POOL:
                break
    if len(found) < count:
        raise SkipItem("too-few-distant-nodes")
    return sorted(found)


def closest_in_degree(rng: np.random.Generator, graph: Graph, pool: list[int], count: int, degree: int) -> list[int]:
    """The `count` nodes of the pool whose degree is closest to `degree`, ties in random order;
    a skip when one is off by more than half the degree and 2 (a hub among leaves would tell)."""
    picked = ranked_by_degree(rng, graph, pool, degree)[:count]
    if len(picked) < count:
        raise SkipItem("no-degree-matched-distractor")
    return picked


def ranked_by_degree(rng: np.random.Generator, graph: Graph, pool: list[int], degree: int) -> list[int]:
    """The pool's nodes whose degree is within half of `degree` (and 2), closest first, ties in
    random order."""
    ties = rng.random(len(pool))
    ranked = sorted(range(len(pool)), key=lambda i: (abs(len(graph.adj[pool[i]]) - degree), ties[i]))
    return [pool[i] for i in ranked if abs(len(graph.adj[pool[i]]) - degree) <= max(2, degree // 2)]
