"""Bundled graphs for the demo and tests, no download: three of networkx's classic graphs and two
seeded synthetic ones (a text-attributed graph with topic communities and labels, and a small
knowledge graph whose relations follow rules a model can learn)."""

from __future__ import annotations

import numpy as np

from ssl4rl.errors import UserError
from ssl4rl.sources.graph import Graph, assemble

TOPICS = {
    "astronomy": "star galaxy orbit telescope comet planet nebula redshift pulsar eclipse quasar moon",
    "botany": "leaf root seed pollen flower stem fern moss orchid petal chlorophyll bark",
    "music": "melody chord rhythm tempo violin piano choir sonata harmony lyric drum opera",
    "cooking": "flour butter oven recipe sauce spice knife broth pastry garlic roast dough",
}
COMMON = "study note report about with from between new old small large early late first".split()


SUBTOPICS = 3  # each topic's words fall into this many threads of 4 words


def synthetic_graph(seed: int = 0, nodes: int = 160, p_thread: float = 0.35, p_topic: float = 0.02, p_out: float = 0.003) -> Graph:
    """A stochastic block model over TOPICS, each split into SUBTOPICS threads (4 words of the
    topic each): a node's text is mostly words of its thread (60 %), then of its topic (25 %) and
    common words; edges mostly inside a thread, some inside a topic. Its label is the topic. The
    threads make texts of one topic distinguishable, so a masked text or a neighbour can be told
    from its neighbourhood, not only its topic."""
    rng = np.random.default_rng(seed)
    topics = list(TOPICS)
    thread = rng.integers(len(topics) * SUBTOPICS, size=nodes)
    community = thread // SUBTOPICS
    texts = []
    for i in range(nodes):
        vocabulary = TOPICS[topics[community[i]]].split()
        own = vocabulary[4 * (thread[i] % SUBTOPICS) : 4 * (thread[i] % SUBTOPICS) + 4]
        words = []
        for _ in range(int(rng.integers(8, 17))):
            draw = rng.random()
            words.append(str(rng.choice(own if draw < 0.6 else vocabulary if draw < 0.85 else COMMON)))
        texts.append(" ".join(words))
    same_thread = thread[:, None] == thread[None, :]
    same_topic = community[:, None] == community[None, :]
    draws = rng.random((nodes, nodes)) < np.where(same_thread, p_thread, np.where(same_topic, p_topic, p_out))
    edges = [(str(u), str(v)) for u, v in zip(*np.nonzero(np.triu(draws, 1)))]
    ids = [str(i) for i in range(nodes)]
    return assemble("synthetic", ids, texts, [topics[c] for c in community], edges)


SYLLABLES = "ka lo mi ra te su vi no da pe zo ri".split()
CODAS = "nrls"  # one closing letter gives a name an odd length
SHOWN_LENGTH = (14, 18)  # a shown text's length ("Name (kind)"), drawn alike for every kind


def _name(rng, letters: int) -> str:
    """A pronounceable name of exactly `letters` letters (at least 2)."""
    name = "".join(str(rng.choice(SYLLABLES)) for _ in range(letters // 2))
    return (name + str(rng.choice(list(CODAS))) * (letters % 2)).capitalize()


def _entity_text(rng, kind: str) -> str:
    """`Name (kind)` whose whole length is drawn independently of the kind: kinds' suffixes differ
    in length, so the name makes up the difference; otherwise a candidate's length alone would
    tell its type (at `easy` kg-link's distractors are of other types)."""
    suffix = f" ({kind})"
    return _name(rng, int(rng.integers(SHOWN_LENGTH[0], SHOWN_LENGTH[1] + 1)) - len(suffix)) + suffix


def synthetic_kg(seed: int = 0, countries: int = 6, cities: int = 24, people: int = 90) -> Graph:
    """People, cities and countries: located in, born in, lives in, citizen of (the birth city's
    country), knows (mostly people of one city). A 10 % share of the triples is held out."""
    rng = np.random.default_rng(seed)
    names: dict[str, str] = {}

    def entity(kind: str, i: int) -> str:
        key = f"{kind}{i}"
        names[key] = _entity_text(rng, kind)
        return key

    country = [entity("country", i) for i in range(countries)]
    city = [entity("city", i) for i in range(cities)]
    person = [entity("person", i) for i in range(people)]
    triples = [(c, "located in", country[i % countries]) for i, c in enumerate(city)]
    for p in person:
        born, lives = int(rng.integers(cities)), int(rng.integers(cities))
        triples += [(p, "born in", city[born]), (p, "lives in", city[lives]), (p, "citizen of", country[born % countries])]
    for i, p in enumerate(person):
        for j in rng.choice(people, size=2, replace=False):
            if j != i:
                triples.append((p, "knows", person[int(j)]))
    held = rng.random(len(triples)) < 0.1
    train = [t for t, h in zip(triples, held) if not h]
    entities = [*country, *city, *person]
    return assemble(
        "synthetic-kg", entities, [names[e] for e in entities], [e.rstrip("0123456789") for e in entities],
        [(h, t) for h, _, t in train], [r for _, r, _ in train], [t for t, h in zip(triples, held) if h],
    )  # fmt: skip


def networkx_graph(name: str) -> Graph:
    """karate (clubs as labels, no text), florentine and lesmis (names as text)."""
    try:
        import networkx as nx
    except ImportError:
        raise UserError(f"--source {name} needs networkx (pip install networkx)") from None
    graph = {"karate": nx.karate_club_graph, "florentine": nx.florentine_families_graph, "lesmis": nx.les_miserables_graph}[name]()
    ids = [str(n) for n in graph.nodes]
    texts = ["" if name == "karate" else str(n) for n in graph.nodes]
    labels = [graph.nodes[n].get("club") for n in graph.nodes]
    return assemble(name, ids, texts, labels, [(str(u), str(v)) for u, v in graph.edges])


# The graphs that ship with ssl4rl (no download), by source name.
BUNDLED = {
    "karate": "Zachary's karate club (networkx): 34 members, the two clubs as labels, no text",
    "florentine": "Florentine families (networkx): 15 families, their names as text",
    "lesmis": "Les Miserables co-occurrence (networkx): 77 characters, their names as text",
    "synthetic": "a seeded text-attributed graph: 160 notes in 4 topic communities, topics as labels",
    "synthetic-kg": "a seeded knowledge graph: people, cities and countries with 5 relations",
}


def bundled(name: str) -> Graph:
    if name == "synthetic":
        return synthetic_graph()
    if name == "synthetic-kg":
        return synthetic_kg()
    return networkx_graph(name)
