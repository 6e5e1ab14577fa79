"""Graph prompts a model can reason over: at the default settings the focus node shows an edge,
texts are not cut below 100 characters, the shown structure does not tell the answer, and the
intended-skill solver (text similarity, shown structure) scores far above chance while a graph
with nothing to learn leaves it at chance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from ssl4rl.audit import audit
from ssl4rl.budget import TokenBudget, estimate_text_tokens
from ssl4rl.build import BuildConfig, build
from ssl4rl.sources.graph_source import GraphRef, load_graph
from ssl4rl.tasks.common import LETTERS

WORDS = {
    "birds": "sparrow heron feather nest migration beak plumage wetland songbird raptor flock",
    "rivers": "delta sediment current estuary floodplain meander tributary erosion basin rapids",
    "markets": "price auction trader demand inflation bond equity ledger dividend broker",
    "engines": "piston cylinder torque crankshaft valve turbine exhaust ignition gearbox fuel",
}
FILLER = "the a of in on with and which was were has had by for this that".split()


def write_text_graph(folder: Path, nodes: int = 300, seed: int = 1) -> Path:
    """A text-attributed graph as a user would bring one: 4 communities, texts of 150-260
    characters, edges mostly inside a community (nodes.csv, edges.csv)."""
    rng = np.random.default_rng(seed)
    topics = list(WORDS)
    community = rng.integers(4, size=nodes)
    rows = ["id,text,label"]
    for i in range(nodes):
        target, words = int(rng.integers(150, 261)), []
        while len(" ".join(words)) < target:
            words.append(str(rng.choice(WORDS[topics[community[i]]].split() if rng.random() < 0.5 else FILLER)))
        rows.append(f"n{i},{' '.join(words)[:target].strip()},{topics[community[i]]}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nodes.csv").write_text("\n".join(rows) + "\n")
    draws = rng.random((nodes, nodes)) < np.where(community[:, None] == community[None, :], 0.04, 0.003)
    (folder / "edges.csv").write_text("src,dst\n" + "".join(f"n{u},n{v}\n" for u, v in zip(*np.nonzero(np.triu(draws, 1)))))
    return folder


def rows(out: Path) -> list[dict]:
    return [r for p in sorted(out.glob("*.parquet")) for r in pq.read_table(p).to_pylist()]


@pytest.fixture(scope="module")
def text_graph(tmp_path_factory) -> Path:
    return write_text_graph(tmp_path_factory.mktemp("graphs") / "tag")


@pytest.fixture(scope="module")
def builds(tmp_path_factory, text_graph) -> dict[str, Path]:
    """Each graph task at the default settings on the bundled graphs and the brought-in one."""
    root = tmp_path_factory.mktemp("builds")
    made = {}
    for task, source in (("neighbour", "synthetic"), ("link", "synthetic"), ("masking", "synthetic"), ("kg-link", "synthetic-kg"),
                         ("neighbour", "lesmis"), ("masking", "lesmis"), ("neighbour", str(text_graph)), ("link", str(text_graph)),
                         ("masking", str(text_graph))):  # fmt: skip
        out = root / f"{task}-{Path(source).name}"
        build(BuildConfig(task=task, source=source, out=str(out), per_image=2, test_fraction=0.0), progress_bar=False)
        made[f"{task}/{Path(source).name}"] = out
    return made


def test_the_text_estimate_is_far_below_the_byte_bound_and_above_a_4_chars_per_token_count():
    prose = "The migration of songbirds follows the river basin, where the wetland offers a nest and food. " * 5
    estimate = estimate_text_tokens(prose)
    assert len(prose) / 4 < estimate < len(prose.encode()) / 2  # published ratios: about 4 characters a token in English
    assert estimate_text_tokens("12-345, 6-7") == 10  # digits one by one, as Qwen's pre-tokenizer splits them; spaces free
    assert TokenBudget(1024, estimate=True).text_tokens(prose) < TokenBudget(1024).text_tokens(prose)


def test_every_focus_node_shows_an_edge_and_no_text_is_cut_below_100_characters(builds):
    for name, out in builds.items():
        manifest = json.loads((out / "manifest.json").read_text())
        task = name.split("/")[0]
        shown = manifest["graph_shown"][task]
        assert shown["rows"] >= 40, (name, shown)
        assert shown["focus_shows_edge"] >= 0.95, (name, shown)
        assert shown["shortest_cut_chars"] is None or shown["shortest_cut_chars"] >= 100, (name, shown)
        assert manifest["token_budget"]["text"].startswith("estimate")
        for row in rows(out):  # the manifest's figures agree with the rows
            params = json.loads(row["extra_info"]["params"])
            assert params["text_chars"] >= 100


def test_the_brought_in_graph_keeps_its_texts_at_the_default_length_and_many_nodes(builds):
    """Texts of 150-260 characters: cut only to the default --text-chars (160), never shorter to fit."""
    for task in ("neighbour", "link", "masking"):
        shown = json.loads((builds[f"{task}/tag"] / "manifest.json").read_text())["graph_shown"][task]
        assert shown["shortest_cut_chars"] == 160 and shown["nodes_median"] >= (4 if task == "masking" else 8), (task, shown)


def shared(params: dict) -> int:
    links: dict[int, set[int]] = {}
    for a, b in params["edges"]:
        links.setdefault(a, set()).add(b)
        links.setdefault(b, set()).add(a)
    return len(links.get(params["u"], set()) & links.get(params["v"], set()))


@pytest.mark.parametrize("graph", ["synthetic", "tag"])
def test_link_yes_and_no_pairs_share_shown_neighbours_equally_often(builds, graph):
    counts = {"yes": [], "no": []}
    for row in rows(builds[f"link/{graph}"]):
        counts[row["reward_model"]["ground_truth"]].append(shared(json.loads(row["extra_info"]["params"])) > 0)
    assert min(len(v) for v in counts.values()) >= 30
    assert abs(np.mean(counts["yes"]) - np.mean(counts["no"])) < 0.05, {k: np.mean(v) for k, v in counts.items()}


def test_kg_link_never_shows_a_fact_between_the_head_and_a_candidate(builds):
    graph = load_graph(GraphRef("synthetic-kg"))
    would_show = 0
    for row in rows(builds["kg-link/synthetic-kg"]):
        params = json.loads(row["extra_info"]["params"])
        head, candidates = params["head"], set(params["candidate_nodes"])
        assert not any({a, b} & {head} and {a, b} & candidates for a, b in params["edges"])
        ids = params["original"]
        truth = params["candidate_nodes"][LETTERS.index(row["reward_model"]["ground_truth"])]
        h = graph.index[ids[head]]
        for c in (graph.index[ids[n]] for n in candidates):
            would_show += any(not (pair == (h, graph.index[ids[truth]]) and r == params["relation"]) for pair in ((h, c), (c, h)) for r in graph.relations.get(pair, []))
    assert would_show > 0  # such facts exist in the graph: they are the ones dropped


def test_kg_link_never_shows_the_reverse_of_a_symmetric_answer(tmp_path):
    """A knowledge graph whose 'married to' and 'sibling of' facts are stated both ways."""
    folder = tmp_path / "kg"
    folder.mkdir()
    people = [f"p{i}" for i in range(60)]
    (folder / "nodes.csv").write_text("id,text\n" + "".join(f"{p},Person {p}\n" for p in people) + "c0,Town A\nc1,Town B\n")
    lines = ["src,dst,relation"]
    for i in range(0, 60, 2):
        a, b = people[i], people[i + 1]
        lines += [f"{a},{b},married to", f"{b},{a},married to", f"{a},c{i % 4 // 2},lives in", f"{b},c{i % 4 // 2},lives in"]
        lines += [f"{a},{people[(i + 2) % 60]},sibling of", f"{people[(i + 2) % 60]},{a},sibling of"]
    (folder / "edges.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    build(BuildConfig(task="kg-link", source=str(folder), out=str(out), per_image=3, test_fraction=0.0), progress_bar=False)
    checked = 0
    for row in rows(out):
        params = json.loads(row["extra_info"]["params"])
        truth = params["candidate_nodes"][LETTERS.index(row["reward_model"]["ground_truth"])]
        facts = row["prompt"][0]["content"].split("Facts:\n", 1)[1].split("\n\n", 1)[0].splitlines()
        assert f"{truth} --{params['relation']}--> {params['head']}" not in facts
        checked += params["relation"] in ("married to", "sibling of")
    assert checked >= 20


def skill(report: dict, task: str) -> tuple[float, float]:
    group = next(g for g in report["groups"] if g["task"] == task)
    probe = next(p for p in group["probes"] if p["probe"] == "intended skill")
    return probe["accuracy"], probe["chance"]


@pytest.mark.parametrize("name, times", [("masking/synthetic", 2.0), ("neighbour/synthetic", 2.0), ("neighbour/lesmis", 2.0),
                                         ("masking/tag", 2.0), ("neighbour/tag", 2.0), ("kg-link/synthetic-kg", 1.4), ("link/synthetic", 1.3)])  # fmt: skip
def test_the_intended_skill_solves_each_task_well_above_chance(builds, name, times):
    report = audit(builds[name])
    accuracy, chance = skill(report, name.split("/")[0])
    assert accuracy >= times * chance, (name, accuracy, chance)
    assert report["flagged"] == 0, [p for g in report["groups"] for p in g["probes"] if p["flagged"]]


def test_the_solver_stays_at_chance_when_the_graph_carries_nothing(tmp_path, text_graph):
    """Texts shuffled across nodes and edges rewired at random: nothing to reason from."""
    rng = np.random.default_rng(0)
    lines = (text_graph / "nodes.csv").read_text().splitlines()
    texts = [line.split(",")[1] for line in lines[1:]]
    order = rng.permutation(len(texts))
    folder = tmp_path / "noise"
    folder.mkdir()
    (folder / "nodes.csv").write_text("id,text\n" + "".join(f"n{i},{texts[j]}\n" for i, j in enumerate(order)))
    edges = (text_graph / "edges.csv").read_text().count("\n") - 1
    pairs = {tuple(sorted(rng.choice(len(texts), 2, replace=False))) for _ in range(edges)}
    (folder / "edges.csv").write_text("src,dst\n" + "".join(f"n{a},n{b}\n" for a, b in sorted(pairs)))
    for task in ("neighbour", "masking"):
        out = tmp_path / task
        build(BuildConfig(task=task, source=str(folder), out=str(out), per_image=2, test_fraction=0.0), progress_bar=False)
        accuracy, chance = skill(audit(out), task)
        assert accuracy < chance + 0.1, (task, accuracy, chance)
