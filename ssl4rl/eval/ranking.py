"""Knowledge-graph link prediction as the literature reports it: the true tail's filtered rank
among all entities, summarised as MRR and Hits@1/3/10, by one of two protocols.

`likelihood` (the standard one; a backend that can score text, `hf` with a text model): every
entity's name is scored as the answer by its log-likelihood (`ssl4rl.eval.likelihood`); the
truth's rank is 1 + the entities that are not true tails of (head, relation) in any split
(filtered) and score at least as high (a tie counts against the truth).

`list` (a backend that only generates): the model lists entity names, best first. Each listed name is matched to
every entity of that name (case and spacing ignored); a name of an entity that completes the same (head, relation) in any
split other than the truth is dropped (the filtered setting), as are repeats and names of no
entity; the truth's place in what is left is its rank. A truth not listed ranks beyond the
list: reciprocal rank 0 and no hit, so MRR is a lower bound (exact for Hits@k up to the list
length).
"""

from __future__ import annotations

import re
from collections import defaultdict

from ssl4rl.tasks.common import extract_answer

HITS = (1, 3, 10)
PROTOCOLS = {
    "likelihood": "every entity's name scored as the answer by its log-likelihood, filtered rank among all entities",
    "list": "the model lists up to 10 names, filtered rank within the list; a truth not listed counts 0, so MRR is a lower bound",
}
_NUMBERING = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s*")


def normalise(name: str) -> str:
    return " ".join(name.lower().split())


def named_entities(texts: list[str]) -> dict[str, set[int]]:
    """{normalised name: entities of that name}."""
    names: dict[str, set[int]] = defaultdict(set)
    for entity, text in enumerate(texts):
        if text:
            names[normalise(text)].add(entity)
    return dict(names)


def listed_names(response: str, most: int) -> list[str]:
    """The names a response lists in its answer block: one per line (or ';'), numbering and
    bullets stripped, at most `most`.

    >>> listed_names("<answer>1. Paris\\n2) Lyon; Nice</answer>", 10)
    ['paris', 'lyon', 'nice']
    """
    text = extract_answer(response)
    if not text:
        return []
    parts = [normalise(_NUMBERING.sub("", part)) for line in text.splitlines() for part in line.split(";")]
    return [p for p in parts if p][:most]


def filtered_rank(response: str, names: dict[str, set[int]], truth: int, known: set[int] | frozenset, most: int = 10) -> int | None:
    """The truth's 1-based filtered rank in the response's list, None when it is not listed.

    >>> names = {"a": {0}, "b": {1}, "c": {2}}
    >>> filtered_rank("<answer>b\\na\\nc</answer>", names, 2, {1})  # b is another true tail: filtered
    2
    """
    rank, placed = 0, set()
    for name in listed_names(response, most):
        entities = names.get(name, set())
        if truth in entities:
            return rank + 1
        if not entities or entities & set(known) or entities <= placed:  # unknown, another true tail (filtered), or a repeat
            continue
        rank += 1
        placed |= entities
    return None


def scored_rank(scores, truth: int, known) -> int:
    """The truth's filtered rank among all entities by their scores (`known`: other true tails).

    >>> scored_rank([0.5, 0.9, 0.7, 0.7], 2, {1})  # 1 is filtered, 3 ties with the truth
    2
    """
    import numpy as np

    scores = np.asarray(scores, dtype=np.float64)
    others = np.ones(len(scores), dtype=bool)
    others[[truth, *known]] = False
    return 1 + int((scores[others] >= scores[truth]).sum())


def ranking_summary(ranks: list[int | None], protocol: str | None = None) -> dict:
    """MRR and Hits@k over questions (None: not listed), and the protocol the ranks came from.

    >>> ranking_summary([1, 2, None, 11])
    {'questions': 4, 'mrr': 0.3977, 'hits@1': 0.25, 'hits@3': 0.5, 'hits@10': 0.5}
    """
    n = len(ranks)
    if not n:
        return {"questions": 0}
    summary = {"questions": n, **({"protocol": protocol} if protocol else {}), "mrr": round(sum(1 / r for r in ranks if r) / n, 4)}
    for k in HITS:
        summary[f"hits@{k}"] = round(sum(1 for r in ranks if r and r <= k) / n, 4)
    return summary
