"""Adaptive curriculum: keep each task's running accuracy inside a band (default 0.2-0.8) by
serving its puzzles one difficulty level harder or easier.

GRPO learns nothing from a prompt whose rollouts all succeed or all fail (zero advantage), so a
task whose accuracy leaves the band is moved: above `high` one level harder, below `low` one
level easier. Only outcomes at the task's current level count, so stale rollouts (prefetched or
still in flight at the old level) can never move it twice; after a move its window restarts.

Why an append-only log: in verl the outcomes are scored in reward workers (other processes, other
Ray actors) while prompts are chosen by the dataset in the trainer's dataloader (and its worker
processes); they share nothing but a filesystem. So the reward appends one JSON line per rollout,
`{"task", "level", "acc"}`, in one O_APPEND write (lines never interleave), and every reader folds
the log from its last offset through the same pure controller: readers that have read the same
prefix agree on every level, with no locks and no server; a resumed run replays the log; the log
is the record of the curriculum. (Across nodes the log must sit on a shared filesystem.)

verl: `data.custom_cls.path=pkg://ssl4rl.curriculum`, `data.custom_cls.name=CurriculumDataset`,
`+data.curriculum.{log,low,high,window,rollout_n}` and the reward kwarg `curriculum_log` (the same
path); `ssl4rl train --curriculum adaptive` sets them all. TRL: `AdaptiveRows` over the split, with
the same log, in process.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ssl4rl.schema import difficulty_of

LEVELS = ("easy", "medium", "hard")  # easiest first


class AdaptiveDifficulty:
    """The controller: a pure, deterministic fold over outcomes.

    >>> c = AdaptiveDifficulty(window=4)
    >>> for acc in (1, 1, 1, 1): c.observe("rotation", "easy", acc)
    >>> c.level("rotation"), c.level("jigsaw")
    ('medium', 'easy')
    >>> c.observe("rotation", "easy", 0.0)  # a stale outcome at the old level: ignored
    >>> c.state()["rotation"]
    {'level': 'medium', 'n': 0, 'acc': None, 'moves': 1}
    """

    def __init__(self, levels: Sequence[str] = LEVELS, low: float = 0.2, high: float = 0.8, window: int = 32, start: str = "easy"):
        self.levels = tuple(levels)
        if len(self.levels) < 2 or len(set(self.levels)) != len(self.levels):
            raise ValueError(f"an adaptive curriculum needs two or more distinct levels (got {list(self.levels)})")
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"the accuracy band must satisfy 0 <= low < high <= 1 (got {low}, {high})")
        if int(window) < 1:
            raise ValueError(f"the window must be at least 1 outcome (got {window})")
        if start not in self.levels:
            raise ValueError(f"start level {start!r} is not one of {list(self.levels)}")
        self.low, self.high, self.window, self.start = float(low), float(high), int(window), self.levels.index(start)
        self.reset()

    def reset(self) -> None:
        self._index: dict[str, int] = {}
        self._recent: dict[str, deque] = {}
        self._moves: dict[str, int] = {}

    def level(self, task: str) -> str:
        return self.levels[self._index.get(task, self.start)]

    def observe(self, task: str, level: str, acc: float) -> None:
        """Record one rollout's accuracy (0..1) on a puzzle of `task` at `level`."""
        if level != self.level(task):
            return
        recent = self._recent.setdefault(task, deque(maxlen=self.window))
        recent.append(min(1.0, max(0.0, float(acc))))
        if len(recent) < self.window:
            return
        mean = sum(recent) / len(recent)
        index = self._index.get(task, self.start)
        step = 1 if mean > self.high and index + 1 < len(self.levels) else -1 if mean < self.low and index > 0 else 0
        if step:
            self._index[task] = index + step
            self._moves[task] = self._moves.get(task, 0) + 1
            recent.clear()

    def state(self) -> dict[str, dict]:
        """Per task seen: its level, the outcomes in its window, their mean, and how often it moved."""
        out = {}
        for task in sorted(set(self._index) | set(self._recent)):
            recent = self._recent.get(task, ())
            out[task] = {
                "level": self.level(task),
                "n": len(recent),
                "acc": sum(recent) / len(recent) if recent else None,
                "moves": self._moves.get(task, 0),
            }
        return out


_LINES: dict[str, tuple[int, int]] = {}  # path -> (bytes counted, complete lines): counted once per process


def logged_lines(path: str | os.PathLike) -> int:
    """Complete lines in the log, counting only the bytes added since the last call."""
    key = os.path.abspath(path)
    offset, count = _LINES.get(key, (0, 0))
    try:
        size = os.path.getsize(key)
    except OSError:
        return 0
    if size < offset:  # a new run replaced the log
        offset, count = 0, 0
    with open(key, "rb") as log:
        log.seek(offset)
        data = log.read(size - offset)
    end = data.rfind(b"\n") + 1
    offset, count = offset + end, count + data[:end].count(b"\n")
    _LINES[key] = (offset, count)
    return count


def append_outcome(path: str | os.PathLike, task: str, level: str, acc: float, step: int | None = None, rollouts_per_step: int | None = None) -> None:
    """One JSON line, written with O_APPEND in one write call: concurrent writers never interleave.

    step: the training step the outcome belongs to; without it, `rollouts_per_step` (every step
    logs exactly that many training outcomes, as verl's reward does) derives it from the lines
    already logged: they all belong to earlier steps or to this one."""
    if step is None and rollouts_per_step:
        step = logged_lines(path) // int(rollouts_per_step) + 1
    record = {"task": str(task), "level": str(level), "acc": round(float(acc), 6)}
    if step is not None:
        record["step"] = int(step)
    line = json.dumps(record) + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except FileNotFoundError:  # the run's folder may not exist yet at the first rollout
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


class LogFollower:
    """Feeds a controller the log's new complete lines since the last read (a missing log is empty;
    a log that shrank is replayed from the start)."""

    def __init__(self, path: str | os.PathLike, controller: AdaptiveDifficulty):
        self.path, self.controller, self.offset, self.lines = Path(path), controller, 0, 0

    def refresh(self) -> AdaptiveDifficulty:
        try:
            size = self.path.stat().st_size
        except OSError:
            return self.controller
        if size < self.offset:
            self.controller.reset()
            self.offset = self.lines = 0
        if size == self.offset:
            return self.controller
        with open(self.path, "rb") as log:
            log.seek(self.offset)
            data = log.read(size - self.offset)
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next refresh
        for raw in data[:end].splitlines():
            try:
                record = json.loads(raw)
                self.controller.observe(record["task"], record["level"], record["acc"])
            except (ValueError, KeyError, TypeError):
                continue
            self.lines += 1
        self.offset += end
        return self.controller


SERVED: dict[str, str] = {}  # task -> the level the curriculum dataset last served it, in this process


def level_metrics(served: dict[str, str] | None = None) -> dict[str, float]:
    """`curriculum/<task>`: the level each task is served at (default: SERVED, what this
    process's curriculum dataset served for the current step), as its position in LEVELS
    (0 = easy, 1 = medium, 2 = hard), for verl's step line and TensorBoard.

    >>> level_metrics({"masking": "easy", "link": "medium", "rotation": "default"})
    {'curriculum/link': 1.0, 'curriculum/masking': 0.0}
    """
    served = SERVED if served is None else served
    return {f"curriculum/{task}": float(LEVELS.index(level)) for task, level in sorted(served.items()) if level in LEVELS}


class LevelIndex:
    """Rows by (task, level): maps a row index to a row of the same task at a chosen level.

    Row i, the k-th row of its task, becomes the (k mod n)-th of the n rows of that task at the
    level: deterministic, and a uniform index gives a uniform row of the level.

    >>> index = LevelIndex([("a", "easy"), ("a", "hard"), ("b", "easy"), ("a", "easy"), ("b", "hard")])
    >>> index.levels, [index.pick(i, "hard") for i in range(5)]
    (('easy', 'hard'), [1, 1, 4, 1, 4])
    """

    def __init__(self, keys: Sequence[tuple[str, str]]):
        self.task_of: list[str] = []
        self.rank: list[int] = []
        self.rows: dict[tuple[str, str], list[int]] = {}
        counts: dict[str, int] = {}
        for i, (task, level) in enumerate(keys):
            self.task_of.append(task)
            self.rank.append(counts.get(task, 0))
            counts[task] = self.rank[-1] + 1
            self.rows.setdefault((task, level), []).append(i)
        self.tasks = sorted(counts)
        # Levels every task has rows at: a task can never wait on a level it cannot be served.
        self.levels = tuple(level for level in LEVELS if all((task, level) in self.rows for task in self.tasks))
        if len(self.levels) < 2:
            found = sorted({level for _, level in self.rows})
            raise ValueError(
                f"an adaptive curriculum needs rows of every task at two or more of {', '.join(LEVELS)} "
                f"(found levels: {', '.join(found) or 'none'}); build with --difficulty easy,medium,hard"
            )

    def pick(self, i: int, level: str) -> int:
        rows = self.rows[(self.task_of[i], level)]
        return rows[self.rank[i] % len(rows)]


def default_window(rollouts_per_step: int, tasks: int) -> int:
    """One step's rollouts of a task: a window much smaller than a step fills many times per step,
    and one noisy window among them is enough to move the level."""
    return max(1, int(rollouts_per_step) // max(1, int(tasks)))


@dataclass
class CurriculumOptions:
    """`ssl4rl train --curriculum adaptive [--band LOW,HIGH] [--window N]`."""

    low: float = 0.2
    high: float = 0.8
    window: int | None = None  # None: one step's rollouts of a task (default_window)

    def __post_init__(self):
        AdaptiveDifficulty(low=self.low, high=self.high, window=1 if self.window is None else self.window)  # validates

    @staticmethod
    def parse_band(text: str) -> tuple[float, float]:
        """LOW,HIGH.

        >>> CurriculumOptions.parse_band("0.3,0.7")
        (0.3, 0.7)
        """
        try:
            low, high = (float(part) for part in text.split(","))
        except ValueError:
            raise ValueError(f"--band takes LOW,HIGH accuracies, e.g. 0.2,0.8 (got {text!r})") from None
        return low, high


def _keys(extra_infos) -> list[tuple[str, str]]:
    return [(str(e["task"]), str(difficulty_of(e))) for e in extra_infos]


class AdaptiveRows:
    """TRL: a map-style dataset over the split whose item i is a row of row i's task at the
    task's current level (read from the log before every item)."""

    def __init__(self, base, log_path: str | os.PathLike, low: float = 0.2, high: float = 0.8, window: int = 32):
        self.base = base
        infos = base.select_columns(["extra_info"])["extra_info"] if hasattr(base, "select_columns") else (row["extra_info"] for row in base)
        self.index = LevelIndex(_keys(infos))
        controller = AdaptiveDifficulty(self.index.levels, low, high, window, start=self.index.levels[0])
        self.follower = LogFollower(log_path, controller)

    def __len__(self) -> int:
        return len(self.base)

    def levels(self) -> dict[str, str]:
        controller = self.follower.refresh()
        return {task: controller.level(task) for task in self.index.tasks}

    def __getitem__(self, i: int):
        i = int(i)
        controller = self.follower.refresh()
        return self.base[self.index.pick(i, controller.level(self.index.task_of[i]))]


def _same_files(a, b) -> bool:
    def norm(files):
        if files is None:
            return None
        files = [files] if isinstance(files, str | os.PathLike) else list(files)
        return [os.path.abspath(os.path.expanduser(str(f))) for f in files]

    return norm(a) is not None and norm(a) == norm(b)


def _make_curriculum_dataset():
    from verl.utils.dataset.rl_dataset import RLHFDataset

    class CurriculumDataset(RLHFDataset):
        """verl's RLHFDataset whose training items follow the adaptive curriculum.

        Item i keeps row i's task and becomes a row of that task at the task's current level
        (LevelIndex.pick), read from `data.curriculum.log`. verl builds the validation set with
        the same class and config, so only the dataset of `data.train_files` adapts (the
        validation set is served unchanged). Options, under `data.curriculum`: log (required),
        low, high, window (default: train_batch_size * rollout_n / tasks, one step's rollouts of
        a task), rollout_n.
        """

        def __init__(self, data_files, tokenizer, config, processor=None, max_samples: int = -1):
            options = config.get("curriculum") or {}
            self.adaptive = _same_files(data_files, config.get("train_files"))
            self.curriculum_options = dict(options)
            self.level_index = self.follower = None
            if self.adaptive and not options.get("log"):
                raise ValueError("CurriculumDataset needs data.curriculum.log, the outcome log the reward writes (reward kwarg curriculum_log)")
            super().__init__(data_files, tokenizer, config, processor, max_samples)

        def _read_files_and_tokenize(self):
            super()._read_files_and_tokenize()
            if not self.adaptive:
                return
            options = self.curriculum_options
            self.level_index = LevelIndex(_keys(self.dataframe.select_columns(["extra_info"])["extra_info"]))
            window = options.get("window") or default_window(
                int(self.config.get("train_batch_size") or 1) * int(options.get("rollout_n") or 1), len(self.level_index.tasks)
            )
            levels = self.level_index.levels
            controller = AdaptiveDifficulty(levels, float(options.get("low", 0.2)), float(options.get("high", 0.8)), int(window), start=levels[0])
            self.follower = LogFollower(options["log"], controller)
            self._shown: dict[str, str] = {}
            band = f"band {controller.low}-{controller.high}, window {controller.window}"
            print(f"curriculum: {', '.join(self.level_index.tasks)} over levels {', '.join(levels)} ({band}; log {options['log']})")

        def __getitem__(self, item):
            if self.adaptive:
                controller = self.follower.refresh()
                task = self.level_index.task_of[int(item)]
                level = controller.level(task)
                if self._shown.setdefault(task, self.level_index.levels[0]) != level:  # the console shows each move once
                    print(f"curriculum: {task} {self._shown[task]} -> {level}")
                    self._shown[task] = level
                SERVED[task] = level  # the plugin logs it with the step's metrics
                item = self.level_index.pick(int(item), level)
            return super().__getitem__(item)

    CurriculumDataset.__module__ = __name__
    CurriculumDataset.__qualname__ = "CurriculumDataset"
    return CurriculumDataset


def __getattr__(name: str):
    """CurriculumDataset is built on first use, so this module imports without verl."""
    if name == "CurriculumDataset":
        cls = _make_curriculum_dataset()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
