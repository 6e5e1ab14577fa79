"""The reward entry point: exact on correct answers, robust to any string, options pass through."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssl4rl.reward import compute_score, format_ok
from ssl4rl.train.trl_grpo import make_reward_functions

TRUTHS = {"rotation": "90", "jigsaw": "3,1,4,2", "position": "top-left", "contrastive": "positive"}


@pytest.mark.parametrize(
    "task, answer",
    [
        ("rotation", "90"), ("rotation", "90°"), ("rotation", "90 degrees"),
        ("position", "top left"), ("position", "Top-Left"), ("position", "top_left"),
        ("jigsaw", "3,1,4,2"), ("jigsaw", "3, 1, 4, 2"), ("jigsaw", "[3,1,4,2]"), ("jigsaw", "3 1 4 2"),
        ("contrastive", "positive"), ("contrastive", "POSITIVE"),
    ],
)  # fmt: skip
def test_documented_spellings_of_a_right_answer_score_one(task, answer):
    result = compute_score(f"ssl4rl/{task}", f"<think>...</think> <answer> {answer} </answer>", TRUTHS[task])
    assert result == {"score": 1.0, "acc": 1.0, "format": 1.0, "task": task}


@pytest.mark.parametrize(
    "task, response",
    [
        ("rotation", "<answer>180</answer>"), ("rotation", "<answer>ninety</answer>"), ("rotation", "90"),
        ("position", "<answer>top-right</answer>"), ("contrastive", "<answer>yes</answer>"),
        ("jigsaw", "<answer>4,3,2,1</answer>"), ("jigsaw", "<answer>1,1,1,1</answer>"), ("jigsaw", "<answer>3,1,4,2,5</answer>"),
    ],
)  # fmt: skip
def test_wrong_or_invalid_answers_score_zero(task, response):
    assert compute_score(f"ssl4rl/{task}", response, TRUTHS[task])["acc"] == 0.0


def test_only_the_last_answer_block_counts():
    assert compute_score("ssl4rl/rotation", "<answer>90</answer> wait <answer>180</answer>", "90")["acc"] == 0.0
    assert compute_score("ssl4rl/rotation", "<answer>180</answer> no: <ANSWER>90</ANSWER>", "90")["acc"] == 1.0


def test_jigsaw_partial_credit_and_parity_mode():
    assert compute_score("ssl4rl/jigsaw", "<answer>3,1,2,4</answer>", "3,1,4,2")["score"] == 0.5
    # The reference scores positions even when the answer is not a permutation.
    assert compute_score("ssl4rl/jigsaw", "<answer>3,1,1,1</answer>", "3,1,4,2")["score"] == 0.0
    parity = compute_score("ssl4rl/jigsaw", "<answer>3,1,1,1</answer>", "3,1,4,2", jigsaw_scoring="parity")
    assert parity["score"] == 0.5


def test_format_weight_mixes_format_into_the_score():
    plain = compute_score("ssl4rl/rotation", "<answer>90</answer>", "90", format_weight=0.2)
    assert plain == {"score": 0.8, "acc": 1.0, "format": 0.0, "task": "rotation"}
    wrong_but_formatted = compute_score("ssl4rl/rotation", "<think>x</think><answer>0</answer>", "90", format_weight=0.2)
    assert wrong_but_formatted["score"] == pytest.approx(0.2)


def test_strict_format_pays_only_a_response_that_ends_at_its_answer():
    """The lenient reading pays the last complete block wherever it stands; the strict one pays
    nothing that does not end at `</answer>` (a reply cut at the length limit) or that skips the
    reasoning tags, and keeps `acc` as the verifier's own reading."""
    clean, cut = "<think> </think> <answer>90</answer>", "<think>0</answer> <answer>90</answer>0</"
    assert compute_score("ssl4rl/rotation", cut, "90")["score"] == 1.0
    strict = compute_score("ssl4rl/rotation", cut, "90", strict_format=True)
    assert strict == {"score": 0.0, "acc": 1.0, "format": 0.0, "task": "rotation"}
    assert compute_score("ssl4rl/rotation", clean, "90", strict_format=True)["score"] == 1.0
    assert compute_score("ssl4rl/rotation", clean, "180", strict_format=True)["score"] == 0.0
    assert compute_score("ssl4rl/rotation", "<answer>90</answer>", "90", strict_format=True)["score"] == 0.0
    assert compute_score("ssl4rl/rotation", clean, "180", strict_format=True, format_weight=0.1)["score"] == pytest.approx(0.1)


def test_task_comes_from_extra_info_before_data_source():
    extra = {"task": "position", "params": json.dumps({"grid": 2})}
    assert compute_score("anything/else", "<answer>top left</answer>", "top-left", extra)["task"] == "position"
    with pytest.raises(ValueError, match="unknown task"):
        compute_score("openai/gsm8k", "<answer>1</answer>", "1")


def test_format_check():
    assert format_ok(" <think>a\nb</think>\n\n<answer>c</answer>\n") == 1.0
    assert format_ok("<think>a</think> text <answer>c</answer>") == 0.0
    assert format_ok("<answer>c</answer><think>a</think>") == 0.0


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(), st.binary().map(lambda b: b.decode("latin-1")), st.text(alphabet="<>/answerthink0123456789, ", max_size=200)))
def test_never_raises_on_any_response(response):
    for task, truth in TRUTHS.items():
        result = compute_score(f"ssl4rl/{task}", response, truth)
        assert 0.0 <= result["score"] <= 1.0 and result["format"] in (0.0, 1.0)


def test_huge_responses_are_scored_quickly():
    huge = "<think>" + "</think><answer>" * 100_000 + "<answer>90</answer>"
    assert compute_score("ssl4rl/rotation", huge, "90")["acc"] == 1.0
    assert compute_score("ssl4rl/rotation", None, "90")["score"] == 0.0  # type: ignore[arg-type]


def test_trls_reward_functions_read_the_dataset_columns():
    puzzle_reward = make_reward_functions(["rotation"], 0.0, "permutation")[0]
    completions = [[{"role": "assistant", "content": "<answer>90</answer>"}], [{"role": "assistant", "content": "<answer>0</answer>"}]]
    columns = dict(data_source=["ssl4rl/rotation"] * 2, reward_model=[{"ground_truth": "90"}] * 2, extra_info=[{"task": "rotation"}] * 2)
    assert puzzle_reward(prompts=[None, None], completions=completions, **columns) == [1.0, 0.0]
    assert puzzle_reward(completions=["<answer>90</answer>"], data_source=["ssl4rl/rotation"], reward_model=[{"ground_truth": "90"}], extra_info=[None]) == [1.0]


def test_trl_scores_each_completion_once_per_step(monkeypatch, tmp_path):
    """The reward and its 2 x tasks metric functions share one scoring pass (and one curriculum
    log line per completion); the next step's completions are scored afresh."""
    import ssl4rl.train.trl_grpo as trl_grpo

    calls = []
    monkeypatch.setattr(trl_grpo, "compute_score", lambda *args, **kwargs: calls.append(args) or compute_score(*args, **kwargs))
    log = tmp_path / "curriculum.jsonl"
    functions = make_reward_functions(["position", "rotation"], 0.0, "permutation", curriculum_log=str(log), step_of=lambda: 1)
    columns = dict(data_source=["ssl4rl/rotation", "ssl4rl/position"], reward_model=[{"ground_truth": "90"}, {"ground_truth": "top-left"}],
                   extra_info=[{"task": "rotation", "split": "train"}, {"task": "position", "split": "train"}])  # fmt: skip
    for step in range(2):
        completions = ["<answer>90</answer>", "<answer>top-right</answer>"]  # a new list each step, equal in value
        results = {f.__name__: f(prompts=[None, None], completions=completions, **columns) for f in functions}
        assert len(calls) == 2 * (step + 1) and len(log.read_text().splitlines()) == 2 * (step + 1)
    assert results == {"puzzle_reward": [1.0, 0.0], "position_acc": [None, 0.0], "position_format": [None, 0.0],
                       "rotation_acc": [1.0, None], "rotation_format": [0.0, None]}  # fmt: skip