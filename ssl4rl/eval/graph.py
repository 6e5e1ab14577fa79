"""Graph evaluation with labels, held out from the puzzles: the paper's node classification and
link prediction, asked as prompts in the puzzles' own serialisation.

- node-classification: zero-shot multiple choice over the class names (all of them up to 10, else
  the truth and 9 others drawn per node; their order shuffled per node, so the right letter is
  uniform), with the node's neighbourhood (texts only: no label is
  ever shown, in puzzles or here). Asked on the nodes of the test split (a release's published
  test split when it has one, as Wiki-CS; else the builder's rule: by content hash, `--test-fraction`), so no training puzzle was centred on them; `--heldout BUILD`
  also marks nodes any of those builds' train splits was made from.
- link-prediction: the held-out edges (`ssl4rl.sources.graph.HELDOUT_EDGES`; a knowledge graph's
  valid and test triples), which no puzzle ever showed: a plain graph asks "are u and v
  connected?" for each held-out edge and for as many non-edges (the nodes closest in degree),
  a knowledge graph asks which of 4 entities completes (head, relation, ?), distractors being
  tails of the same relation that make no fact.
- link-ranking (knowledge graphs): the literature's filtered MRR and Hits@1/3/10 for each
  held-out triple, other true tails (of any split) filtered. `likelihood` (a backend that scores
  text): every entity's name is scored as the answer, the truth ranked among all entities;
  `list` (a backend that only generates): the model lists up to 10 names, best first, and the
  truth's place among the listed entities is its rank (not listed: a reciprocal rank of 0, so MRR
  is a lower bound). `ssl4rl.eval.ranking` holds both.

Accuracy overall and per class (per category: the class, yes/no, or the relation) goes to the
same summary.json and report.md as the benchmarks.
"""

from __future__ import annotations

import functools
import json

from ssl4rl.errors import SkipItem, UserError
from ssl4rl.eval.extract import extract_choice
from ssl4rl.eval.runner import Item
from ssl4rl.eval.ranking import PROTOCOLS, filtered_rank, named_entities, scored_rank
from ssl4rl.schema import content_key, split_of
from ssl4rl.sources.graph import Graph
from ssl4rl.sources.graph_source import GraphRef, graph_presets, load_graph, node_payload
from ssl4rl.sources.presets import PRESETS
from ssl4rl.tasks.common import LETTERS, load_template, rng_for
from ssl4rl.tasks.graph_common import Layout, ball, letter_lines, parse_yes_no
from ssl4rl.tasks.graph_distractors import draw_far

GRAPH_EVAL_TASKS = ("node-classification", "link-prediction", "link-ranking")
MAX_NODES, TEXT_CHARS, MAX_CLASSES, CANDIDATES = 12, 160, 10, 4


def graph_items(task: str, source: str, data: str | None, limit: int | None, test_fraction: float = 0.1,
                train_hashes: set[str] | None = None, seed: int = 0, train_pairs: set[frozenset] | None = None, ranking: str = "list") -> list[Item]:
    """The questions of a graph evaluation, in a fixed order. Held out (with --heldout): a node
    question when its node made no train row (`train_hashes`); a link question when its pair was
    neither shown as an edge nor asked in any train row (`train_pairs`, by node id)."""
    if task not in GRAPH_EVAL_TASKS:
        raise UserError(f"unknown --graph-task {task!r} (one of {', '.join(GRAPH_EVAL_TASKS)})")
    if source in graph_presets() and data is None:
        preset = PRESETS[source]
        raise UserError(f"source '{source}' needs --source-data PATH: {preset.download} (download: {preset.url})")
    graph = load_graph(GraphRef(source, data))
    if task == "node-classification":
        items = node_classification(graph, test_fraction, seed)
    elif task == "link-ranking":
        items = link_ranking(graph, seed, ranking)
    else:
        items = link_prediction(graph, seed)
    for item in items:
        hashes, pair = item.meta.pop("hashes"), item.meta.pop("pair", None)
        if pair is not None and train_pairs is not None:
            item.meta["heldout"] = frozenset(pair) not in train_pairs
        elif pair is None and train_hashes is not None:
            item.meta["heldout"] = not any(h in train_hashes for h in hashes)
    return items[:limit] if limit else items


def _choice_item(key: str, prompt: str, options: dict[str, str], answer: str, category: str, hashes: list[str]) -> Item:
    def score(response: str) -> dict:
        choice = extract_choice(response, options)
        return {"choice": choice, "correct": choice == answer}

    meta = {"index": key, "group": key, "category": category, "answer": answer, "chance": round(1 / len(options), 4), "hashes": hashes}
    return Item(key, prompt, [], score, meta)


def _hash(graph: Graph, node: int) -> str:
    return content_key(node_payload(graph.ids[node])).hex()


def node_classification(graph: Graph, test_fraction: float, seed: int) -> list[Item]:
    classes = sorted({label for label in graph.labels if label is not None})
    if len(classes) < 2:
        raise UserError(f"{graph.name}: node classification needs node labels of at least two classes")
    template = load_template("node-classification")  # configs/prompts/node-classification.txt, editable
    items = []
    for node, label in enumerate(graph.labels):
        key = content_key(node_payload(graph.ids[node]))
        published = node in graph.test_nodes if graph.test_nodes else None  # a release's test split (Wiki-CS)
        if label is None or not (published if published is not None else split_of(key, test_fraction) == "test"):
            continue
        rng = rng_for(seed, "node-classification", graph.ids[node])
        names = classes if len(classes) <= MAX_CLASSES else [label, *(str(c) for c in rng.choice([c for c in classes if c != label], MAX_CLASSES - 1, replace=False))]
        # Shuffled per question (seeded by the node): a fixed class order would let an always-B
        # model score the share of the class listed second, not chance.
        names = sorted(names)
        names = [names[int(i)] for i in rng_for(seed, "node-classification-options", graph.ids[node]).permutation(len(names))]
        options = {LETTERS[i]: name for i, name in enumerate(names)}
        layout = Layout(rng, graph, ball(rng, graph, [node], 1, MAX_NODES))
        prompt = template.format(nodes=layout.node_lines(TEXT_CHARS), edges=layout.edge_text(), target=layout.number[node],
                                 options=letter_lines(names), letters=", ".join(options))  # fmt: skip
        items.append(_choice_item(f"node/{graph.ids[node]}", prompt, options, LETTERS[names.index(label)], label, [key.hex()]))
    if not items:
        raise UserError(f"{graph.name}: no labelled node in the test split (--test-fraction {test_fraction})")
    return items


def link_prediction(graph: Graph, seed: int) -> list[Item]:
    if graph.is_kg:
        return _completion(graph, seed)
    if not graph.heldout:
        raise UserError(f"{graph.name}: no held-out edges to predict")
    template = load_template("link")
    items = []
    for u, v in sorted(graph.heldout):
        rng = rng_for(seed, "link-prediction", graph.ids[u], graph.ids[v])
        try:  # a non-edge whose far end has v's degree (the held-out edge is not among v's training edges)
            w = draw_far(rng, graph, u, 1, "any", {v}, [], len(graph.adj[v]))[0]
        except SkipItem:  # no usable non-edge: ask the edge only
            w = None
        for other, answer in ((v, "yes"), (w, "no")):
            if other is None:
                continue
            pair = [u, other] if rng.random() < 0.5 else [other, u]
            layout = Layout(rng, graph, ball(rng, graph, pair, 1, MAX_NODES))
            a, b = (layout.number[n] for n in pair)
            prompt = template.format(u=a, v=b, nodes=layout.node_lines(TEXT_CHARS), edges=layout.edge_text())
            key = f"link/{graph.ids[u]}/{graph.ids[other]}"

            def score(response: str, answer=answer) -> dict:
                choice = parse_yes_no(response)
                return {"choice": choice, "correct": choice == answer}

            meta = {"index": key, "group": key, "category": answer, "answer": answer, "chance": 0.5, "hashes": [_hash(graph, u), _hash(graph, other)],
                    "pair": (graph.ids[u], graph.ids[other])}  # fmt: skip
            items.append(Item(key, prompt, [], score, meta))
    return items


def _completion(graph: Graph, seed: int) -> list[Item]:
    template = load_template("kg-link")
    items = []
    for k, (h, relation, t) in enumerate(graph.heldout_facts):
        rng = rng_for(seed, "kg-completion", k)
        tails = [e for e in graph.tails.get(relation, ()) if (h, relation, e) not in graph.facts and e not in (h, t)]
        if len(tails) < CANDIDATES - 1:
            continue
        distractors = [tails[int(i)] for i in rng.choice(len(tails), CANDIDATES - 1, replace=False)]
        slot = int(rng.integers(CANDIDATES))
        order = distractors[:slot] + [t] + distractors[slot:]
        layout = Layout(rng, graph, ball(rng, graph, [h, *order], 1, MAX_NODES, [(h, c) for c in order]), unlinked=(h, order))
        numbers = [layout.number[n] for n in order]
        prompt = template.format(head=layout.number[h], relation=relation, nodes=layout.node_lines(TEXT_CHARS), edges=layout.edge_text(),
                                 candidates=letter_lines([f"entity {n}" for n in numbers]), k=CANDIDATES,
                                 letters=", ".join(LETTERS[:CANDIDATES]))  # fmt: skip
        options = {LETTERS[i]: f"entity {n}" for i, n in enumerate(numbers)}
        item = _choice_item(f"fact/{k}", prompt, options, LETTERS[slot], relation, [_hash(graph, h), _hash(graph, t)])
        item.meta["pair"] = (graph.ids[h], graph.ids[t])
        items.append(item)
    if not items:
        raise UserError(f"{graph.name}: no held-out triple (valid.txt/test.txt) with enough same-relation candidates")
    return items


RANKING_PROMPT = """Below is part of a knowledge graph. Each entity has a number and a name; the numbers were given at random. Facts are written "head --relation--> tail".
Entities:
{nodes}
Facts:
{edges}

Complete the fact: {head_name} --{relation}--> ?
The answer may be any entity of the knowledge graph, shown here or not."""
LIST_ASK = " List up to 10 entity names, the most likely first, one per line."
NAME_ASK = " Answer with the entity's name only."  # the likelihood protocol scores each name as this answer
RANKED = 10


def link_ranking(graph: Graph, seed: int, protocol: str = "list") -> list[Item]:
    """One question per held-out triple (head, relation, ?), scored by the truth's filtered rank
    among all entities (ssl4rl.eval.ranking): by the names the model lists (`list`) or by every
    entity name's log-likelihood as the answer (`likelihood`: the item answers itself through the
    backend's `score_completions`)."""
    if not graph.is_kg:
        raise UserError(f"{graph.name}: link-ranking needs a knowledge graph (train.txt triples, or an edges table with a relation column)")
    if protocol not in PROTOCOLS:
        raise UserError(f"unknown ranking protocol {protocol!r} (one of {', '.join(PROTOCOLS)})")
    if protocol == "list":
        template = RANKING_PROMPT + LIST_ASK + "\n\n" + load_template("kg-link").rsplit("\n\n", 1)[1]  # the shared answer format
    else:
        template = RANKING_PROMPT + NAME_ASK
    names = named_entities(graph.texts)
    entity_names = [graph.texts[e] or graph.ids[e] for e in range(len(graph))]
    items = []
    for k, (h, relation, t) in enumerate(graph.heldout_facts):
        rng = rng_for(seed, "kg-ranking", k)
        layout = Layout(rng, graph, ball(rng, graph, [h], 1, MAX_NODES, [(h, t)]), unlinked=(h, [t]))
        prompt = template.format(nodes=layout.node_lines(TEXT_CHARS), edges=layout.edge_text(), head_name=entity_names[h], relation=relation)
        known = frozenset({e for (a, r, e) in graph.facts if a == h and r == relation} - {t})
        key = f"rank/{k}"
        meta = {"index": key, "group": key, "category": relation, "answer": "1", "chance": round(1 / len(graph), 6), "protocol": protocol,
                "hashes": [_hash(graph, h), _hash(graph, t)], "pair": (graph.ids[h], graph.ids[t])}  # fmt: skip
        if protocol == "list":

            def score(response: str, t=t, known=known) -> dict:
                rank = filtered_rank(response, names, t, known, RANKED)
                return {"choice": str(rank) if rank else None, "correct": rank == 1, "rank": rank}

            items.append(Item(key, prompt, [], score, meta))
        else:
            respond = functools.partial(_likelihood_answer, prompt=prompt, entity_names=entity_names, truth=t, known=known)
            items.append(Item(key, prompt, [], _likelihood_score, meta, respond=respond))
    if not items:
        raise UserError(f"{graph.name}: no held-out triple (valid.txt/test.txt) to rank")
    return items


def _likelihood_answer(backend, prompt: str, entity_names: list[str], truth: int, known: frozenset) -> str:
    """The truth's filtered rank by every entity name's log-likelihood as the answer, and the ten
    best names (what predictions.jsonl keeps of the scores)."""
    unique = sorted(set(entity_names))
    by_name = dict(zip(unique, backend.score_completions(prompt, unique)))
    scores = [by_name[n] for n in entity_names]
    best = sorted(range(len(scores)), key=lambda e: -scores[e])[:RANKED]
    return json.dumps({"rank": scored_rank(scores, truth, known), "entities": len(scores), "best": [entity_names[e] for e in best]})


def _likelihood_score(response: str) -> dict:
    try:
        rank = int(json.loads(response)["rank"])
    except (ValueError, KeyError, TypeError):
        rank = None
    return {"choice": str(rank) if rank else None, "correct": rank == 1, "rank": rank}
