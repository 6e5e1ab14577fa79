"""Tasks whose image sizes follow from the source's size fit the token budget from its header:
one decode to the fitted size, one puzzle."""

from __future__ import annotations

import io

import numpy as np
import pytest

from conftest import textured_image
from ssl4rl.budget import TokenBudget
from ssl4rl.errors import SkipItem
from ssl4rl.images import SourceImage, decode
from ssl4rl.prescale import fitted_size, predicts, worst_tokens
from ssl4rl.tasks import TASKS
from ssl4rl.tasks.common import load_template
from ssl4rl.tasks.jigsaw import Jigsaw
from ssl4rl.tasks.position import Position
from ssl4rl.tasks.rotation import Rotation

PREDICTING = [Position(grid=2), Position(grid=3), Rotation(), Rotation(granularity=45), Rotation(granularity=45, square=False), Rotation(square=False), Jigsaw(), Jigsaw(grid=3), Jigsaw(grid=4, gap=0.1)]
SIZES = [(1000, 750), (2400, 1800), (640, 4000), (1500, 300)]


def tokens_of(template, budget, puzzle, source) -> int:
    sizes = [source.size if isinstance(image, bytes) else image.size for image in puzzle.images]
    return budget.count(template.format(**puzzle.prompt_vars), sizes)


@pytest.mark.parametrize("task", PREDICTING, ids=repr)
def test_the_predicted_sizes_bound_every_puzzle_and_the_prompt_is_the_one_predicted(task):
    budget, template = TokenBudget(1024), load_template(task.name)
    text = budget.text_tokens(template.format(**task.prompt_vars()))
    for width, height in [(1000, 750), (640, 400), (333, 517), (900, 200)]:
        source = SourceImage(textured_image(width, width, height), b"", False, "s")
        bound = worst_tokens(task, text, budget, width, height)
        for seed in range(8):
            puzzle = task.make(np.random.default_rng(seed), source)
            assert puzzle.prompt_vars == task.prompt_vars()
            assert tokens_of(template, budget, puzzle, source) <= bound


@pytest.mark.parametrize("task", PREDICTING, ids=repr)
def test_fitted_size_is_the_largest_that_fits_even_the_largest_puzzle(task):
    budget, template = TokenBudget(1024), load_template(task.name)
    text = budget.text_tokens(template.format(**task.prompt_vars()))
    for size in SIZES:
        if fitted_size(task, template, budget, size) is None:  # fits as it is (a square crop of a strip)
            assert worst_tokens(task, text, budget, *size) <= 1024
            continue
        w, h = fitted_size(task, template, budget, size)
        assert worst_tokens(task, text, budget, w, h) <= 1024
        step = (max(w, h) + 1) / max(size)  # one pixel more on the longer side: over the budget
        assert worst_tokens(task, text, budget, round(size[0] * step), round(size[1] * step)) > 1024
    assert fitted_size(task, template, budget, (300, 200)) is None  # fits as it is


@pytest.mark.parametrize("task", PREDICTING, ids=repr)
def test_decoding_to_the_fitted_size_draws_puzzles_within_budget(task):
    budget, template = TokenBudget(1024), load_template(task.name)
    buffer = io.BytesIO()
    textured_image(0, 2400, 1600).save(buffer, "JPEG", quality=90)
    fit = lambda size: fitted_size(task, template, budget, size)  # noqa: E731
    source = decode(buffer.getvalue(), task.min_side, fit=fit)
    assert source.downscaled and not source.passthrough
    assert source.size == fit((2400, 1600))
    for seed in range(50):
        assert tokens_of(template, budget, task.make(np.random.default_rng(seed), source), source) <= 1024


def test_the_tasks_that_fit_from_the_header_are_the_ones_whose_sizes_follow_from_it():
    assert sorted(name for name, task in TASKS.items() if predicts(task())) == ["jigsaw", "position", "rotation"]


def test_a_budget_nothing_fits_skips_from_the_header():
    task, template = Position(), load_template("position")
    with pytest.raises(SkipItem, match="over-token-budget"):
        fitted_size(task, template, TokenBudget(300), (1000, 800))
