"""The cora, pubmed, wikics and products presets read the text-attributed releases as they ship
(TAPE's cora_orig and PubMed_orig, Wiki-CS's dataset folder), written here in those layouts."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from ssl4rl.build import BuildConfig, build
from ssl4rl.cli import main
from ssl4rl.eval.graph import graph_items
from ssl4rl.sources.graph_source import GraphRef, load_graph

PAPERS = [("31336", "Neural_Networks"), ("1061127", "Rule_Learning"), ("1106406", "Neural_Networks"), ("13195", "Theory"), ("37879", "Theory")]
CITES = [("31336", "1061127"), ("1061127", "1106406"), ("13195", "37879"), ("37879", "31336"), ("31336", "999")]  # 999: unknown


def write_cora(folder):
    (folder / "mccallum" / "cora" / "extractions").mkdir(parents=True)
    (folder / "cora.content").write_text("".join(f"{p}\t0\t1\t0\t{label}\n" for p, label in PAPERS))
    (folder / "cora.cites").write_text("".join(f"{a}\t{b}\n" for a, b in CITES))
    (folder / "mccallum" / "cora" / "papers").write_text("".join(f"{p}\thttp:##x##paper{p}.ps\tsome citation\n" for p, _ in PAPERS))
    for p, _ in PAPERS:
        (folder / "mccallum" / "cora" / "extractions" / f"http:##x##paper{p}.ps").write_text(
            f"URL: http://x/paper{p}.ps\nTitle: Paper {p} title\nAuthor: Someone\nAbstract: About paper {p} and its method.\n")


def write_pubmed(folder):
    (folder / "data").mkdir(parents=True)
    ids = ["12187484", "2344352", "14654069", "16443886"]
    (folder / "data" / "Pubmed-Diabetes.NODE.paper.tab").write_text(
        "NODE\tpaper\ncat=1,2,3:label\tnumeric:w-rat:0.0\tnumeric:w-common:0.0\n"
        + "".join(f"{p}\tlabel={1 + i % 3}\tw-rat=0.1\tw-common=0.2\tsummary=w-rat,w-common\n" for i, p in enumerate(ids)))
    (folder / "data" / "Pubmed-Diabetes.DIRECTED.cites.tab").write_text(
        "DIRECTED\tcites\nNO_FEATURES\n"
        + "".join(f"{k}\tpaper:{a}\t|\tpaper:{b}\n" for k, (a, b) in enumerate([(ids[0], ids[1]), (ids[1], ids[2]), (ids[2], ids[3]), (ids[3], ids[0])])))
    (folder / "pubmed.json").write_text(json.dumps([{"PMID": p, "TI": f"Study {p}", "AB": f"Insulin results {p}."} for p in reversed(ids)]))
    return ids


def write_wikics(folder, n: int = 40):
    folder.mkdir(parents=True, exist_ok=True)
    links = [[(i + 1) % n, (i + 5) % n] for i in range(n)]
    data = {"features": [[0.0] for _ in range(n)], "labels": [i % 4 for i in range(n)], "links": links,
            "train_masks": [[i % 2 == 0 for i in range(n)]], "val_masks": [[False] * n], "stopping_masks": [[False] * n],
            "test_mask": [i % 2 == 1 for i in range(n)]}  # fmt: skip
    meta = {"labels": {str(k): f"Category {k}" for k in range(4)},
            "nodes": [{"id": 1000 + i, "title": f"Article {i}", "label": f"Category {i % 4}", "outlinks": [], "tokens": ["graph", "theory", str(i)]} for i in range(n)]}  # fmt: skip
    (folder / "data.json").write_text(json.dumps(data))
    (folder / "metadata.json").write_text(json.dumps(meta))
    return data


def test_cora_reads_tapes_cora_orig_as_it_ships(tmp_path):
    write_cora(tmp_path)
    graph = load_graph(GraphRef("cora", str(tmp_path)))
    assert graph.ids == [p for p, _ in PAPERS]
    assert graph.texts[0] == "Paper 31336 title. About paper 31336 and its method."
    assert graph.labels[:2] == ["Neural Networks", "Rule Learning"]
    edges = sum(len(a) for a in graph.adj) // 2 + len(graph.heldout)
    assert edges == 4 and ("edge:31336->999", "edge-unknown-node") in graph.skips


def test_pubmed_reads_tapes_pubmed_orig_and_matches_texts_by_pmid(tmp_path):
    ids = write_pubmed(tmp_path)
    graph = load_graph(GraphRef("pubmed", str(tmp_path)))
    assert graph.ids == ids
    assert [graph.texts[i] for i in range(4)] == [f"Study {p}. Insulin results {p}." for p in ids]  # json order reversed: matched by PMID
    assert graph.labels[:3] == ["Diabetes Mellitus, Experimental", "Diabetes Mellitus Type 1", "Diabetes Mellitus Type 2"]
    assert sum(len(a) for a in graph.adj) // 2 + len(graph.heldout) == 4


def test_wikics_keeps_its_published_test_split_in_builds_and_evaluation(tmp_path):
    data = write_wikics(tmp_path / "wikics")
    graph = load_graph(GraphRef("wikics", str(tmp_path / "wikics")))
    assert graph.texts[3] == "Article 3. graph theory 3" and graph.labels[3] == "Category 3"
    test_ids = {str(1000 + i) for i, t in enumerate(data["test_mask"]) if t}
    out = tmp_path / "build"
    build(BuildConfig(task="masking", source="wikics", data=str(tmp_path / "wikics"), out=str(out)), progress_bar=False)
    split_of = {}
    for path in out.glob("*.parquet"):
        for info in pq.read_table(path, columns=["extra_info"]).column("extra_info").to_pylist():
            split_of[info["source_id"]] = info["split"]
    assert split_of and all((split == "test") == (node in test_ids) for node, split in split_of.items())
    asked = {item.key.split("/", 1)[1] for item in graph_items("node-classification", "wikics", str(tmp_path / "wikics"), None)}
    assert asked == test_ids


@pytest.mark.parametrize("preset, writer, missing", [("cora", write_cora, "cora.cites"), ("cora", write_cora, "mccallum/cora/papers"),
                                                     ("pubmed", write_pubmed, "pubmed.json"), ("wikics", write_wikics, "metadata.json")])  # fmt: skip
def test_a_partial_download_is_one_line_naming_the_missing_file(tmp_path, capsys, preset, writer, missing):
    folder = tmp_path / preset
    folder.mkdir()
    writer(folder)
    (folder / missing).unlink()
    code = main(["build", "masking", "--source", preset, "--data", str(folder), "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1 and missing in error, error
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_products_names_its_missing_files(tmp_path, capsys):
    (tmp_path / "ogbn_products_orig").mkdir()
    (tmp_path / "ogbn_products_orig" / "ogbn-products_subset.csv").write_text("uid,nid,title,content\na,0,Lamp,A desk lamp\n")
    assert main(["build", "masking", "--source", "products", "--data", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "ogbn-products_subset.pt" in capsys.readouterr().err
