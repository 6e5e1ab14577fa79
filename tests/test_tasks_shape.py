"""Every task has its modality's declared shape (ssl4rl.tasks.shape): typed options, level presets
of declared options, a prompt, and the parts the builder and the reward read."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from importlib import resources

import pytest

from ssl4rl.modalities import MODALITIES
from ssl4rl.tasks import TASKS, task_modality
from ssl4rl.tasks.shape import GraphTask, ImageTask

SHAPES = {"image": ImageTask, "graph": GraphTask}


@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_has_its_modalitys_shape(name):
    task = TASKS[name]()
    assert task_modality(name) in MODALITIES and set(SHAPES) == set(MODALITIES)
    assert isinstance(task, SHAPES[task_modality(name)]) and is_dataclass(task) and task.name == name
    assert hasattr(task, "min_side") == (task_modality(name) == "image")  # source pixels: an image task's concern only
    options = {option.name: option.type for option in fields(task)}
    assert all(options.values())  # every option is typed
    assert set(task.DIFFICULTY) <= {"easy", "medium", "hard"}
    assert all(set(preset) <= set(options) for preset in task.DIFFICULTY.values())  # presets set declared options
    assert (resources.files("ssl4rl.configs") / "prompts" / f"{name}.txt").is_file()


def test_a_task_without_the_budget_options_is_not_a_graph_task():
    class Partial:
        name, DIFFICULTY, partners, modality, hops, max_nodes, FOCUS, focus_nodes = "x", {}, 0, "graph", 1, 8, ("u",), 1

        def make(self, rng, item, others): ...
        def parse(self, response): ...
        def score(self, response, ground_truth, params=None): ...

    assert not isinstance(Partial(), GraphTask)
    Partial.text_chars = 100
    assert isinstance(Partial(), GraphTask)
