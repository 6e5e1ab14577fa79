"""Graph evaluation comparable to the literature: the preset error names --source-data, --heldout
counts link questions by edge, knowledge-graph link prediction also reports filtered MRR and
Hits@1/3/10."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from ssl4rl.build import BuildConfig, build
from ssl4rl.cli import main
from ssl4rl.eval.graph import graph_items
from ssl4rl.eval.heldout import train_graph_pairs, train_image_hashes
from ssl4rl.eval.ranking import filtered_rank, ranking_summary
from ssl4rl.eval.scoring import summarize
from ssl4rl.sources.graph_source import GraphRef, load_graph


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


# ---------------------------------------------------------------- likelihood ranking (the standard protocol)
def _full_loglik(model, tokenizer, prompt_text: str, completion: str) -> float:
    """log p(completion | prompt) from one forward pass of the whole sequence: the reference."""
    import torch

    a = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    b = tokenizer(completion, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logp = torch.log_softmax(model(torch.tensor([a + b])).logits[0].float(), dim=-1)
    return sum(logp[len(a) + j - 1, b[j]].item() for j in range(len(b)))


def test_cached_batched_scores_equal_one_forward_pass_per_completion(text_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ssl4rl.eval.likelihood import completion_texts, score_completions

    tokenizer, model = AutoTokenizer.from_pretrained(text_model), AutoModelForCausalLM.from_pretrained(text_model).eval()
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Complete the fact: Kalo (person) --born in--> ?"}], add_generation_prompt=True, tokenize=False)
    names = ["Kalomi (city)", "Kalomi (city) x", "Ra", "Tesuvinoda (person)", "Zo (country)", "Kalomi"]  # prefixes, lengths apart
    completions = completion_texts(tokenizer, prompt, names)
    assert completions[0] == "Kalomi (city)<|im_end|>\n"  # the whole assistant turn: a prefix does not win by stopping
    scores = score_completions(model, tokenizer, prompt, names, batch_size=4)  # two batches, padded
    reference = [_full_loglik(model, tokenizer, prompt, c) for c in completions]
    assert len(set(reference)) == len(reference)
    assert all(abs(s - r) < 1e-3 for s, r in zip(scores, reference)), (scores, reference)


class _ControlledScores:
    """A backend whose score of a name is set by the test."""

    name, can_score = "controlled", True

    def __init__(self, score):
        self.score, self.calls = score, 0

    def score_completions(self, prompt, completions, batch_size=64):
        self.calls += 1
        return [self.score(c) for c in completions]

    def generate(self, prompts, images):
        raise AssertionError("likelihood items are not generated")


def _brute_rank(graph, h, relation, t, score) -> int:
    """1 + entities that are not true tails of (h, relation) scoring at least the truth's."""
    names = [graph.texts[e] or graph.ids[e] for e in range(len(graph))]
    known = {e for (a, r, e) in graph.facts if a == h and r == relation}
    return 1 + sum(1 for e in range(len(graph)) if e not in known and e != t and score(names[e]) >= score(names[t]))


def test_likelihood_ranking_ranks_the_truth_among_all_entities_with_other_true_tails_filtered(tmp_path):
    import hashlib

    from ssl4rl.eval.runner import run

    graph = load_graph(GraphRef("synthetic-kg"))
    items = graph_items("link-ranking", "synthetic-kg", None, None, ranking="likelihood")
    assert all(i.respond is not None and i.meta["protocol"] == "likelihood" for i in items)
    assert any(len({e for (a, r, e) in graph.facts if a == h and r == rel}) > 1 for h, rel, _ in graph.heldout_facts)  # filtering is exercised

    def hashed(name):
        return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 2**32

    summary = run(items, _ControlledScores(hashed), str(tmp_path / "hashed"), batch_size=4)
    ranks = [json.loads(line)["rank"] for line in (tmp_path / "hashed" / "predictions.jsonl").read_text().splitlines()]
    assert ranks == [_brute_rank(graph, h, rel, t, hashed) for h, rel, t in graph.heldout_facts]
    assert max(ranks) > 10 and summary["ranking"]["protocol"] == "likelihood" and summary["ranking"]["questions"] == len(items)
    assert "Ranking (likelihood:" in (tmp_path / "hashed" / "report.md").read_text()

    run(items, _ControlledScores(lambda name: 0.0), str(tmp_path / "ties"), batch_size=4)  # all tie: ties count against the truth
    ranks = [json.loads(line)["rank"] for line in (tmp_path / "ties" / "predictions.jsonl").read_text().splitlines()]
    assert ranks == [len(graph) - len({e for (a, r, e) in graph.facts if a == h and r == rel} | {t}) + 1 for h, rel, t in graph.heldout_facts]


def test_link_ranking_by_likelihood_end_to_end_matches_brute_force_log_likelihoods(tmp_path, text_model, capsys):
    """`ssl4rl eval --graph-task link-ranking` with the hf backend and a text model: the standard
    protocol by default; each truth's rank equals the rank from each entity name's log-likelihood
    computed here, one forward pass per name."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "rank"
    assert main(["eval", "--model", str(text_model), "--graph-task", "link-ranking", "--source", "synthetic-kg", "--backend", "hf", "--limit", "2", "--out", str(out)]) == 0
    assert "(likelihood ranking)" in capsys.readouterr().out
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ranking"]["protocol"] == "likelihood" and len(records) == 2
    graph = load_graph(GraphRef("synthetic-kg"))
    items = graph_items("link-ranking", "synthetic-kg", None, 2, ranking="likelihood")
    tokenizer, model = AutoTokenizer.from_pretrained(text_model), AutoModelForCausalLM.from_pretrained(text_model).eval()
    from ssl4rl.eval.likelihood import completion_texts

    for item, record, (h, rel, t) in zip(items, records, graph.heldout_facts):
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": item.prompt}], add_generation_prompt=True, tokenize=False)
        names = sorted({graph.texts[e] for e in range(len(graph))})
        loglik = dict(zip(names, (_full_loglik(model, tokenizer, prompt, c) for c in completion_texts(tokenizer, prompt, names))))
        expected = _brute_rank(graph, h, rel, t, loglik.__getitem__)
        assert abs(record["rank"] - expected) <= sum(abs(loglik[n] - loglik[graph.texts[t]]) < 1e-3 for n in names) - 1, (record["rank"], expected)
    listed = tmp_path / "list"
    assert main(["eval", "--model", str(text_model), "--graph-task", "link-ranking", "--source", "synthetic-kg", "--backend", "hf", "--ranking", "list",
                 "--limit", "2", "--max-new-tokens", "4", "--out", str(listed)]) == 0  # fmt: skip
    assert json.loads((listed / "summary.json").read_text())["ranking"]["protocol"] == "list"


def test_likelihood_ranking_on_a_backend_that_only_generates_is_one_line(tmp_path, text_model, capsys, monkeypatch):
    import ssl4rl.eval.backends as backends

    monkeypatch.setattr(backends, "resolve_backend", lambda name: "vllm")
    assert main(["eval", "--model", str(text_model), "--graph-task", "link-ranking", "--source", "synthetic-kg", "--ranking", "likelihood", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--ranking likelihood needs the hf backend and a text model" in err and err.count("\n") == 1, err
    assert main(["eval", "--model", str(text_model), "--graph-task", "link-prediction", "--source", "synthetic-kg", "--ranking", "list", "--out", str(tmp_path / "o")]) == 2
    assert "--ranking is for --graph-task link-ranking" in capsys.readouterr().err
