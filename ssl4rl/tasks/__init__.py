"""The puzzles. Each module holds one task: its options, generator, prompt variables and verifier."""

from ssl4rl.tasks.contrastive import Contrastive
from ssl4rl.tasks.jigsaw import Jigsaw
from ssl4rl.tasks.position import Position
from ssl4rl.tasks.rotation import Rotation

TASKS = {task.name: task for task in (Rotation, Jigsaw, Position, Contrastive)}

__all__ = ["TASKS", "Rotation", "Jigsaw", "Position", "Contrastive"]
