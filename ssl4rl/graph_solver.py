"""The intended-skill solver of the graph puzzles: what a reader of the prompt could do with the
skill a puzzle names, no learning. `ssl4rl audit` reports it as the task itself (like least-seam
for jigsaw); a puzzle it cannot solve well above chance teaches nothing.

It reads only what the model reads: the node texts of the prompt and the shown edges (the row's
`params`, which equal the prompt's edge list). Two skills, combined per task:
- text similarity: TF-IDF cosine over the puzzle's own texts (the shown nodes and candidates);
- structure of the shown graph: common neighbours and shortest path length.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict, deque

WORD = re.compile(r"[a-z]+")
NODE_LINE = re.compile(r"^(\d+): (.*)$")
CHOICE_LINE = re.compile(r"^([A-Z])\. (.*)$")


def prompt_texts(prompt: str) -> tuple[dict[int, str], list[str]]:
    """({node number: text}, [candidate texts in letter order]) as the prompt shows them."""
    nodes, choices = {}, []
    for line in prompt.splitlines():
        if match := NODE_LINE.match(line):
            nodes[int(match.group(1))] = match.group(2)
        elif match := CHOICE_LINE.match(line):
            choices.append(match.group(2))
    return nodes, choices


def tfidf(texts: list[str]) -> list[dict[str, float]]:
    """Unit-length TF-IDF vectors of the texts, document frequencies counted over these texts."""
    bags = [Counter(WORD.findall(text.lower())) for text in texts]
    frequency = Counter(word for bag in bags for word in bag)
    vectors = []
    for bag in bags:
        vector = {w: c * (math.log((1 + len(bags)) / (1 + frequency[w])) + 1) for w, c in bag.items()}
        norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
        vectors.append({w: v / norm for w, v in vector.items()})
    return vectors


def cosine(a: dict[str, float], b: dict[str, float]) -> float:
    return sum(v * b.get(w, 0.0) for w, v in a.items())


def links(edges: list) -> dict[int, set[int]]:
    graph: dict[int, set[int]] = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
        graph[b].add(a)
    return graph


def path_length(graph: dict[int, set[int]], source: int, target: int, cutoff: int = 4) -> int | None:
    """Hops from source to target in the shown graph (None beyond `cutoff` or unreachable)."""
    seen, queue = {source: 0}, deque([source])
    while queue:
        node = queue.popleft()
        if node == target:
            return seen[node]
        if seen[node] < cutoff:
            for other in graph[node] - seen.keys():
                seen[other] = seen[node] + 1
                queue.append(other)
    return None


def closeness(graph: dict[int, set[int]], a: int, b: int) -> float:
    """Structure: common neighbours, then 1 / path length (0 when unreachable)."""
    length = path_length(graph, a, b)
    return len(graph[a] & graph[b]) + (1.0 / length if length else 0.0)


def candidate_scores(task: str, params: dict, prompt: str) -> list[float]:
    """The solver's score of each candidate of a lettered puzzle (the highest is its answer)."""
    texts, choices = prompt_texts(prompt)
    graph = links(params["edges"])
    if task == "masking":
        target = params["target"]
        context = [texts.get(n, "") for n in sorted(graph[target])] or [t for n, t in texts.items() if n != target]
        vectors = tfidf([" ".join(context), *choices])
        return [cosine(vectors[0], v) for v in vectors[1:]]
    focus = params.get("centre", params.get("head"))
    numbers = params["candidate_nodes"]
    vectors = tfidf([texts.get(focus, ""), *(texts.get(n, "") for n in numbers)])
    return [closeness(graph, focus, n) + 0.5 * cosine(vectors[0], v) for n, v in zip(numbers, vectors[1:])]


def pair_score(params: dict, prompt: str) -> float:
    """link: how alike u and v's texts are (TF-IDF cosine); high means linked. Structure is left
    out: the builder matches linked and unlinked pairs in shown shape, so it carries nothing."""
    texts, _ = prompt_texts(prompt)
    u, v = params["u"], params["v"]
    vectors = tfidf([texts.get(u, ""), texts.get(v, ""), *(t for n, t in texts.items() if n not in (u, v))])
    return round(cosine(vectors[0], vectors[1]), 4)
