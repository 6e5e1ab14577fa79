"""Graph sources: every table format reads the same graph; drops are counted in the manifest; bad
input is one line and exit 2; knowledge-graph folders keep valid/test triples out of puzzles."""

from __future__ import annotations

import json
from collections import Counter
from itertools import combinations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ssl4rl.build import BuildConfig, build
from ssl4rl.cli import main
from ssl4rl.sources.graph import is_heldout_edge
from ssl4rl.sources.graph_source import GraphRef, load_graph

NODES = [(str(i), f"text of node {i} " + "word " * (i % 5), "ab"[i % 2]) for i in range(30)]
EDGES = [(str(i), str((i + 1) % 30)) for i in range(30)] + [(str(i), str((i + 7) % 30)) for i in range(0, 30, 3)]
BAD_EDGES = [("0", "0"), ("1", "ghost"), ("2", "3"), ("3", "2")]  # self-loop, unknown node, ring edge 2-3 twice more (both directions)


def write_tables(folder, fmt: str, nodes=NODES, edges=EDGES + BAD_EDGES):
    folder.mkdir(parents=True, exist_ok=True)
    node_table = pa.table({"id": [n[0] for n in nodes], "text": [n[1] for n in nodes], "label": [n[2] for n in nodes]})
    edge_table = pa.table({"src": [e[0] for e in edges], "dst": [e[1] for e in edges]})
    for name, table in (("nodes", node_table), ("edges", edge_table)):
        path = folder / f"{name}.{fmt}"
        if fmt == "parquet":
            pq.write_table(table, path)
        elif fmt == "jsonl":
            path.write_text("".join(json.dumps(row) + "\n" for row in table.to_pylist()))
        else:
            sep = "\t" if fmt == "tsv" else ","
            lines = [sep.join(table.column_names)] + [sep.join(f'"{v}"' if fmt == "csv" else v for v in row.values()) for row in table.to_pylist()]
            path.write_text("\n".join(lines) + "\n")
    return folder


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_every_table_format_reads_the_same_graph_and_counts_drops(tmp_path, fmt):
    graph = load_graph(GraphRef(str(write_tables(tmp_path / fmt, fmt))))
    assert graph.ids == [n[0] for n in NODES] and graph.labels[:2] == ["a", "b"] and graph.texts[3] == "text of node 3 word word word"
    edges = {tuple(sorted((graph.index[a], graph.index[b]))) for a, b in EDGES}
    kept = {(u, v) for u in range(len(graph)) for v in graph.adj[u] if u < v}
    assert kept | graph.heldout == edges and not kept & graph.heldout
    assert graph.heldout == {e for e in edges if is_heldout_edge(graph.ids[e[0]], graph.ids[e[1]])}
    reasons = sorted(reason for _, reason in graph.skips)
    assert reasons == ["duplicate-edge", "duplicate-edge", "edge-unknown-node", "self-loop"]


def test_drops_are_counted_in_the_manifest(tmp_path):
    source = write_tables(tmp_path / "g", "csv")
    manifest = build(BuildConfig(task="link", source=str(source), out=str(tmp_path / "out")), progress_bar=False)
    assert {k: manifest["skipped"][k] for k in ("duplicate-edge", "edge-unknown-node", "self-loop")} == {"duplicate-edge": 2, "edge-unknown-node": 1, "self-loop": 1}
    assert manifest["source"]["images"] == len(NODES) and manifest["source"]["name"] == "graph"
    again = build(BuildConfig(task="link", source=str(source), out=str(tmp_path / "out")), progress_bar=False)
    assert again == manifest  # a finished build is reused


def one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ssl4rl: error:") and err.count("\n") == 1, err
    return err


def test_bad_graph_input_is_one_line_and_exit_2(tmp_path, capsys):
    out = str(tmp_path / "out")
    missing = write_tables(tmp_path / "missing", "csv")
    (missing / "edges.csv").unlink()
    assert "no edges table" in one_line_error(capsys, ["build", "link", "--source", str(missing), "--out", out])
    nolabel = write_tables(tmp_path / "cols", "csv")
    (nolabel / "nodes.csv").write_text("id,name\n1,a\n")
    assert "missing column(s) text" in one_line_error(capsys, ["build", "link", "--source", str(nolabel), "--out", out])
    empty = write_tables(tmp_path / "empty", "csv", edges=[("0", "0"), ("1", "ghost")])
    assert "no edges" in one_line_error(capsys, ["build", "link", "--source", str(empty), "--out", out])
    nonodes = write_tables(tmp_path / "nonodes", "tsv", nodes=[], edges=[])
    assert "no nodes" in one_line_error(capsys, ["build", "link", "--source", str(nonodes), "--out", out])
    assert "needs --data" in one_line_error(capsys, ["build", "link", "--source", "cora", "--out", out])
    assert "knowledge graph" in one_line_error(capsys, ["build", "kg-link", "--source", "karate", "--out", out])
    assert "is a graph" in one_line_error(capsys, ["build", "rotation", "--source", "karate", "--out", out])
    assert "both graph and image" in one_line_error(capsys, ["build", "mix", "--tasks", "rotation:1,link:1", "--source", "karate", "--out", out])
    kg = tmp_path / "kg"
    kg.mkdir()
    (kg / "train.txt").write_text("a\tr\tb\nnot a triple\n")
    assert "head<TAB>relation<TAB>tail" in one_line_error(capsys, ["build", "kg-link", "--source", str(kg), "--out", out])
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.parquet"))


def test_kg_folder_holds_valid_and_test_triples_out_and_names_entities(tmp_path):
    kg = tmp_path / "fb"
    kg.mkdir()
    people, cities = [f"/m/p{i}" for i in range(24)], [f"/m/c{i}" for i in range(6)]
    train = [(p, "/people/born_in", cities[i % 6]) for i, p in enumerate(people)] + [(p, "/people/knows", people[(i + 1) % 24]) for i, p in enumerate(people)]
    held = [(people[0], "/people/lives_in", cities[1]), (people[1], "/people/lives_in", cities[2])]
    (kg / "train.txt").write_text("".join("\t".join(t) + "\n" for t in train + [train[0]]))
    (kg / "valid.txt").write_text("\t".join(held[0]) + "\n")
    (kg / "test.txt").write_text("\t".join(held[1]) + "\n")
    (kg / "entity2text.txt").write_text("".join(f"{e}\tName {e[3:]}\n" for e in people + cities))
    graph = load_graph(GraphRef(str(kg)))
    assert graph.is_kg and graph.texts[graph.index[people[3]]] == "Name p3"
    assert [(graph.ids[h], r, graph.ids[t]) for h, r, t in graph.heldout_facts] == held
    assert graph.linked(graph.index[people[0]], graph.index[cities[1]]) and graph.index[cities[1]] not in graph.adj[graph.index[people[0]]]
    manifest = build(BuildConfig(task="kg-link", source=str(kg), out=str(tmp_path / "out"), test_fraction=0.0), progress_bar=False)
    assert manifest["skipped"].get("duplicate-edge") == 1 and manifest["rows"]["train"] > 10
    for path in (tmp_path / "out").glob("*.parquet"):
        for row in pq.read_table(path).to_pylist():
            assert "lives_in" not in row["prompt"][0]["content"]  # the only lives_in facts are held out


def test_an_edges_table_with_relations_is_a_knowledge_graph(tmp_path):
    folder = write_tables(tmp_path / "rel", "csv")
    lines = ["src,dst,relation"] + [f"{a},{b},{'likes' if i % 2 else 'cites'}" for i, (a, b) in enumerate(EDGES)]
    (folder / "edges.csv").write_text("\n".join(lines) + "\n")
    graph = load_graph(GraphRef(str(folder)))
    assert graph.is_kg and {r for rels in graph.relations.values() for r in rels} == {"likes", "cites"}


def test_sources_lists_the_bundled_graphs_and_the_graph_presets_with_their_downloads(capsys):
    assert main(["sources"]) == 0
    out = capsys.readouterr().out
    for name in ("karate", "florentine", "lesmis", "synthetic", "synthetic-kg"):
        assert f"\n{name}: graph, bundled" in out
    for name, url in (("cora", "XiaoxinHe/TAPE"), ("pubmed", "TAPE"), ("wikics", "wiki-cs-dataset"), ("products", "TAPE"), ("fb15k237", "kg-bert"), ("wn18rr", "kg-bert")):
        line = out.split(f"\n{name}: ", 1)[1].split("\n", 2)
        assert url in line[1], (name, line)


def _total_variation(a: list[int], b: list[int]) -> float:
    ca, cb = Counter(a), Counter(b)
    return sum(abs(ca[k] / len(a) - cb[k] / len(b)) for k in ca.keys() | cb.keys()) / 2


def test_synthetic_kg_entity_types_cannot_be_told_by_text_length():
    """At `easy` kg-link's distractors are of other types than the answer: if a type's names were
    shorter, 'the shortest text' would answer (it did: 54.8 % vs 33.3 %)."""
    from ssl4rl.sources.graph_samples import synthetic_kg

    lengths: dict[str, list[int]] = {}
    for seed in range(10):
        graph = synthetic_kg(seed)
        for text, kind in zip(graph.texts, graph.labels):
            lengths.setdefault(kind, []).append(len(text))
    assert set(lengths) == {"country", "city", "person"}
    for a, b in combinations(sorted(lengths), 2):
        assert _total_variation(lengths[a], lengths[b]) < 0.2, (a, b, Counter(lengths[a]), Counter(lengths[b]))
    assert synthetic_kg(3).texts == synthetic_kg(3).texts and synthetic_kg(3).texts != synthetic_kg(4).texts
