"""Images as a modality: source images (any reader of ssl4rl.sources) become vision puzzles.

An item is an encoded image. A worker decodes it (straight to the size that fits the token
budget when the task can tell, ssl4rl.prescale), makes its puzzles with partner images from the
same split, and shrinks the source when a row is over the budget. Skips: the reader's (too
large, unreadable, ...), the decoder's and the task's own.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from PIL import Image

from ssl4rl.build_jobs import Job, JobResult, Worker
from ssl4rl.errors import SkipItem, UserError
from ssl4rl.images import SourceImage, decode, encode
from ssl4rl.prescale import fit_for
from ssl4rl.schema import ABILITY, content_key, make_row
from ssl4rl.sources import open_source
from ssl4rl.sources.hf import parquet_rows
from ssl4rl.tasks.common import IMAGE_PLACEHOLDER, rng_for
from ssl4rl.tasks.shape import ImageTask

TEXT_ESTIMATE = False  # without a processor, text is counted by its upper bound (UTF-8 bytes)


def open_reader(cfg, specs) -> object:
    """The source's reader: `cfg.source` (samples, shapes, a preset with `cfg.data`, a path)."""
    return open_source(cfg.source, cfg.data, cfg.image_columns, cfg.max_file_bytes)


def item_count(reader) -> int | None:
    """Source entries, when cheap to count (files of a folder, parquet row counts, TSV lines);
    local files and files behind a URI alike (ssl4rl.sources.remote)."""
    if reader.kind in ("folder", "samples"):
        return len(reader.files)
    if reader.kind == "shapes":
        return len(reader)
    if reader.kind == "hf":
        return sum(parquet_rows(f) for f in reader.files) * len(reader.image_columns)
    if reader.kind == "tsv":
        with reader.path.open("rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 24), b"")) - 1
    return None


def check_task(task: ImageTask, template: str) -> None:
    """The task's options and prompt template, tried on a synthetic image."""
    probe = decode(_probe_png(max(256, task.min_side)), source_id="probe")
    try:
        puzzle = task.make(rng_for(0, "probe"), probe, [probe] * max(1, task.partners))
        prompt = template.format(**puzzle.prompt_vars)
    except (KeyError, IndexError, ValueError) as error:
        raise UserError(f"prompt template for '{task.name}' does not fit the puzzle: {error!r}") from None
    _check_markers(task, prompt, puzzle)


def _check_markers(task, prompt: str, puzzle) -> None:
    if prompt.count(IMAGE_PLACEHOLDER) != len(puzzle.images):
        raise UserError(
            f"prompt template for '{task.name}' has {prompt.count(IMAGE_PLACEHOLDER)} {IMAGE_PLACEHOLDER} markers "
            f"but the puzzle shows {len(puzzle.images)} images"
        )


def _probe_png(side: int) -> bytes:
    noise = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return encode(Image.fromarray(noise))


def worker_context(cfg, reader) -> dict:
    """What every worker needs besides the tasks: the output format and the decoder's pixel limit."""
    return {"image_format": cfg.image_format, "max_pixels": cfg.max_pixels}


def load_context(context: dict) -> dict:
    return context


def make_rows(job: Job, task: ImageTask, difficulty: str, worker: Worker) -> JobResult:
    """The rows of one source image (answers as the puzzles give them)."""
    # Tasks that can tell their largest images from the source's size are decoded straight to
    # the size that fits the token budget (ssl4rl.prescale): one decode, one resize, one puzzle.
    max_pixels = worker.context["max_pixels"]
    fit = fit_for(task, worker.templates[task.name], worker.budget)
    try:
        source = decode(job.data, task.min_side, job.source_id, max_pixels, fit=fit)
    except SkipItem as skip:
        return JobResult(job.split, job.seq, [], [], skip.reason)
    rows, answers, lengths, downscaled = [], [], [], int(source.downscaled)
    source_hash = content_key(job.data).hex()  # the key the split was decided by
    for sample_id, partner_data in job.samples:
        others = []
        for partner_id, data in partner_data:
            try:
                others.append(decode(data, 1, partner_id, max_pixels))
            except SkipItem:
                pass
        try:
            puzzle, prompt, shown, tokens = make_within_budget(task, sample_id, source, others, worker)
        except SkipItem as skip:
            return JobResult(job.split, job.seq, [], [], skip.reason)
        downscaled = max(downscaled, int(shown is not source))
        lengths.append(tokens)
        rows.append(
            make_row(
                task=task.name,
                prompt=prompt,
                # A source shown untouched is not sent back: the main process still has its bytes.
                images=[b"" if image is source.data else encode(image, worker.context["image_format"]) for image in puzzle.images],
                answer=puzzle.answer,
                source=worker.source,
                source_id=sample_id,
                split=job.split,
                index=-1,
                params=puzzle.params,
                difficulty=difficulty,
                source_hash=source_hash,
                ability=ABILITY,
            )
        )
        answers.append(puzzle.answer)
    return JobResult(job.split, job.seq, rows, answers, tokens=lengths, downscaled=downscaled)


def make_within_budget(task: ImageTask, sample_id: str, source: SourceImage, others: list, worker: Worker) -> tuple:
    """(puzzle, prompt, the source it was made from, prompt tokens) within the token budget.

    When the row is over, the puzzle is made again, with the same rng seed, from the source
    resized once from its original pixels (Lanczos) by the factor that should bring its image
    tokens under what the text leaves (tasks whose views have a fixed `size` get views smaller
    by the same factor); rounding to the patch grid can need a second, smaller try.
    Truth holds by construction: the smaller image simply is the source. Raises
    SkipItem('over-token-budget') when even the task's smallest image cannot fit.
    """
    budget, template = worker.budget, worker.templates[task.name]
    shown, scale, made_by = source, 1.0, task
    for _ in range(6):
        puzzle = made_by.make(rng_for(worker.seed, task.name, sample_id), shown, others)
        prompt = template.format(**puzzle.prompt_vars)
        _check_markers(task, prompt, puzzle)
        sizes = [shown.size if isinstance(image, bytes) else image.size for image in puzzle.images]
        tokens = budget.count(prompt, sizes)
        if budget.fits(tokens):
            return puzzle, prompt, shown, tokens
        text = budget.text_tokens(prompt)
        room, pictures = budget.max_tokens - text, tokens - text
        if room <= len(sizes) * 3:  # not even one visual token per image
            break
        scale *= min(0.95, 0.98 * math.sqrt(room / pictures))
        width, height = (max(1, round(side * scale)) for side in source.size)
        if min(width, height) < task.min_side:
            break
        shown = SourceImage(source.pixels.resize((width, height), Image.Resampling.LANCZOS), source.data, False, source.source_id)
        if isinstance(getattr(task, "size", None), int):  # views of a fixed side (contrastive, similarity, ...)
            made_by = replace(task, size=max(28, round(task.size * scale)))
    raise SkipItem("over-token-budget")


def fill_rows(rows: list[dict], data: bytes) -> None:
    """Puts the source's bytes back where a row shows it untouched (workers leave them out)."""
    for row in rows:
        for image in row["images"]:
            image["bytes"] = image["bytes"] or data


def tally(tallies: dict, shown: dict) -> None:
    """Image rows report nothing of what they show (JobResult.shown stays empty)."""


def summary(tallies: list[dict]) -> dict:
    """Nothing for the manifest beyond the build's own counts."""
    return {}
