"""What a build's driver and its workers pass each other: the kinds of puzzle (Spec), one source
item with the puzzles to make from it (Job), what comes back (JobResult), and what every worker
process holds for the build (Worker). Plain records: they are pickled to processes and Ray tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Spec:
    """One kind of puzzle in a build: a task at a difficulty level, and its share of the items."""

    task: str
    difficulty: str  # easy | medium | hard | default
    options: tuple  # sorted (name, value) pairs: hashable, picklable
    weight: float = 1.0

    @property
    def key(self) -> str:
        return f"{self.task}/{self.difficulty}"


@dataclass
class Job:
    """One source item (an image, a graph node) and the puzzles to make from it."""

    split: str
    seq: int  # position among this split's items, for resume
    source_id: str
    data: bytes
    spec: str  # Spec.key: the puzzle made from this item
    samples: list[tuple[str, list[tuple[str, bytes]]]]  # (sample id, partner items)


@dataclass
class JobResult:
    split: str
    seq: int
    rows: list[dict]  # 'index' still unset; the writer numbers rows
    answers: list[str]
    skip: str | None = None
    tokens: list[int] = field(default_factory=list)  # each row's prompt length
    downscaled: int = 0  # 1 when the source was downscaled to fit the token budget
    shown: list[dict] = field(default_factory=list)  # what each row's prompt shows, when its modality tallies it


@dataclass
class Worker:
    """A worker process's state for one build, set up once (ssl4rl.build_worker.init_worker)."""

    tasks: dict  # Spec.key -> (task object, difficulty)
    templates: dict[str, str]
    seed: int
    source: str  # the source's name in every row
    budget: Any  # ssl4rl.budget.TokenBudget
    context: Any  # the modality's own: what `load_context` made of its `worker_context`
