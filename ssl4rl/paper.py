"""The SSL4RL paper's datasets: the four puzzles with the paper's settings, from one source.

Rotation in {0, 90, 180, 270}; jigsaw 2x2; position among four quadrants; contrastive with the
default SimCLR augmentation. Each task gets its own folder under `out/<preset>/<task>`.
"""

from __future__ import annotations

from pathlib import Path

from ssl4rl.build import BuildConfig, build

PAPER_TASKS = {
    "rotation": {"granularity": 90},
    "jigsaw": {"grid": 2},
    "position": {"grid": 2},
    "contrastive": {"preset": "default"},
}


def build_paper_datasets(preset: str, data: str, out_root: str = "datasets", workers: int = 2, tasks=None, **build_args) -> dict:
    """Build every paper task from one source; returns {task: manifest}."""
    manifests = {}
    for task in tasks or PAPER_TASKS:
        cfg = BuildConfig(task=task, source=preset, data=data, out=str(Path(out_root) / preset / task), options=PAPER_TASKS[task], **build_args)
        manifests[task] = build(cfg, workers=workers)
        rows = manifests[task]["rows"]
        print(f"{cfg.out}: {rows['train']} train + {rows['test']} test rows")
    return manifests
