"""The reward: one entry point for verl's custom reward hook and for TRL.

verl calls `compute_score(data_source, solution_str, ground_truth, extra_info, **reward_kwargs)`
(`reward.custom_reward_function.path=pkg://ssl4rl.reward`, `.name=compute_score`); options come
from `reward.custom_reward_function.reward_kwargs`. The returned dict's `score` is the reward;
every other key reaches verl's logs as reward extra info (`acc`, `format`, `task`).

>>> compute_score("ssl4rl/rotation", "<think>upside down</think> <answer>180°</answer>", "180")
{'score': 1.0, 'acc': 1.0, 'format': 1.0, 'task': 'rotation'}
>>> compute_score("ssl4rl/jigsaw", "<answer>3,1,2,4</answer>", "3,1,4,2")["score"]
0.5
>>> compute_score("ssl4rl/position", "top-left", "top-left", format_weight=0.1)["score"]
0.0
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import re
import warnings
from typing import Iterable

from ssl4rl.curriculum import append_outcome
from ssl4rl.schema import DATA_SOURCE_PREFIX, difficulty_of
from ssl4rl.tasks import TASKS
from ssl4rl.tasks.common import MAX_CANDIDATES, count_from

_THINK_THEN_ANSWER = re.compile(r"</think>\s*<answer>", re.IGNORECASE)


def format_ok(response: str) -> float:
    r"""1.0 when the whole response is `<think>...</think> <answer>...</answer>` (linear time).

    >>> format_ok("<think>a</think>\n<answer>b</answer>"), format_ok("<answer>b</answer>")
    (1.0, 0.0)
    """
    if not isinstance(response, str):
        return 0.0
    text = response.strip().lower()
    ok = text.startswith("<think>") and text.endswith("</answer>") and _THINK_THEN_ANSWER.search(text) is not None
    return float(ok)


def task_of(data_source: str, extra_info: dict | None) -> str:
    """The task recorded in the row: extra_info['task'], else the data_source suffix."""
    task = _info(data_source, extra_info).get("task") or str(data_source).removeprefix(DATA_SOURCE_PREFIX)
    if not isinstance(task, str):
        raise _row_error(data_source, f"extra_info.task must be a task name, not {task!r}")
    if task not in TASKS:
        raise ValueError(f"ssl4rl reward: unknown task {task!r} (data_source {data_source!r}); tasks: {', '.join(TASKS)}")
    return task


def _row_error(data_source: object, problem: str) -> ValueError:
    return ValueError(f"ssl4rl reward: malformed row (data_source {data_source!r}): {problem}")


def _info(data_source: object, extra_info: object) -> dict:
    if extra_info is None:
        return {}
    if not isinstance(extra_info, dict):
        raise _row_error(data_source, f"extra_info must be a dict, not {type(extra_info).__name__}")
    return extra_info


def _params(data_source: object, extra_info: dict | None) -> dict:
    raw = _info(data_source, extra_info).get("params")
    if raw is None or raw == "":
        return {}
    params = raw if isinstance(raw, dict) else _parse_params(raw) if isinstance(raw, str) else None
    if params is None:
        raise _row_error(data_source, f"extra_info.params must be a JSON object, not {str(raw)[:80]!r}")
    if "candidates" in params and count_from(params, default=0) != params["candidates"]:
        raise _row_error(data_source, f"extra_info.params.candidates must be an integer from 2 to {MAX_CANDIDATES}, not {params['candidates']!r}")
    return params


@functools.lru_cache(maxsize=4096)
def _parse_params(raw: str) -> dict | None:
    """Rows of one task mostly share their params text: parse each text once (read-only)."""
    try:
        params = json.loads(raw)
    except ValueError:
        return None
    return params if isinstance(params, dict) else None


@functools.lru_cache(maxsize=65536)
def _truth_is_valid(task: str, ground_truth: str, count: int) -> bool:
    """A ground truth is well formed when the task's verifier gives it full marks as an answer."""
    try:
        return TASKS[task].score(f"<answer>{ground_truth}</answer>", ground_truth, {"candidates": count} if count else {}) == 1.0
    except Exception:  # noqa: BLE001 - any failure means the truth is not one the verifier reads
        return False


SCORING = ("permutation", "parity")


OPTIONS = ("format_weight", "strict_format", "jigsaw_scoring", "curriculum_log", "curriculum_step_rollouts")


@functools.lru_cache(maxsize=256)
def _misspelt_option(name: str) -> str | None:
    close = difflib.get_close_matches(name, OPTIONS, n=1, cutoff=0.8)
    return close[0] if close else None


def check_options(format_weight: object, jigsaw_scoring: object, curriculum_log: object, others: Iterable[str] = (), strict_format: object = False) -> None:
    """Reward kwargs fail on the first call: a misspelt value must not silently change the reward.

    Other names pass (verl adds its own, e.g. reward_router_address), unless they look like a
    misspelling of ours.
    """
    for name in others:
        close = _misspelt_option(name)
        if close:
            raise ValueError(f"ssl4rl reward: unknown option {name!r}; did you mean {close!r}?")
    if jigsaw_scoring not in SCORING:
        raise ValueError(f"ssl4rl reward: jigsaw_scoring must be one of {', '.join(SCORING)} (got {jigsaw_scoring!r})")
    if isinstance(format_weight, bool) or not isinstance(format_weight, (int, float)) or not 0.0 <= format_weight <= 1.0:
        raise ValueError(f"ssl4rl reward: format_weight must be a number from 0 to 1 (got {format_weight!r})")
    if not isinstance(strict_format, bool):
        raise ValueError(f"ssl4rl reward: strict_format must be true or false (got {strict_format!r})")
    if curriculum_log is not None and not isinstance(curriculum_log, (str, os.PathLike)):
        raise ValueError(f"ssl4rl reward: curriculum_log must be a path (got {curriculum_log!r})")


_FIRST_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def jigsaw_parity_score(response: str, ground_truth: str) -> float:
    """The SSL4RL reference's jigsaw parser and scoring (PKU-ML/SSL4RL,
    verl/utils/reward_score/jigsaw.py), for reproducing its numbers: the text after the last
    `assistant\n`, its *first* `<answer>...</answer>` block (case-sensitive tags), split on
    commas; each grid position earns 1/K² when both its items read with `int()` are equal (an
    item that is not an integer earns nothing at its position only); no permutation check,
    extra items ignored. The credit is summed in the same order, so the floats are identical.

    >>> [jigsaw_parity_score(r, "3,1,4,2") for r in ("<answer>3,1,1,1</answer>", "<answer>[3,1,4,2]</answer>", "<answer>3,1</answer><answer>3,1,4,2</answer>")]
    [0.5, 0.5, 0.5]
    """
    marker = response.rfind("assistant\n")
    text = response[marker + len("assistant\n") :] if marker != -1 else response
    match = _FIRST_ANSWER.search(text.strip())
    if match is None:
        return 0.0
    truth, answer = ground_truth.split(","), match.group(1).strip().split(",")
    score = 0.0
    for i in range(len(truth)):
        try:
            if i < len(answer) and int(truth[i]) == int(answer[i]):
                score += 1.0 / len(truth)
        except ValueError:
            pass
    return score


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: dict | None = None,
    format_weight: float = 0.0,
    jigsaw_scoring: str = "permutation",
    strict_format: bool = False,
    curriculum_log: str | None = None,
    curriculum_step_rollouts: int | None = None,
    curriculum_step: int | None = None,
    **others: object,
) -> dict:
    """score = (1 - format_weight) * acc + format_weight * format. Never raises on a response;
    raises ValueError naming the field on malformed row data or reward options.

    jigsaw_scoring: 'permutation' (partial credit only for a valid permutation of 1..K*K) or
    'parity' (the reference's per-position scoring).
    strict_format: a response that is not exactly `<think>...</think> <answer>...</answer>`
    scores 0, whatever its answer block says (`acc` still reports the verifier's reading). The
    lenient reading pays a response cut at the length limit whose last complete block is right
    (`<answer>90</answer>0</`), so a policy that stops ending its answers drifts unpunished until
    greedy decoding no longer parses (seen on the tiny model: training reward 0.78, held-out 0).
    curriculum_log: the adaptive curriculum's outcome log (ssl4rl.curriculum): each training
    row's outcome (task, extra_info.difficulty, acc) is appended to it; validation rows
    (extra_info.split 'test') are not. Each line carries its training step: `curriculum_step`
    (TRL knows it), else derived from `curriculum_step_rollouts`, the training outcomes of one
    step (verl: train batch x rollout.n; the launcher sets it).

    >>> compute_score("ssl4rl/rotation", "<think></think><answer>90</answer>0</", "90", strict_format=True)
    {'score': 0.0, 'acc': 1.0, 'format': 0.0, 'task': 'rotation'}
    """
    check_options(format_weight, jigsaw_scoring, curriculum_log, others, strict_format)
    if curriculum_step_rollouts is not None and (isinstance(curriculum_step_rollouts, bool) or not isinstance(curriculum_step_rollouts, int) or curriculum_step_rollouts < 1):
        raise ValueError(f"ssl4rl reward: curriculum_step_rollouts must be a positive integer (got {curriculum_step_rollouts!r})")
    task = task_of(data_source, extra_info)
    params = _params(data_source, extra_info)
    if not isinstance(ground_truth, (str, int)) or not _truth_is_valid(task, str(ground_truth), count_from(params, default=0)):
        raise _row_error(data_source, f"ground_truth {str(ground_truth)[:80]!r} is not a valid {task} answer")
    response = solution_str if isinstance(solution_str, str) else ""
    if task == "jigsaw" and jigsaw_scoring == "parity":
        acc = jigsaw_parity_score(response, str(ground_truth))
    else:
        acc = TASKS[task].score(response, str(ground_truth), params)
    fmt = format_ok(response)
    weight = float(format_weight)
    if curriculum_log:
        _record(curriculum_log, task, extra_info, acc, curriculum_step, curriculum_step_rollouts)
    score = 0.0 if strict_format and not fmt else (1.0 - weight) * acc + weight * fmt
    return {"score": score, "acc": float(acc), "format": fmt, "task": task}


TWO_ANSWERS = ("contrastive", "link")  # positive/negative, yes/no
PERMUTATIONS = ("jigsaw", "ordering")


def chance(data_source: str, ground_truth: str, extra_info: dict | None = None) -> float:
    """The expected score (acc) of a uniform random valid answer under the verifier: a
    permutation's per-position credit makes it 1/n for an n-tile puzzle (any permutation puts
    the right tile at each position with probability 1/n), whatever answers a build contains.
    Shared by `eval --puzzles`, `ssl4rl audit` and `ssl4rl report`."""
    task = task_of(data_source, extra_info)
    params = _params(data_source, extra_info)
    if task in PERMUTATIONS:
        return 1.0 / len(str(ground_truth).split(","))
    if task in TWO_ANSWERS:
        return 0.5
    if task == "rotation":
        return float(params.get("granularity", 90)) / 360.0
    if task == "position":
        return 1.0 / int(params.get("grid", 2)) ** 2
    if task == "flip" and isinstance(params.get("boxes"), list) and params["boxes"]:
        return 1.0 / min(len(params["boxes"]), MAX_CANDIDATES)
    return 1.0 / count_from(params, default=4)


def _record(path: str, task: str, extra_info: dict | None, acc: float, step: int | None = None, rollouts_per_step: int | None = None) -> None:
    """Append the outcome to the curriculum log; a failed write loses one outcome, never the step."""
    info = extra_info or {}
    if info.get("split", "train") != "train":
        return
    try:
        append_outcome(path, task, difficulty_of(info), acc, step, rollouts_per_step)
    except Exception as error:  # noqa: BLE001 - the reward must not raise over bookkeeping
        if path not in _LOG_ERRORS:
            _LOG_ERRORS.add(path)
            warnings.warn(f"ssl4rl reward: cannot append to the curriculum log {path}: {error}", stacklevel=2)


_LOG_ERRORS: set[str] = set()
