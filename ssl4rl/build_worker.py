"""The worker half of a build: the rows of one source item, made by its modality
(ssl4rl.modalities). The local process pool (ssl4rl.build) and Ray tasks (ssl4rl.ray_build) run
the same functions: `init_worker` once per process, then `make_rows` per job.

Every random choice is seeded from (seed, task, sample id), so a job's rows depend only on the
job: the output bytes are the same for any number of workers or nodes.
"""

from __future__ import annotations

import signal

from ssl4rl.build_jobs import Job, JobResult, Spec, Worker
from ssl4rl.modalities import MODALITIES
from ssl4rl.tasks import TASKS

_worker: dict = {}  # this process's Worker and its modality


def init_worker(specs: list[Spec], templates: dict[str, str], seed: int, source_name: str, budget, modality: str, context) -> None:
    """Per worker process: the task objects, and what the modality loads once (the graph, ...)."""
    module = MODALITIES[modality]
    tasks = {spec.key: (TASKS[spec.task](**dict(spec.options)), spec.difficulty) for spec in specs}
    _worker.update(
        state=Worker(tasks, templates, seed, source_name, budget, module.load_context(context)),
        modality=module,
        mixed=len({spec.task for spec in specs}) > 1,  # answer histograms then key on task:answer
    )


def init_pool_worker(*initargs) -> None:
    """Ctrl-C reaches the whole process group: only the main process handles it (and terminates
    the pool). A worker interrupted while holding the task queue's lock would hang the pool's
    shutdown and print its own traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    init_worker(*initargs)


def make_rows(job: Job) -> JobResult:
    task, difficulty = _worker["state"].tasks[job.spec]
    result = _worker["modality"].make_rows(job, task, difficulty, _worker["state"])
    if _worker["mixed"]:
        result.answers = [f"{task.name}:{answer}" for answer in result.answers]
    return result
