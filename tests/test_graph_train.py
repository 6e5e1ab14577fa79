"""The graph path through training and evaluation: a tiny offline Qwen2 text model trains with
TRL on graph puzzles with the same reward, the launchers' checks accept it, and the graph
evaluations ask held-out nodes and edges and report accuracy per class."""

from __future__ import annotations

import json
import shutil

import pytest

from ssl4rl.build import BuildConfig, build
from ssl4rl.cli import main
from ssl4rl.sources.graph_source import GraphRef, load_graph


@pytest.fixture(scope="module")
def graph_set(tmp_path_factory, text_model):
    """Counted with the tiny model's own tokenizer (about 1.5x the estimate's tokens): the check
    counts in the training model's tokens and would refuse an estimated build at 1024."""
    out = tmp_path_factory.mktemp("graph") / "mix"
    build(BuildConfig(task="mix", tasks={"masking": 1.0, "neighbour": 1.0, "link": 1.0}, source="synthetic", out=str(out),
                      difficulty=["easy", "medium", "hard"], processor=str(text_model)), progress_bar=False)  # fmt: skip
    return out


def test_tiny_text_model_loads_offline_with_qwens_chat_format(text_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ssl4rl.models import is_text_model

    tokenizer = AutoTokenizer.from_pretrained(text_model)
    model = AutoModelForCausalLM.from_pretrained(text_model)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Are nodes 3 and 5 connected?"}], add_generation_prompt=True, tokenize=False)
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n")
    assert model.config.model_type == "qwen2" and is_text_model(text_model) and sum(p.numel() for p in model.parameters()) < 500_000


def test_trl_trains_a_text_model_on_graph_puzzles(text_model, graph_set, tmp_path, capsys):
    import torch
    from transformers import AutoModelForCausalLM

    from ssl4rl.tiny_vlm import warm_start

    model = tmp_path / "warm"
    shutil.copytree(text_model, model)
    losses = warm_start(model, graph_set, progress=False)
    assert losses[-1] < losses[0] / 3  # the answer format is learnt
    before = {k: v.clone() for k, v in AutoModelForCausalLM.from_pretrained(model).state_dict().items()}
    code = main(["train", "--backend", "trl", "--data", str(graph_set), "--model", str(model), "--out", str(tmp_path / "run"), "--batch-size", "4",
                 "--mini-batch-size", "4", "--rollout-n", "4", "--max-steps", "2", "--max-response-length", "24", "--lr", "1e-3", "--logger", "none"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "step    2  reward" in out and "link acc" in out and "masking acc" in out
    after = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "trl" / "final").state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before), "GRPO steps with reward variance must move some weights"


@pytest.mark.parametrize("backend", ["trl", "verl"])
def test_a_text_model_on_image_puzzles_is_one_line(text_model, rotation_set, tmp_path, capsys, backend):
    code = main(["train", "--backend", backend, "--device", "cpu", "--data", str(rotation_set), "--model", str(text_model), "--out", str(tmp_path), "--max-steps", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("ssl4rl: error:") and "is a text model" in err and err.count("\n") == 1


@pytest.mark.parametrize("backend", ["trl", "verl"])
def test_the_preflight_accepts_a_text_model_on_a_graph_build(text_model, graph_set, capsys, backend):
    args = ["check", str(graph_set), "--backend", backend, "--model", str(text_model)]
    if backend == "verl":
        args += ["--device", "cpu", "trainer.total_training_steps=2"]
    else:
        args += ["--batch-size", "4", "--mini-batch-size", "4"]
    code = main(args)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "train rows" in captured.out


def test_node_classification_asks_test_nodes_and_reports_per_class(text_model, graph_set, tmp_path):
    from ssl4rl.schema import content_key, split_of
    from ssl4rl.sources.graph_source import node_payload

    out = tmp_path / "nc"
    assert main(["eval", "--model", str(text_model), "--graph-task", "node-classification", "--source", "synthetic", "--out", str(out),
                 "--max-new-tokens", "4", "--backend", "hf", "--heldout", str(graph_set)]) == 0  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    graph = load_graph(GraphRef("synthetic"))
    tested = [n for n in graph.ids if split_of(content_key(node_payload(n)), 0.1) == "test"]
    assert summary["questions"] == len(tested) > 5 and summary["heldout"] == {"questions": len(tested), "excluded": 0, "accuracy": summary["accuracy"]}
    assert set(summary["per_category"]) <= {"astronomy", "botany", "music", "cooking"} and summary["chance"] == 0.25
    assert sum(c["n"] for c in summary["per_category"].values()) == len(tested)
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert {r["index"].split("/")[1] for r in records} == set(tested)


def test_link_prediction_asks_the_held_out_edges_and_as_many_non_edges(text_model, tmp_path):
    from ssl4rl.eval.graph import graph_items

    graph = load_graph(GraphRef("synthetic"))
    items = graph_items("link-prediction", "synthetic", None, None)
    yes = [i for i in items if i.meta["answer"] == "yes"]
    no = [i for i in items if i.meta["answer"] == "no"]
    assert len(yes) == len(graph.heldout) and abs(len(yes) - len(no)) <= 1
    for item in items:
        _, a, b = item.key.split("/")
        u, v = graph.index[a], graph.index[b]
        assert graph.linked(u, v) == (item.meta["answer"] == "yes") and v not in graph.adj[u]  # never a training edge
    assert graph_items("link-prediction", "synthetic", None, None)[0].prompt == items[0].prompt  # deterministic
    scored = items[0].score(f"<answer>{items[0].meta['answer']}</answer>")
    assert scored["correct"] and not items[0].score("<answer>maybe</answer>")["correct"]
    out = tmp_path / "kg"
    assert main(["eval", "--model", str(text_model), "--graph-task", "link-prediction", "--source", "synthetic-kg", "--out", str(out),
                 "--max-new-tokens", "4", "--backend", "hf", "--limit", "8"]) == 0  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["questions"] == 8 and summary["chance"] == 0.25 and set(summary["per_category"]) <= {"born in", "lives in", "citizen of", "knows", "located in"}


def test_puzzle_eval_of_a_graph_build_with_a_text_model(text_model, graph_set, tmp_path):
    out = tmp_path / "puzzles"
    assert main(["eval", "--model", str(text_model), "--puzzles", str(graph_set), "--out", str(out), "--max-new-tokens", "4", "--backend", "hf"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["per_category"]) == {"masking", "neighbour", "link"}


def test_the_graph_profile_asks_for_longer_prompts(graph_set, capsys):
    assert main(["train", "--backend", "verl", "--profile", "graph", "--data", str(graph_set), "--model", "Qwen/Qwen2.5-3B-Instruct", "--dry-run"]) == 0
    line = capsys.readouterr().out
    assert "data.max_prompt_length=2048" in line and "trainer.n_gpus_per_node=8" in line and "actor_rollout_ref.model.path=Qwen/Qwen2.5-3B-Instruct" in line


def test_bad_graph_evaluations_are_one_line_before_any_model_loads(tmp_path, capsys):
    cases = [
        (["--graph-task", "node-classification"], "needs --source"),
        (["--graph-task", "node-classification", "--source", "lesmis"], "needs node labels"),
        (["--graph-task", "link-prediction", "--source", "nowhere"], "neither bundled"),
        (["--data", "x.tsv", "--source", "karate"], "--source is for --graph-task"),
    ]
    for args, message in cases:
        assert main(["eval", "--model", str(tmp_path / "no-model"), "--out", str(tmp_path / "out"), *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("ssl4rl: error:") and message in err and err.count("\n") == 1, err


def test_a_text_models_tokenizer_counts_graph_rows_exactly(text_model, tmp_path):
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    out = tmp_path / "exact"
    manifest = build(BuildConfig(task="neighbour", source="synthetic", out=str(out), processor=str(text_model), max_prompt_tokens=1600, test_fraction=0.0), progress_bar=False)
    tokenizer = AutoTokenizer.from_pretrained(text_model)
    counts = [
        len(tokenizer(tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False), add_special_tokens=False)["input_ids"])
        for path in out.glob("*.parquet") for row in pq.read_table(path).to_pylist()
    ]  # fmt: skip
    assert len(counts) > 20 and max(counts) == manifest["prompt_tokens"]["train"]["max"] <= 1600
    assert manifest["token_budget"]["text"] == "exact (processor)"
