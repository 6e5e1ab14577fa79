"""The shape every task declares, so a new task is one module (its options a dataclass with these
parts), its prompt configs/prompts/<name>.txt, and its tests; tests/test_tasks_shape.py holds every
task in TASKS to its modality's shape.

Options are the dataclass's fields (typed, with defaults): the CLI offers them as flags, the
manifest records them, DIFFICULTY presets some of them per level.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from ssl4rl.tasks.common import Puzzle


@runtime_checkable
class Task(Protocol):
    """What the builder, the reward and the CLI read of any task."""

    name: ClassVar[str]  # the CLI's and the rows' task name; configs/prompts/<name>.txt
    DIFFICULTY: ClassVar[dict[str, dict[str, Any]]]  # easy | medium | hard -> option presets
    partners: int  # other items of the split a puzzle draws on (0: none)

    def make(self, rng: np.random.Generator, item: Any, others: Any) -> Puzzle:
        """Sample the parameters first, render from them: the parameters are the label."""

    def parse(self, response: str) -> Any:
        """The answer in a response, or None."""

    def score(self, response: str, ground_truth: str, params: dict | None = None) -> float:
        """The verifier: 0.0 to 1.0, never raises."""


@runtime_checkable
class ImageTask(Task, Protocol):
    """`make(rng, image: SourceImage, others: list[SourceImage])`; sources smaller than
    `min_side` pixels are skipped before the puzzle is made."""

    min_side: int


@runtime_checkable
class GraphTask(Task, Protocol):
    """`make(rng, graph: Graph, node: int)`, text only. A row over the token budget is made again
    with fewer nodes (`max_nodes`, down to about two per focus node), then shorter texts
    (`text_chars`)."""

    modality: ClassVar[str]  # "graph"
    hops: int  # neighbourhood radius shown around the focus nodes
    max_nodes: int  # most nodes shown
    text_chars: int  # each node text is cut to this many characters
    FOCUS: ClassVar[tuple[str, ...]]  # the params naming the nodes the puzzle is about (the manifest's focus_shows_edge)
    focus_nodes: int  # nodes always shown, however small the budget
