"""Modalities: what kind of item a build's source yields, and everything that depends on it.

ssl4rl.build knows items, tasks, shards, seeds, resume and the manifest; a modality module knows
its items and reads its own settings of the build (ssl4rl.build_config). Each has the same parts,
used by the build's driver (D) and its workers (W):

    TEXT_ESTIMATE                   D  count prompt text by the calibrated estimate (else the byte bound)
    open_reader(cfg, specs)         D  the source's reader: (source id, payload) items, or skips
    item_count(reader)              D  items in the source when cheap to count (the progress bar), else None
    check_task(task, template)      D  a task's options and prompt tried on a synthetic item (UserError)
    worker_context(cfg, reader)     D  what workers need besides the tasks (picklable)
    load_context(context)           W  what a worker holds of it (the loaded graph, ...)
    make_rows(job, task, difficulty, worker)   W  an item's rows within the token budget, or its skip
    fill_rows(rows, data)           D  puts back the item's bytes that a worker left out of its rows
    tally(tallies, shown)           D  counts one kept row's `JobResult.shown` record
    summary(tallies)                D  the manifest's extra keys, from each split's tallies

A task names its modality (`modality = "graph"`; image when it names none). A new modality is one
module here with these parts, and one entry in MODALITIES.
"""

from __future__ import annotations

from ssl4rl.errors import UserError
from ssl4rl.modalities import graph, image
from ssl4rl.tasks import task_modality

MODALITIES = {"image": image, "graph": graph}


def modality_of(task_names):
    """The one modality of a build's tasks: a build reads one source, so it cannot mix them."""
    names = {task_modality(name) for name in task_names}
    if len(names) > 1:
        raise UserError("a mix cannot hold both graph and image tasks: they read different sources")
    return MODALITIES[names.pop()]
