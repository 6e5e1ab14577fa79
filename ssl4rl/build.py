"""Build a puzzle dataset: source items -> puzzles -> verl-ready parquet shards + manifest.

The main process reads the source in order, drops repeated items (by content), assigns each
item to train or test by its content hash (so an item never lands in both), and hands
(item bytes, sample ids, partner items) to workers. Workers make the puzzles with an rng seeded
from (seed, task, sample id) and return rows; results come back in input order. Hence the output
bytes are identical for any number of workers. What an item is (an image, a graph node), how it
is read, fitted to the token budget and skipped is its modality's (ssl4rl.modalities).

Memory stays bounded: a fixed window of jobs is in flight and shards are written as they fill.
A build interrupted part-way resumes from its last complete shard (`.progress.json`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import multiprocessing
import platform
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from tqdm import tqdm

from ssl4rl import __version__
from ssl4rl.budget import DEFAULT_MAX_PROMPT_TOKENS, TokenBudget, length_stats
from ssl4rl.build_jobs import Job, JobResult, Spec
from ssl4rl.build_worker import init_pool_worker, init_worker, make_rows
from ssl4rl.errors import UserError
from ssl4rl.images import MAX_PIXELS
from ssl4rl.keyset import KeySet
from ssl4rl.modalities import MODALITIES, modality_of
from ssl4rl.out_folder import open_out
from ssl4rl.schema import DEFAULT_DIFFICULTY, MANIFEST, PROGRESS, SPLITS, content_key, is_puzzle_build, split_of
from ssl4rl.shards import ShardWriter, json_text
from ssl4rl.sources.common import MAX_FILE_BYTES
from ssl4rl.tasks import TASKS, task_modality
from ssl4rl.tasks.common import load_template, rng_for
from ssl4rl.uri import is_uri, shown

PARTNER_WINDOW = 64  # recent images of a split that partner images are drawn from
JOBS_PER_BATCH = 4
BATCHES_IN_FLIGHT_PER_WORKER = 4


@dataclass
class BuildConfig:
    task: str
    source: str
    out: str
    options: dict = field(default_factory=dict)
    data: str | None = None
    image_columns: list[str] | None = None
    seed: int = 0
    limit: int | None = None  # total rows (train + test); None = the whole source
    test_fraction: float = 0.1
    image_format: str = "png"
    per_image: int = 1  # puzzles made from each source image
    shard_rows: int = 1000
    prompt_file: str | None = None
    tasks: dict[str, float] | None = None  # task == "mix": {task: weight}
    task_options: dict[str, dict] | None = None  # task == "mix": {task: {option: value}}
    difficulty: list[str] | None = None  # levels (easy, medium, hard); None = the task's defaults
    curriculum: str = "mixed"  # with several levels: "mixed" (random per image) or "static" (easy first)
    max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS  # every row fits (0: no cap); ssl4rl.budget
    patch_size: int = 28  # pixels per visual token side: 28 Qwen2/2.5-VL, 32 Qwen3-VL
    processor: str | None = None  # a processor folder: its patching and exact text tokens
    max_pixels: int = MAX_PIXELS  # larger images are skipped from their header, never decoded
    max_file_bytes: int = MAX_FILE_BYTES  # larger files are skipped from their size, never read

    def budget(self) -> TokenBudget:
        if self.max_prompt_tokens < 0 or self.patch_size < 1:
            raise UserError(f"--max-prompt-tokens must be >= 0 and --patch-size >= 1 (got {self.max_prompt_tokens}, {self.patch_size})")
        if self.processor is None:  # all-text prompts (graphs): the calibrated estimate, not the byte bound
            names = [name for name in [self.task, *(self.tasks or {})] if name in TASKS]
            estimate = any(MODALITIES[task_modality(name)].TEXT_ESTIMATE for name in names)
            return TokenBudget(self.max_prompt_tokens, self.patch_size, estimate=estimate)
        if not Path(self.processor).is_dir():
            raise UserError(f"{self.processor}: no such processor folder (a model folder saved with its processor)")
        try:
            return TokenBudget.from_processor(str(Path(self.processor).resolve()), self.max_prompt_tokens)
        except (ImportError, OSError, ValueError) as error:
            raise UserError(f"{self.processor}: cannot load its processor ({str(error).strip().splitlines()[0]})") from None

    def identity(self, templates: dict[str, str]) -> dict:
        """What must match for an existing output folder to be resumed or reused."""
        keys = (
            "task", "source", "options", "image_columns", "seed", "limit", "test_fraction", "image_format", "per_image",
            "shard_rows", "tasks", "difficulty", "curriculum", "max_prompt_tokens", "patch_size", "max_pixels", "max_file_bytes",
        )  # fmt: skip
        identity = {k: getattr(self, k) for k in keys}
        if self.task_options:  # absent when unused, so earlier builds still resume
            identity["task_options"] = self.task_options
        if is_uri(self.source):  # a URI's credentials and query never reach the manifest
            identity["source"] = shown(self.source)
        identity["data"] = (shown(self.data) if is_uri(self.data) else str(Path(self.data).resolve())) if self.data else None
        identity["processor"] = str(Path(self.processor).resolve()) if self.processor else None
        identity["template_sha256"] = hashlib.sha256(json.dumps(templates, sort_keys=True).encode()).hexdigest()
        return json.loads(json.dumps(identity))


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
@dataclass
class SplitState:
    """Counters of one split; a snapshot taken when a shard completes is what resume restores."""

    rows: int = 0
    jobs: int = 0
    skipped: Counter = field(default_factory=Counter)
    answers: Counter = field(default_factory=Counter)
    tokens: Counter = field(default_factory=Counter)  # prompt length -> rows
    downscaled: int = 0  # source images downscaled to fit the token budget
    shown: dict = field(default_factory=dict)  # per task: the modality's tally of what the prompts show

    def add(self, result: JobResult, kept_rows: list[dict], tally) -> None:
        """Count a result whose first `kept_rows` are kept; `tally`: the modality's, for `shown`."""
        if result.skip:
            self.skipped[result.skip] += 1
        for row, answer, tokens in zip(kept_rows, result.answers, result.tokens):
            row["extra_info"]["index"] = self.rows
            self.rows += 1
            self.answers[answer] += 1
            self.tokens[tokens] += 1
        for view in result.shown[: len(kept_rows)]:
            tally(self.shown, view)
        self.downscaled += result.downscaled if kept_rows else 0
        self.jobs = result.seq + 1

    def snapshot(self, shards: int, source: dict | None = None) -> dict:
        """`source`: images and fingerprint of the source consumed so far, checked on resume."""
        snapshot = {
            "shards": shards, "rows": self.rows, "jobs": self.jobs, "skipped": dict(self.skipped), "answers": dict(self.answers),
            "tokens": {str(k): v for k, v in sorted(self.tokens.items())}, "downscaled": self.downscaled,
        }  # fmt: skip
        if self.shown:
            snapshot["shown"] = json.loads(json.dumps(self.shown))
        return {**snapshot, "source": source} if source else snapshot

    @classmethod
    def restore(cls, saved: dict) -> "SplitState":
        tokens = Counter({int(k): v for k, v in saved.get("tokens", {}).items()})
        tallies = saved.get("shown", saved.get("graph", {}))  # progress saved before the tallies were the modality's: "graph"
        return cls(saved.get("rows", 0), saved.get("jobs", 0), Counter(saved.get("skipped", {})), Counter(saved.get("answers", {})), tokens,
                   saved.get("downscaled", 0), json.loads(json.dumps(tallies)))  # fmt: skip

    def prompt_tokens(self) -> dict:
        return {**length_stats(self.tokens), "downscaled_images": self.downscaled}


@dataclass
class ReadLog:
    """What the reader produced between two jobs: skips before decoding, and content keys."""

    skipped: Counter = field(default_factory=Counter)
    keys: list[tuple[str, bytes]] = field(default_factory=list)


class SourceStats:
    """Reader skips, image count and content fingerprint of the part of the source consumed."""

    def __init__(self):
        self.skipped: Counter = Counter()
        self.images = 0
        self._fingerprint = hashlib.sha256()

    def add(self, log: ReadLog) -> None:
        self.skipped.update(log.skipped)
        for source_id, key in log.keys:
            self.add_key(source_id, key)

    def add_key(self, source_id: str, key: bytes) -> None:
        self.images += 1
        self._fingerprint.update(source_id.encode() + b"\0" + key)

    @property
    def fingerprint(self) -> str:
        return self._fingerprint.hexdigest()

    def prefix(self) -> dict:
        return {"images": self.images, "fingerprint": self.fingerprint}


def check_consumed_prefix(reader, saved_splits: dict, out: Path) -> None:
    """Resume keeps shards made from the first images of the source: refuse when those images
    changed (added, removed, edited or reordered) since the shards were written."""
    expected = {s["source"]["images"]: s["source"]["fingerprint"] for s in saved_splits.values() if s.get("source")}
    if not expected:
        return
    stats, target = SourceStats(), max(expected)
    changed = False
    for raw in reader:
        if raw.skip:
            continue
        stats.add_key(raw.source_id, content_key(raw.data))
        changed = expected.get(stats.images, stats.fingerprint) != stats.fingerprint
        if changed or stats.images >= target:
            break
    if changed or stats.images < target:
        raise UserError(
            f"{out}: the source changed since this build was interrupted (its first {max(expected)} images differ); "
            "pass --overwrite to build again from scratch"
        )


def check_finished_source(reader, manifest: dict, limit: int | None, out: Path) -> None:
    """A finished build is returned as is only if its source still holds the images it was made
    from: all of them (and no more) when the build read the whole source, else the prefix its
    --limit consumed. Re-reads (hashes) that part of the source once."""
    saved = manifest.get("source") or {}
    target, expected = saved.get("images"), saved.get("fingerprint")
    if target is None or expected is None:
        return
    whole = limit is None or sum(manifest.get("rows", {}).values()) < limit
    stats, same = SourceStats(), target == 0
    for raw in reader:
        if raw.skip:
            continue
        if stats.images == target and not whole:
            break
        stats.add_key(raw.source_id, content_key(raw.data))
        if stats.images == target:
            same = stats.fingerprint == expected
    if stats.images < target or not same or (whole and stats.images != target):
        if not whole:
            what = f"its first {target} images differ"
        elif stats.images != target:
            what = f"{target} images then, {stats.images} now"
        else:
            what = "images edited, renamed or reordered"
        raise UserError(f"{out}: the source changed since this build finished ({what}); pass --overwrite to build again")


class JobPlanner:
    """Unique images in source order, each with its split, puzzle spec, sample ids and partners.

    Each yielded job's ReadLog (what was read since the previous job) and source bytes wait in
    `pending` until its result is consumed, so the stats cover exactly the consumed part of the
    source, however far ahead the workers read. Jobs a previous run already wrote
    (seq < done[split]) are planned but not yielded, so partner windows come out exactly as in
    an uninterrupted run. A static curriculum reads the source once per level, easy first, each
    pass taking its own share of the images (by content hash).
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
                for repeat in range(cfg.per_image):
                    sample_id = raw.source_id if cfg.per_image == 1 else f"{raw.source_id}#{repeat}"
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
    if cfg.image_format not in ("png", "jpeg"):
        raise UserError(f"--image-format must be png or jpeg (got {cfg.image_format!r})")
    if not 0.0 <= cfg.test_fraction < 1.0:
        raise UserError(f"--test-fraction must be in [0, 1) (got {cfg.test_fraction})")
    if cfg.curriculum not in ("mixed", "static"):
        raise UserError(f"--curriculum must be mixed or static (got {cfg.curriculum!r})")
    if cfg.prompt_file and not Path(cfg.prompt_file).exists():
        raise UserError(f"{cfg.prompt_file}: no such prompt file or folder")
    if cfg.prompt_file and cfg.task == "mix" and not Path(cfg.prompt_file).is_dir():
        raise UserError("--prompt for a mix is a folder of TASK.txt files, one per task (e.g. configs/prompts/short)")
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
            raise UserError(f"{given} is an ssl4rl puzzle build; give the images it was built from as --source")
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
    expected = cfg.limit or _expected_rows(modality, reader, cfg.per_image) if progress_bar else None
    bar = tqdm(total=expected, initial=total, unit="rows", desc=f"build {cfg.task}", disable=not progress_bar, dynamic_ncols=True)
    exhausted = cfg.limit is None or total < cfg.limit
    results = mapper(planner if exhausted else (), workers, initargs)
    try:
        for result in results:
            log, source_bytes = planner.pending.popleft()
            stats.add(log)
            for row in result.rows:
                for image in row["images"]:
                    image["bytes"] = image["bytes"] or source_bytes
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
        "source": {
            "name": source_name,
            "path": str(getattr(reader, "path", "")),
            "images": stats.images,
            "fingerprint": stats.fingerprint,
        },
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
        "image_format": cfg.image_format,
        "versions": _versions(),
        "config": identity,
    }
    out.write_text(MANIFEST, json_text(manifest))
    out.unlink(PROGRESS)
    return manifest


def _expected_rows(modality, reader, per_image: int) -> int | None:
    """The progress bar's total: source items x puzzles per item, when cheap to count; skipped
    items make it an upper bound."""
    try:
        items = modality.item_count(reader)
    except Exception:  # noqa: BLE001 - only the bar's total: unknown is fine
        return None
    if items is None:
        return None
    return max(0, items) * per_image or None


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
