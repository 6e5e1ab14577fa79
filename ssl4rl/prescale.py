"""The size a source must be shown at to fit the token budget, known before decoding it.

For tasks whose prompt text and largest image sizes follow from the source's size alone
(`prompt_vars()` and `sizes_at_most(width, height)`, e.g. position), the builder reads the
header, finds the largest scale at which even the largest puzzle fits, and decodes straight to
it: a JPEG at a reduced DCT scale (Pillow's `draft`, 1/2 to 1/8), then one Lanczos step from
there to the exact size. The puzzle is then made once, from the image it shows; nothing is
decoded at full size, resized twice or made again.
"""

from __future__ import annotations

import functools

from ssl4rl.budget import TokenBudget
from ssl4rl.errors import SkipItem


def predicts(task) -> bool:
    return hasattr(task, "sizes_at_most") and hasattr(task, "prompt_vars")


def fit_for(task, template: str, budget: TokenBudget):
    """The decoder's `fit` (ssl4rl.images.decode) for `task`: source size -> the size to show it
    at; None for a task whose sizes do not follow from the source's (it is fitted after the
    puzzle is made)."""
    return functools.partial(fitted_size, task, template, budget) if predicts(task) else None


def worst_tokens(task, text_tokens: int, budget: TokenBudget, width: int, height: int) -> int:
    return text_tokens + sum(budget.image_tokens(w, h) for w, h in task.sizes_at_most(width, height))


def fitted_size(task, template: str, budget: TokenBudget, size: tuple[int, int]) -> tuple[int, int] | None:
    """(width, height) to show a `size` source at, or None when it fits as it is. Raises
    SkipItem('over-token-budget') when the task's smallest source cannot fit either.

    Scales are searched on the grid of whole pixels (bisection on the scale; tokens only grow
    with the size), so the result is the largest size that fits, the same on every machine."""
    if budget.max_tokens <= 0:
        return None
    text = budget.text_tokens(template.format(**task.prompt_vars()))
    width, height = size
    if worst_tokens(task, text, budget, width, height) <= budget.max_tokens:
        return None
    low, high = 0.0, 1.0  # fits at low (0 stands for "nothing fits"), not at high
    for _ in range(40):
        middle = (low + high) / 2
        w, h = max(1, round(width * middle)), max(1, round(height * middle))
        if min(w, h) >= task.min_side and worst_tokens(task, text, budget, w, h) <= budget.max_tokens:
            low = middle
        else:
            high = middle
    w, h = max(1, round(width * low)), max(1, round(height * low))
    if low == 0.0 or min(w, h) < task.min_side:
        raise SkipItem("over-token-budget")
    return w, h
