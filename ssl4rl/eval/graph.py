"""Graph evaluation with labels, held out from the puzzles: the paper's node classification and
link prediction, asked as prompts in the puzzles' own serialisation.

- node-classification: zero-shot multiple choice over the class names (all of them up to 10, else
  the truth and 9 others drawn per node; their order shuffled per node, so the right letter is
  uniform), with the node's neighbourhood (texts only: no label is
  ever shown, in puzzles or here). Asked on the nodes of the test split (the builder's rule: by
  content hash, `--test-fraction`), so no training puzzle was centred on them; `--heldout BUILD`
  also marks nodes any of those builds' train splits was made from.
- link-prediction: the held-out edges (`ssl4rl.sources.graph.HELDOUT_EDGES`; a knowledge graph's
  valid and test triples), which no puzzle ever showed: a plain graph asks "are u and v
  connected?" for each held-out edge and for as many non-edges (the nodes closest in degree),
  a knowledge graph asks which of 4 entities completes (head, relation, ?), distractors being
  tails of the same relation that make no fact.

Accuracy overall and per class (per category: the class, yes/no, or the relation) goes to the
same summary.json and report.md as the benchmarks.
"""

from __future__ import annotations

from ssl4rl.build import content_key, split_of
from ssl4rl.errors import UserError
from ssl4rl.eval.extract import extract_choice
from ssl4rl.eval.runner import Item
from ssl4rl.images import SkipImage
from ssl4rl.sources.graph import Graph, GraphRef, load_graph, node_payload
from ssl4rl.tasks.common import LETTERS, load_template, rng_for
from ssl4rl.tasks.graph_common import Layout, ball, letter_lines, parse_yes_no
from ssl4rl.tasks.neighbour import draw_far

GRAPH_TASKS = ("node-classification", "link-prediction")
MAX_NODES, TEXT_CHARS, MAX_CLASSES, CANDIDATES = 12, 60, 10, 4
def graph_items(task: str, source: str, data: str | None, limit: int | None, test_fraction: float = 0.1,
                train_hashes: set[str] | None = None, seed: int = 0) -> list[Item]:
    """The questions of a graph evaluation, in a fixed order."""
    if task not in GRAPH_TASKS:
        raise UserError(f"unknown --graph-task {task!r} (one of {', '.join(GRAPH_TASKS)})")
    graph = load_graph(GraphRef(source, data))
    items = node_classification(graph, test_fraction, seed) if task == "node-classification" else link_prediction(graph, seed)
    if train_hashes is not None:
        for item in items:
            item.meta["heldout"] = not any(h in train_hashes for h in item.meta.pop("hashes"))
    else:
        for item in items:
            item.meta.pop("hashes")
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
        if label is None or split_of(key, test_fraction) != "test":
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
        except SkipImage:  # no usable non-edge: ask the edge only
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

            meta = {"index": key, "group": key, "category": answer, "answer": answer, "chance": 0.5, "hashes": [_hash(graph, u), _hash(graph, other)]}
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
        layout = Layout(rng, graph, ball(rng, graph, [h, *order], 1, MAX_NODES))
        numbers = [layout.number[n] for n in order]
        prompt = template.format(head=layout.number[h], relation=relation, nodes=layout.node_lines(TEXT_CHARS), edges=layout.edge_text(),
                                 candidates=letter_lines([f"entity {n}" for n in numbers]), k=CANDIDATES,
                                 letters=", ".join(LETTERS[:CANDIDATES]))  # fmt: skip
        options = {LETTERS[i]: f"entity {n}" for i, n in enumerate(numbers)}
        items.append(_choice_item(f"fact/{k}", prompt, options, LETTERS[slot], relation, [_hash(graph, h), _hash(graph, t)]))
    if not items:
        raise UserError(f"{graph.name}: no held-out triple (valid.txt/test.txt) with enough same-relation candidates")
    return items
