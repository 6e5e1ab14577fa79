"""The puzzles. Each module holds one task: its options, generator, prompt variables and verifier.

Image tasks make a puzzle from a source image; graph tasks (`modality = "graph"`) from a node of
a graph source (ssl4rl.sources.graph_source). ssl4rl.tasks.shape declares what a task has.
"""

from ssl4rl.tasks.contrastive import Contrastive
from ssl4rl.tasks.correspondence import Correspondence
from ssl4rl.tasks.flip import Flip
from ssl4rl.tasks.inpainting import Inpainting
from ssl4rl.tasks.jigsaw import Jigsaw
from ssl4rl.tasks.kg_link import KGLink
from ssl4rl.tasks.link import Link
from ssl4rl.tasks.masking import Masking
from ssl4rl.tasks.neighbour import Neighbour
from ssl4rl.tasks.ordering import Ordering
from ssl4rl.tasks.position import Position
from ssl4rl.tasks.rotation import Rotation
from ssl4rl.tasks.similarity import Similarity

# SSL4RL's four puzzles, then SSL-R1's suite (and Spatial-SSRL's flip recognition), then the
# paper's graph extension.
TASKS = {
    task.name: task
    for task in (Rotation, Jigsaw, Position, Contrastive, Inpainting, Similarity, Ordering, Correspondence, Flip, Masking, Neighbour, Link, KGLink)
}


def task_modality(name: str) -> str:
    """A task's modality (ssl4rl.modalities): what it declares, else image."""
    return getattr(TASKS[name], "modality", "image")


GRAPH_TASKS = [name for name in TASKS if task_modality(name) == "graph"]
IMAGE_TASKS = {name: task for name, task in TASKS.items() if name not in GRAPH_TASKS}


def is_graph_task(name: str) -> bool:
    return name in GRAPH_TASKS


__all__ = [
    "TASKS", "GRAPH_TASKS", "IMAGE_TASKS", "is_graph_task", "task_modality", "Rotation", "Jigsaw", "Position", "Contrastive", "Inpainting", "Similarity",
    "Ordering", "Correspondence", "Flip", "Masking", "Neighbour", "Link", "KGLink",
]  # fmt: skip
