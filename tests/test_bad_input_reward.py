"""Bad input at the reward layer: hostile responses cost linear time; malformed rows and reward
options fail loudly with one ValueError naming the field."""

from __future__ import annotations

import signal
import time
from contextlib import contextmanager

import pytest

from ssl4rl.reward import compute_score
from ssl4rl.tasks import TASKS

TRUTHS = {
    "rotation": "90", "jigsaw": "3,1,4,2", "position": "top-left", "contrastive": "positive",
    "inpainting": "B", "similarity": "B", "ordering": "2,4,1,3", "correspondence": "B", "flip": "B",
    "masking": "B", "neighbour": "B", "link": "yes", "kg-link": "B",
}  # fmt: skip

# Text of about n characters built to make a backtracking parser explode: separator runs,
# digit runs, and every tag the parsers look for, repeated.
ADVERSARIAL = {
    "digits and double spaces": lambda n: "1  " * (n // 3) + "x",
    "spaces": lambda n: "1" + " " * n + "x",
    "commas": lambda n: "1" + "," * n,
    "separators": lambda n: "1 ,; " * (n // 5) + "x",
    "digits": lambda n: "1" * n,
    "numbers": lambda n: "1, " * (n // 3) + ",",
    "open tags": lambda n: "<answer>" * (n // 8),
    "close tags": lambda n: "</answer>" * (n // 9),
    "tags with spaces": lambda n: "< answer  " * (n // 10),
    "think tags": lambda n: "<think></think>" * (n // 15) + "<answer",
    "lone brackets": lambda n: "<" + " " * n,
    "degrees": lambda n: "90 " + "degrees" * (n // 7),
    "dashes": lambda n: "top" + " -_" * (n // 3) + "x",
}  # fmt: skip


@contextmanager
def watchdog(seconds: float):
    """Turns a super-linear parse into a failure instead of a hung test run."""

    def expire(*_):
        raise TimeoutError(f"took over {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def best_time(score, response: str, truth: str, repeats: int = 3) -> float:
    """The least CPU time of a few calls: this process's own time, which other jobs on a shared
    machine do not inflate as they do wall time (the growth ratio is what the tests read)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        score(response, truth, {})
        best = min(best, time.process_time() - start)
    return best


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_parser_runs_in_linear_time_on_adversarial_text(task):
    """10x more text may cost at most 25x the time (linear: 10x; quadratic: 100x), plus 2 ms of
    timer slack for inputs that are rejected early; for the task's verifier and compute_score."""
    whole_reward = lambda response, truth, params: compute_score(f"ssl4rl/{task}", response, truth)  # noqa: E731
    for (name, make), score in ((case, score) for case in ADVERSARIAL.items() for score in (TASKS[task].score, whole_reward)):
        for wrap in (lambda body: f"<think>x</think> <answer>{body}</answer>", lambda body: body):
            times = []
            for size in (1_000, 10_000, 100_000):
                with watchdog(10):
                    times.append(best_time(score, wrap(make(size)), TRUTHS[task]))
            for small, big in zip(times, times[1:]):
                assert big <= 25 * small + 0.002, f"{task} on {name!r}: {times}"


def test_the_exponential_jigsaw_case_of_the_issue_is_fast():
    """135 characters took 15 s: two spaces between numbers split two ways, then a failing tail."""
    response = "<answer>" + "1  " * 45 + "x</answer>"
    with watchdog(5):
        for task in ("jigsaw", "ordering"):
            assert compute_score(f"ssl4rl/{task}", response, "1,2,3,4")["acc"] == 0.0


@pytest.mark.parametrize(
    "answer, parsed",
    [
        ("3,1,4,2", [3, 1, 4, 2]), ("[3, 1, 4, 2]", [3, 1, 4, 2]), ("(3;1;4;2).", [3, 1, 4, 2]), ("3  1\n4\t2", [3, 1, 4, 2]),
        ("3,,1,4,2", None), ("3,1,4,2,", None), (",3,1", None), ("3.1.4.2", None), ("1234", None), ("3, 1, four", None),
        ("²", None), ("", None), ("[]", None),
    ],
)  # fmt: skip
def test_jigsaw_parser_keeps_its_grammar(answer, parsed):
    assert TASKS["jigsaw"].parse(f"<answer>{answer}</answer>") == parsed


# ---------------------------------------------------------------- malformed rows and options
@pytest.mark.parametrize(
    "data_source, ground_truth, extra_info, field",
    [
        ("ssl4rl/rotation", "90", ["task", "rotation"], "extra_info"),
        ("ssl4rl/rotation", "90", "rotation", "extra_info"),
        ("ssl4rl/rotation", "90", {"task": ["rotation"]}, "extra_info.task"),
        ("ssl4rl/rotation", "ninety", None, "ground_truth"),
        ("ssl4rl/rotation", None, None, "ground_truth"),
        ("ssl4rl/jigsaw", "a,b,c,d", None, "ground_truth"),
        ("ssl4rl/jigsaw", "1" * 5000, None, "ground_truth"),
        ("ssl4rl/ordering", "2;4;x;3", None, "ground_truth"),
        ("ssl4rl/ordering", "1,1,1,1", None, "ground_truth"),
        ("ssl4rl/correspondence", "B", {"params": '{"candidates": 1e400}'}, "extra_info.params.candidates"),
        ("ssl4rl/inpainting", "B", {"params": {"candidates": "four"}}, "extra_info.params.candidates"),
        ("ssl4rl/similarity", "B", {"params": "{not json"}, "extra_info.params"),
        ("ssl4rl/flip", "B", {"params": 7}, "extra_info.params"),
        ("ssl4rl/inpainting", "E", {"params": {"candidates": 4}}, "ground_truth"),
    ],
)  # fmt: skip
def test_a_malformed_row_raises_one_value_error_naming_the_field(data_source, ground_truth, extra_info, field):
    with pytest.raises(ValueError) as raised:
        compute_score(data_source, "<answer>90</answer>", ground_truth, extra_info)
    assert type(raised.value) is ValueError
    message = str(raised.value)
    assert f" {field} " in message and repr(data_source) in message, message


@pytest.mark.parametrize("misspelt", ["jigsaw_scorng", "jigsaw_score", "format_weights", "curriculum_logs"])
def test_a_misspelt_reward_option_name_raises_and_verls_own_kwargs_pass(misspelt):
    with pytest.raises(ValueError, match="did you mean"):
        compute_score("ssl4rl/jigsaw", "<answer>1,2,3,4</answer>", "1,2,3,4", None, **{misspelt: "parity"})
    verl_kwargs = {"reward_router_address": None, "reward_model_tokenizer": None}
    assert compute_score("ssl4rl/jigsaw", "<answer>1,2,3,4</answer>", "1,2,3,4", None, **verl_kwargs)["acc"] == 1.0


@pytest.mark.parametrize(
    "options, name",
    [
        ({"jigsaw_scoring": "parity "}, "jigsaw_scoring"),
        ({"jigsaw_scoring": "permutations"}, "jigsaw_scoring"),
        ({"format_weight": "0.1"}, "format_weight"),
        ({"format_weight": 1.5}, "format_weight"),
        ({"curriculum_log": 3}, "curriculum_log"),
        ({"strict_format": "true"}, "strict_format"),
    ],
)  # fmt: skip
def test_a_bad_reward_option_raises_at_the_first_call_whatever_the_row(options, name):
    """Even on a rotation row (where jigsaw_scoring plays no part) and a right answer."""
    with pytest.raises(ValueError, match=name):
        compute_score("ssl4rl/rotation", "<answer>90</answer>", "90", None, **options)


def test_well_formed_rows_still_score_and_junk_responses_never_raise():
    for task, truth in TRUTHS.items():
        info = {"task": task, "params": '{"candidates": 4}' if truth == "B" else "{}"}
        assert compute_score(f"ssl4rl/{task}", f"<answer>{truth}</answer>", truth, info)["acc"] == 1.0
        for junk in (None, 3, b"<answer>1</answer>", "\x00" * 10, "<answer>" * 100):
            assert compute_score(f"ssl4rl/{task}", junk, truth, info)["acc"] == 0.0
    assert compute_score("ssl4rl/rotation", "<answer>90</answer>", 90)["acc"] == 1.0  # an integer truth is fine
