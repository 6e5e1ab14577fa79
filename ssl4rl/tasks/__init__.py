"""The puzzles. Each module holds one task: its options, generator, prompt variables and verifier."""

from ssl4rl.tasks.contrastive import Contrastive
from ssl4rl.tasks.correspondence import Correspondence
from ssl4rl.tasks.flip import Flip
from ssl4rl.tasks.inpainting import Inpainting
from ssl4rl.tasks.jigsaw import Jigsaw
from ssl4rl.tasks.ordering import Ordering
from ssl4rl.tasks.position import Position
from ssl4rl.tasks.rotation import Rotation
from ssl4rl.tasks.similarity import Similarity

# SSL4RL's four puzzles, then SSL-R1's suite (and Spatial-SSRL's flip recognition).
TASKS = {
    task.name: task
    for task in (Rotation, Jigsaw, Position, Contrastive, Inpainting, Similarity, Ordering, Correspondence, Flip)
}

__all__ = ["TASKS", "Rotation", "Jigsaw", "Position", "Contrastive", "Inpainting", "Similarity", "Ordering", "Correspondence", "Flip"]
