"""Position fits the token budget from the source's header: one decode to the fitted size."""

from __future__ import annotations

import io

import pytest

from conftest import textured_image
from ssl4rl.budget import TokenBudget
from ssl4rl.errors import SkipItem
from ssl4rl.images import decode
from ssl4rl.prescale import fitted_size, worst_tokens
from ssl4rl.tasks.common import load_template
from ssl4rl.tasks.position import Position


@pytest.mark.parametrize("grid", [2, 3])
def test_fitted_size_is_the_largest_that_fits_even_the_largest_puzzle(grid):
    task, budget, template = Position(grid=grid), TokenBudget(1024), load_template("position")
    text = budget.text_tokens(template.format(**task.prompt_vars()))
    for size in [(1000, 750), (2400, 1800), (640, 4000), (1500, 300)]:
        w, h = fitted_size(task, template, budget, size)
        assert worst_tokens(task, text, budget, w, h) <= 1024
        step = (max(w, h) + 1) / max(size)  # one pixel more on the longer side: over the budget
        assert worst_tokens(task, text, budget, round(size[0] * step), round(size[1] * step)) > 1024
    assert fitted_size(task, template, budget, (300, 200)) is None  # fits as it is


def test_decoding_to_the_fitted_size_draws_puzzles_within_budget():
    task, budget, template = Position(), TokenBudget(1024), load_template("position")
    buffer = io.BytesIO()
    textured_image(0, 2400, 1600).save(buffer, "JPEG", quality=90)
    fit = lambda size: fitted_size(task, template, budget, size)  # noqa: E731
    source = decode(buffer.getvalue(), task.min_side, fit=fit)
    assert source.downscaled and not source.passthrough
    assert source.size == fit((2400, 1600))
    import numpy as np

    for seed in range(50):
        puzzle = task.make(np.random.default_rng(seed), source)
        sizes = [source.size if isinstance(image, bytes) else image.size for image in puzzle.images]
        assert budget.count(template.format(**puzzle.prompt_vars), sizes) <= 1024


def test_a_budget_nothing_fits_skips_from_the_header():
    task, template = Position(), load_template("position")
    with pytest.raises(SkipItem, match="over-token-budget"):
        fitted_size(task, template, TokenBudget(300), (1000, 800))
