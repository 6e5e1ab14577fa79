"""Build a puzzle dataset: source items -> puzzles -> verl-ready parquet shards + manifest.

The main process reads the source in order, drops repeated items (by content), assigns each
item to train or test by its content hash (so an item never lands in both), and hands
(item bytes, sample ids, partner items) to workers. Workers make the puzzles with an rng seeded
from (seed, task, sample id) and return rows; results come back in input order. Hence the output
bytes are identical for any number of workers. What an item is, how it is read, fitted to the
token budget and skipped is its modality's (ssl4rl.modalities); the settings are
ssl4rl.build_config's, the counts saved for resume ssl4rl.build_state's.

Memory stays bounded: a fixed window of jobs is in flight and shards are written as they fill.
A build interrupted part-way resumes from its last complete shard (`.progress.json`).
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import platform
import threading
import time
from collections import deque
from dataclasses import asdict
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from tqdm import tqdm

from ssl4rl import __version__
from ssl4rl.build_config import BuildConfig
from ssl4rl.build_jobs import Job, JobResult, Spec
from ssl4rl.build_state import ReadLog, SourceStats, SplitState, check_consumed_prefix, check_finished_source
from ssl4rl.build_worker import init_pool_worker, init_worker, make_rows
from ssl4rl.errors import UserError
from ssl4rl.keyset import KeySet
from ssl4rl.modalities import modality_of
from ssl4rl.out_folder import open_out
from ssl4rl.schema import DEFAULT_DIFFICULTY, MANIFEST, PROGRESS, SPLITS, content_key, is_puzzle_build, split_of
from ssl4rl.shards import ShardWriter, json_text
from ssl4rl.tasks import TASKS, task_modality
from ssl4rl.tasks.common import load_template, rng_for

PARTNER_WINDOW = 64  # recent items of a split that partner items are drawn from
JOBS_PER_BATCH = 4
BATCHES_IN_FLIGHT_PER_WORKER = 4


def make_specs(cfg: BuildConfig) -> list[Spec]:
    """Every (task, difficulty) of a build with its options: the level's presets, then explicit options."""
    weights = cfg.tasks if cfg.task == "mix" else {cfg.task: 1.0}
    if not weights:
        raise UserError("mix needs --tasks, e.g. --tasks rotation:2,position:1")
    levels = cfg.difficulty or [DEFAULT_DIFFICULTY]
    specs = []
    for name, weight in weights.items():
        if name not in TASKS:
            raise UserError(f"unknown task '{name}' (tasks: {', '.join(TASKS)})")
        if weight <= 0:
            raise UserError(f"task weight must be positive (got {name}:{weight})")
        for level in levels:
            presets = TASKS[name].DIFFICULTY
            if level != DEFAULT_DIFFICULTY and level not in presets:
                raise UserError(f"unknown difficulty '{level}' (levels: {', '.join(presets)})")
            explicit = cfg.options if cfg.task != "mix" else (cfg.task_options or {}).get(name, {})
            options = {**(presets.get(level, {}) if level != DEFAULT_DIFFICULTY else {}), **explicit}
            specs.append(Spec(name, level, tuple(sorted(options.items())), weight / len(levels)))
    return specs


def _make_batch(jobs: list[Job]) -> list[JobResult]:
    return [make_rows(job) for job in jobs]


def ordered_map(jobs: Iterable[Job], workers: int, initargs: tuple) -> Iterator[JobResult]:
    """make_rows over jobs, in input order, with a bounded number of jobs in flight."""
    if workers <= 1:
        init_worker(*initargs)
        yield from map(make_rows, jobs)
        return
    pool = multiprocessing.get_context().Pool(workers, init_pool_worker, initargs)
    pending: deque = deque()
    try:
        batch: list[Job] = []
        for job in jobs:
            batch.append(job)
            if len(batch) == JOBS_PER_BATCH:
                pending.append(pool.apply_async(_make_batch, (batch,)))
                batch = []
                if len(pending) >= workers * BATCHES_IN_FLIGHT_PER_WORKER:
                    yield from pending.popleft().get()
        if batch:
            pending.append(pool.apply_async(_make_batch, (batch,)))
        while pending:
            yield from pending.popleft().get()
    finally:
        stop_pool(pool, pending)


def stop_pool(pool, pending: deque, patience: float = 3.0) -> None:
    """Stop the workers without hanging, also when the build stops early (--limit, Ctrl-C).

    Pool.terminate() deadlocks when a worker is still writing a large result: CPython's result
    handler stops reading first, and terminate then waits for the pipe's write lock. So results
    in flight are let in first (for up to `patience` seconds); if terminate still does not finish,
    the workers are killed and the stuck terminate is left to its daemon thread.
    """
    deadline = time.monotonic() + patience
    for result in pending:
        result.wait(max(0.0, deadline - time.monotonic()))
    stopper = threading.Thread(target=pool.terminate, daemon=True)
    stopper.start()
    stopper.join(patience)
    if stopper.is_alive():
        for process in pool._pool:  # noqa: SLF001 - the only handle on the worker processes
            process.kill()
            process.join(1)


# ---------------------------------------------------------------- main process
class JobPlanner:
    """Unique items in source order, each with its split, puzzle spec, sample ids and partners.

    Each yielded job's ReadLog (what was read since the previous job) and source bytes wait in
    `pending` until its result is consumed, so the stats cover exactly the consumed part of the
    source, however far ahead the workers read. Jobs a previous run already wrote
    (seq < done[split]) are planned but not yielded, so partner windows come out exactly as in
    an uninterrupted run. A static curriculum reads the source once per level, easy first, each
    pass taking its own share of the items (by content hash).
    """

    def __init__(self, reader, cfg: BuildConfig, specs: list[Spec], partners: int, done: dict[str, int]):
        self.reader, self.cfg, self.specs, self.partners, self.done = reader, cfg, specs, partners, done
        self.pending: deque[tuple[ReadLog, bytes]] = deque()
        self.tail = ReadLog()  # read after the last yielded job

    def _passes(self) -> list[list[Spec]]:
        levels = list(dict.fromkeys(spec.difficulty for spec in self.specs))
        if self.cfg.curriculum == "static" and len(levels) > 1:
            return [[spec for spec in self.specs if spec.difficulty == level] for level in levels]
        return [self.specs]

    def __iter__(self) -> Iterator[Job]:
        cfg = self.cfg
        windows = {split: deque(maxlen=PARTNER_WINDOW) for split in SPLITS}
        seqs = dict.fromkeys(SPLITS, 0)
        log = ReadLog()
        passes = self._passes()
        for number, specs in enumerate(passes):
            weights = np.array([spec.weight for spec in specs])
            seen = KeySet()  # exact, ~17 bytes a key: flat enough for 10^8 items
            for raw in self.reader:
                first_pass = number == 0
                if raw.skip:
                    log.skipped[raw.skip] += first_pass
                    continue
                key = content_key(raw.data)
                if first_pass:
                    log.keys.append((raw.source_id, key))
                if not seen.add(key):
                    log.skipped["duplicate"] += first_pass
                    continue
                if len(passes) > 1 and int.from_bytes(key[8:16], "little") % len(passes) != number:
                    continue
                spec = specs[int(rng_for(cfg.seed, "spec", raw.source_id).choice(len(specs), p=weights / weights.sum()))]
                published = getattr(self.reader, "published_split", None)  # a release's own test split, if it has one
                split = (published and published(raw.source_id)) or split_of(key, cfg.test_fraction)
                window = windows[split]
                samples = []
                for repeat in range(cfg.per_item):
                    sample_id = raw.source_id if cfg.per_item == 1 else f"{raw.source_id}#{repeat}"
                    partners = []
                    if self.partners and window:
                        picks = rng_for(cfg.seed, spec.task, sample_id, "partners").choice(
                            len(window), size=min(self.partners, len(window)), replace=False
                        )
                        partners = [window[int(i)] for i in picks]
                    samples.append((sample_id, partners))
                seq = seqs[split]
                seqs[split] += 1
                if self.partners:
                    window.append((raw.source_id, raw.data))
                if seq >= self.done.get(split, 0):
                    self.pending.append((log, raw.data))
                    log = ReadLog()
                    yield Job(split, seq, raw.source_id, raw.data, spec.key, samples)
        self.tail = log


def _check_task(cfg: BuildConfig) -> tuple[list[Spec], dict[str, str], int]:
    """Specs, prompt templates per task and partner count; every option and template is tried on
    a synthetic item of the tasks' modality first, so bad settings fail before any output."""
    if cfg.task != "mix" and cfg.task not in TASKS:
        raise UserError(f"unknown task '{cfg.task}' (tasks: mix, {', '.join(TASKS)})")
    cfg.check()
    specs = make_specs(cfg)
    if cfg.prompt_file and Path(cfg.prompt_file).is_dir():
        missing = sorted({spec.task for spec in specs if not (Path(cfg.prompt_file) / f"{spec.task}.txt").is_file()})
        if missing:
            raise UserError(f"{cfg.prompt_file}: no prompt file for {', '.join(f'{task}.txt' for task in missing)}")
    modality = modality_of(spec.task for spec in specs)
    templates, partners = {}, 0
    for spec in specs:
        try:
            task = TASKS[spec.task](**dict(spec.options))
        except (TypeError, ValueError) as error:
            raise UserError(f"{spec.task}: {error}") from None
        partners = max(partners, task.partners)
        modality.check_task(task, templates.setdefault(task.name, load_template(task.name, cfg.prompt_file)))
    return specs, templates, partners


def _our_files(out) -> list[str]:
    patterns = [f"{s}-*.parquet" for s in SPLITS] + [f".{s}-*.tmp" for s in SPLITS] + [MANIFEST, PROGRESS]
    return [name for pattern in patterns for name in out.names(pattern)]


def _prepare_out(out, identity: dict, overwrite: bool) -> dict | None:
    """Returns the saved progress to resume from, None for a fresh build; raises when `out`
    (ssl4rl.out_folder) holds a different build. Returns {'complete': manifest} when the same
    build is done."""
    foreign = sorted(set(out.names("*.parquet")) - set(_our_files(out)))
    if foreign:
        raise UserError(
            f"{out} holds parquet files that are not part of a build ({', '.join(foreign[:3])}); "
            "--overwrite replaces only builds: move them or choose another --out"
        )
    if overwrite:
        for name in _our_files(out):
            out.unlink(name)
    for name, label in ((MANIFEST, "a finished"), (PROGRESS, "an unfinished")):
        if out.exists(name):
            try:
                saved = json.loads(out.read_text(name))
            except (OSError, ValueError) as error:
                raise UserError(f"{out.shown(name)}: unreadable ({error}); pass --overwrite to build again") from None
            if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict):
                raise UserError(f"{out.shown(name)}: not a build's record; pass --overwrite to build again")
            config = saved["config"]
            changed = sorted(k for k in set(config) | set(identity) if config.get(k) != identity.get(k))
            built_by = (saved.get("versions") or {}).get("ssl4rl", __version__) if name == MANIFEST else __version__
            if built_by != __version__:
                changed.append(f"ssl4rl version ({built_by}, now {__version__})")
            if changed:
                raise UserError(f"{out} holds {label} build with other settings ({', '.join(changed)} changed); pass --overwrite or choose another --out")
            return {"complete": saved} if name == MANIFEST else saved
    if out.names("*.parquet"):
        raise UserError(f"{out} already holds parquet files; pass --overwrite or choose another --out")
    return None


def build(cfg: BuildConfig, workers: int = 1, overwrite: bool = False, progress_bar: bool = True, engine: str = "local",
          ray_address: str | None = None) -> dict:
    """Build the dataset described by `cfg` into cfg.out; returns the manifest. engine 'ray'
    makes the puzzles on a Ray cluster (ssl4rl.ray_build): the same bytes as 'local'."""
    mapper = ordered_map
    if engine == "ray":
        from ssl4rl.ray_build import check_reachable, import_ray, ray_ordered_map

        import_ray()
        check_reachable(ray_address)
        mapper = functools.partial(ray_ordered_map, address=ray_address)
    elif engine != "local":
        raise UserError(f"--engine must be local or ray (got {engine!r})")
    specs, templates, partners = _check_task(cfg)
    cfg.budget()  # bad budget options fail here, before the output folder is touched
    for given in (cfg.source, cfg.data):
        if given and is_puzzle_build(given):
            raise UserError(f"{given} is an ssl4rl puzzle build; give what it was built from as --source")
    modality = modality_of(spec.task for spec in specs)
    reader = modality.open_reader(cfg, specs)
    out = open_out(cfg.out)
    out.create()
    try:
        with out.lock():
            return _build(cfg, modality, reader, specs, templates, partners, out, workers, overwrite, progress_bar, mapper)
    except OSError as error:  # a folder we cannot write in (read-only, full): one line, not a traceback
        line = out.write_error(error)
        if line is None:
            raise
        raise UserError(line) from None


def _build(cfg: BuildConfig, modality, reader, specs, templates, partners, out, workers: int, overwrite: bool, progress_bar: bool,
           mapper=ordered_map) -> dict:
    """`out`: the output folder, local or on a pyarrow filesystem (ssl4rl.out_folder)."""
    identity = cfg.identity(templates)
    saved = _prepare_out(out, identity, overwrite)
    if saved and "complete" in saved:
        check_finished_source(reader, saved["complete"], cfg.limit, out)
        return saved["complete"]
    for stale in out.names(".*.tmp"):
        out.unlink(stale)

    saved_splits = (saved or {}).get("splits", {})
    check_consumed_prefix(reader, saved_splits, out)
    for split in SPLITS:  # forget shards written after the last saved progress
        for name in out.names(f"{split}-[0-9][0-9][0-9][0-9][0-9].parquet"):
            if int(name.removesuffix(".parquet").split("-")[1]) >= saved_splits.get(split, {}).get("shards", 0):
                out.unlink(name)
    state = {s: SplitState.restore(saved_splits.get(s, {})) for s in SPLITS}
    snapshots = {s: state[s].snapshot(0) for s in SPLITS}
    snapshots.update({s: saved_splits[s] for s in saved_splits})
    writers = {s: ShardWriter(out, s, cfg.shard_rows, snapshots[s]["shards"]) for s in SPLITS}

    def save_progress() -> None:
        out.write_text(PROGRESS, json_text({"config": identity, "splits": snapshots}))

    save_progress()
    stats = SourceStats()
    planner = JobPlanner(reader, cfg, specs, partners, {s: state[s].jobs for s in SPLITS})
    source_name = getattr(reader, "preset", None) or ("samples" if cfg.source == "samples" else reader.kind)
    budget = cfg.budget()
    initargs = (specs, templates, cfg.seed, source_name, budget, task_modality(specs[0].task), modality.worker_context(cfg, reader))
    total = sum(state[s].rows for s in SPLITS)
    expected = cfg.limit or _expected_rows(modality, reader, cfg.per_item) if progress_bar else None
    bar = tqdm(total=expected, initial=total, unit="rows", desc=f"build {cfg.task}", disable=not progress_bar, dynamic_ncols=True)
    exhausted = cfg.limit is None or total < cfg.limit
    results = mapper(planner if exhausted else (), workers, initargs)
    try:
        for result in results:
            log, source_bytes = planner.pending.popleft()
            stats.add(log)
            modality.fill_rows(result.rows, source_bytes)
            split = state[result.split]
            keep = result.rows if cfg.limit is None else result.rows[: cfg.limit - total]
            split.add(result, keep, modality.tally)
            total += len(keep)
            bar.update(len(keep))
            if keep and writers[result.split].add(keep):
                snapshots[result.split] = split.snapshot(writers[result.split].shard, stats.prefix())
                save_progress()
                bar.set_postfix(shards=sum(writer.shard for writer in writers.values()), refresh=False)
            if cfg.limit is not None and total >= cfg.limit:
                exhausted = False
                break
        if exhausted:
            stats.add(planner.tail)
        for writer in writers.values():
            writer.finish_shard()
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    finally:
        results.close()  # terminates the worker pool now, not whenever the generator is collected
        for writer in writers.values():
            writer.close()
        if exhausted and bar.total:  # skips and duplicates made the estimate high: end at 100 %
            bar.total = bar.n
            bar.refresh()
        bar.close()

    if not total:  # nothing to train on: say why, and leave no manifest that looks like a build
        out.unlink(PROGRESS)
        skipped = sum((state[s].skipped for s in SPLITS), stats.skipped)
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(skipped.items())) or "the source had no items"
        raise UserError(f"{out}: no puzzles were made (skipped: {reasons})")
    manifest = {
        "task": cfg.task,
        "options": asdict(TASKS[cfg.task](**dict(specs[0].options))) if cfg.task != "mix" and len(specs) == 1 else {},
        "specs": [{"task": sp.task, "difficulty": sp.difficulty, "options": asdict(TASKS[sp.task](**dict(sp.options))), "weight": sp.weight} for sp in specs],
        "curriculum": cfg.curriculum,
        "seed": cfg.seed,
        "source": {"name": source_name, "path": str(getattr(reader, "path", "")), **stats.prefix()},
        "rows": {s: state[s].rows for s in SPLITS},
        "files": {s: writers[s].files for s in SPLITS},
        "skipped": dict(sorted(sum((state[s].skipped for s in SPLITS), stats.skipped).items())),
        "answers": {s: dict(sorted(state[s].answers.items())) for s in SPLITS},
        # per split: min / median / p99 / max prompt tokens, and how many sources were downscaled
        "prompt_tokens": {s: state[s].prompt_tokens() for s in SPLITS},
        "token_budget": {"max_prompt_tokens": budget.max_tokens, "patch_factor": budget.factor, "processor": budget.processor,
                         "text": "exact (processor)" if budget.processor else "estimate (ssl4rl.budget.estimate_text_tokens + chat template)" if budget.estimate
                         else "upper bound (UTF-8 bytes + chat template)"},
        **modality.summary([state[s].shown for s in SPLITS]),
        **cfg.manifest_settings(),
        "versions": _versions(),
        "config": identity,
    }
    out.write_text(MANIFEST, json_text(manifest))
    out.unlink(PROGRESS)
    return manifest


def _expected_rows(modality, reader, per_item: int) -> int | None:
    """The progress bar's total: source items x puzzles per item, when cheap to count; skipped
    items make it an upper bound."""
    try:
        items = modality.item_count(reader)
    except Exception:  # noqa: BLE001 - only the bar's total: unknown is fine
        return None
    if items is None:
        return None
    return max(0, items) * per_item or None


def _versions() -> dict:
    import PIL
    import pyarrow

    return {
        "ssl4rl": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "pyarrow": pyarrow.__version__,
    }
