"""Graph evaluation comparable to the literature: the preset error names --source-data, --heldout
counts link questions by edge, knowledge-graph link prediction also reports filtered MRR and
Hits@1/3/10."""

from __future__ import annotations

import pyarrow.parquet as pq

from ssl4rl.build import BuildConfig, build
from ssl4rl.cli import main
from ssl4rl.eval.graph import graph_items
from ssl4rl.eval.heldout import train_graph_pairs, train_image_hashes
from ssl4rl.eval.ranking import filtered_rank, ranking_summary
from ssl4rl.eval.scoring import summarize
from ssl4rl.sources.graph import GraphRef, load_graph


def test_a_graph_preset_without_data_names_the_source_data_flag(tmp_path, capsys):
    assert main(["eval", "--model", str(tmp_path / "m"), "--graph-task", "node-classification", "--source", "cora", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--source-data PATH" in err and "--data PATH" not in err and err.count("\n") == 1, err


def test_heldout_counts_link_questions_by_edge_not_by_endpoint(tmp_path):
    out = tmp_path / "link"
    build(BuildConfig(task="mix", tasks={"link": 1.0, "neighbour": 1.0}, source="synthetic", out=str(out), per_image=3), progress_bar=False)
    pairs, hashes = train_graph_pairs([str(out)]), train_image_hashes([str(out)])
    items = graph_items("link-prediction", "synthetic", None, None, train_hashes=hashes, train_pairs=pairs)
    yes = [i for i in items if i.meta["answer"] == "yes"]
    assert yes and all(i.meta["heldout"] for i in yes)  # held-out edges: never shown, never asked
    graph = load_graph(GraphRef("synthetic"))
    trained_nodes = {graph.index[info["source_id"].split("#")[0]] for path in out.glob("train-*.parquet")
                     for info in pq.read_table(path, columns=["extra_info"]).column("extra_info").to_pylist()}  # fmt: skip
    assert any(graph.index[i.key.split("/")[1]] in trained_nodes for i in yes)  # by endpoint it was "seen"; by edge it is held out
    asked = next(iter(pairs))
    assert frozenset(asked) in pairs and all(i.meta["heldout"] == (frozenset(i.key.split("/")[1:]) not in pairs) for i in items)


def test_filtered_rank_drops_other_true_tails_and_unknown_names():
    names = {"paris": {0}, "lyon": {1}, "nice": {2}, "rome": {3}}
    assert filtered_rank("<answer>Lyon\nParis</answer>", names, 0, set()) == 2
    assert filtered_rank("<answer>Lyon\nParis</answer>", names, 0, {1}) == 1  # Lyon is another true tail: filtered
    assert filtered_rank("<answer>Atlantis\n1. Paris</answer>", names, 0, set()) == 1  # not an entity: no place taken
    assert filtered_rank("<answer>Rome</answer>", names, 0, set()) is None
    assert ranking_summary([1, 3, None, 10]) == {"questions": 4, "mrr": round((1 + 1 / 3 + 0.1) / 4, 4), "hits@1": 0.25, "hits@3": 0.5, "hits@10": 0.75}


def test_link_ranking_ranks_each_held_out_triple_among_all_entities():
    graph = load_graph(GraphRef("synthetic-kg"))
    items = graph_items("link-ranking", "synthetic-kg", None, None)
    assert len(items) == len(graph.heldout_facts) > 10
    records = []
    for item, (h, relation, t) in zip(items, graph.heldout_facts):
        assert f"--{relation}--> ?" in item.prompt and graph.texts[h] in item.prompt
        others = [graph.texts[e] for (a, r, e) in sorted(graph.facts) if a == h and r == relation and e != t]
        oracle = item.score("<answer>" + "\n".join([*others, graph.texts[t]]) + "</answer>")  # other true tails first: filtered
        assert oracle["rank"] == 1 and oracle["correct"]
        wrong = item.score("<answer>nobody</answer>")
        assert wrong["rank"] is None and not wrong["correct"]
        records.append({**item.meta, **(oracle if len(records) % 2 else wrong), "error": None})
    summary = summarize(records)
    assert summary["ranking"]["questions"] == len(items) and abs(summary["ranking"]["mrr"] - summary["ranking"]["hits@1"]) < 1e-9
    assert 0.4 < summary["ranking"]["hits@10"] < 0.6
