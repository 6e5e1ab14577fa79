"""The worker half of a build: the rows of one source item (an image, or a graph node), made
within the token budget. The local process pool (ssl4rl.build) and Ray tasks (ssl4rl.ray_build)
run the same functions: `init_worker` once per process, then `make_rows` per job.

Every random choice is seeded from (seed, task, sample id), so a job's rows depend only on the
job: the output bytes are the same for any number of workers or nodes.
"""

from __future__ import annotations

import functools
import math
import signal
from dataclasses import dataclass, field, replace

from PIL import Image

from ssl4rl.budget import TokenBudget
from ssl4rl.errors import UserError
from ssl4rl.images import SkipImage, SourceImage, decode, encode
from ssl4rl.prescale import fitted_size, predicts
from ssl4rl.schema import GRAPH_ABILITY, content_key, make_row
from ssl4rl.sources.graph_source import GraphRef, load_graph
from ssl4rl.tasks import TASKS
from ssl4rl.tasks.common import IMAGE_PLACEHOLDER, rng_for


@dataclass(frozen=True)
class Spec:
    """One kind of puzzle in a build: a task at a difficulty level, and its share of the images."""

    task: str
    difficulty: str  # easy | medium | hard | default
    options: tuple  # sorted (name, value) pairs: hashable, picklable
    weight: float = 1.0

    @property
    def key(self) -> str:
        return f"{self.task}/{self.difficulty}"


@dataclass
class Job:
    """One source image and the puzzles to make from it."""

    split: str
    seq: int  # position among this split's images, for resume
    source_id: str
    data: bytes
    spec: str  # Spec.key: the puzzle made from this image
    samples: list[tuple[str, list[tuple[str, bytes]]]]  # (sample id, partner images)


@dataclass
class JobResult:
    split: str
    seq: int
    rows: list[dict]  # 'index' still unset; the writer numbers rows
    answers: list[str]
    skip: str | None = None
    tokens: list[int] = field(default_factory=list)  # each row's prompt length
    downscaled: int = 0  # 1 when the source was downscaled to fit the token budget
    shown: list[dict] = field(default_factory=list)  # graph rows: what each prompt shows (graph_shown)


# ---------------------------------------------------------------- per worker process
_worker: dict = {}


def init_worker(specs: list[Spec], templates: dict[str, str], image_format: str, seed: int, source_name: str, max_pixels: int, budget: TokenBudget,
                 graph: GraphRef | None = None) -> None:
    """Per worker process: the task objects, and for graph tasks the graph, loaded once."""
    _worker.update(
        graph=load_graph(graph) if graph is not None else None,
        tasks={spec.key: (TASKS[spec.task](**dict(spec.options)), spec.difficulty) for spec in specs},
        templates=templates, image_format=image_format, seed=seed, source=source_name, max_pixels=max_pixels, budget=budget,
        mixed=len({spec.task for spec in specs}) > 1,  # answer histograms then key on task:answer
    )  # fmt: skip


def init_pool_worker(*initargs) -> None:
    """Ctrl-C reaches the whole process group: only the main process handles it (and terminates
    the pool). A worker interrupted while holding the task queue's lock would hang the pool's
    shutdown and print its own traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    init_worker(*initargs)


def make_rows(job: Job) -> JobResult:
    task, difficulty = _worker["tasks"][job.spec]
    if _worker["graph"] is not None:
        return make_graph_rows(job, task, difficulty)
    # Tasks that can tell their largest images from the source's size are decoded straight to
    # the size that fits the token budget (ssl4rl.prescale): one decode, one resize, one puzzle.
    fit = functools.partial(fitted_size, task, _worker["templates"][task.name], _worker["budget"]) if predicts(task) else None
    try:
        source = decode(job.data, task.min_side, job.source_id, _worker["max_pixels"], fit=fit)
    except SkipImage as skip:
        return JobResult(job.split, job.seq, [], [], skip.reason)
    rows, answers, lengths, downscaled = [], [], [], int(source.downscaled)
    source_hash = content_key(job.data).hex()  # the key the split was decided by
    for sample_id, partner_data in job.samples:
        others = []
        for partner_id, data in partner_data:
            try:
                others.append(decode(data, 1, partner_id, _worker["max_pixels"]))
            except SkipImage:
                pass
        try:
            puzzle, prompt, shown, tokens = make_within_budget(task, sample_id, source, others)
        except SkipImage as skip:
            return JobResult(job.split, job.seq, [], [], skip.reason)
        downscaled = max(downscaled, int(shown is not source))
        lengths.append(tokens)
        rows.append(
            make_row(
                task=task.name,
                prompt=prompt,
                # A source shown untouched is not sent back: the main process still has its bytes.
                images=[b"" if image is source.data else encode(image, _worker["image_format"]) for image in puzzle.images],
                answer=puzzle.answer,
                source=_worker["source"],
                source_id=sample_id,
                split=job.split,
                index=-1,
                params=puzzle.params,
                difficulty=difficulty,
                source_hash=source_hash,
            )
        )
        answers.append(f"{task.name}:{puzzle.answer}" if _worker["mixed"] else puzzle.answer)
    return JobResult(job.split, job.seq, rows, answers, tokens=lengths, downscaled=downscaled)


def make_graph_rows(job: Job, task, difficulty: str) -> JobResult:
    """The rows of one graph node: its puzzles, text only (no images)."""
    graph = _worker["graph"]
    node = graph.index[job.source_id]
    rows, answers, lengths, shown = [], [], [], []
    source_hash = content_key(job.data).hex()
    for sample_id, _ in job.samples:
        try:
            puzzle, prompt, tokens = make_graph_within_budget(task, sample_id, graph, node)
        except SkipImage as skip:
            return JobResult(job.split, job.seq, [], [], skip.reason)
        lengths.append(tokens)
        shown.append(graph_shown(task.name, puzzle.params))
        rows.append(make_row(task=task.name, prompt=prompt, images=[], answer=puzzle.answer, source=_worker["source"], source_id=sample_id,
                             split=job.split, index=-1, params=puzzle.params, difficulty=difficulty, source_hash=source_hash, ability=GRAPH_ABILITY))  # fmt: skip
        answers.append(f"{task.name}:{puzzle.answer}" if _worker["mixed"] else puzzle.answer)
    return JobResult(job.split, job.seq, rows, answers, tokens=lengths, shown=shown)


FOCUS_KEYS = {"neighbour": ("centre",), "kg-link": ("head",), "masking": ("target",), "link": ("u", "v")}


def graph_shown(task: str, params: dict) -> dict:
    """What one graph row shows, for the manifest: nodes, edges (facts), whether every focus node
    (the centre, head, masked node, or both ends) shows an edge, and texts cut (how many, to what)."""
    ends = {n for pair in params["edges"] for n in pair}
    return {"task": task, "nodes": params["nodes"], "edges": len(params["edges"]),
            "focus_edge": all(params[key] in ends for key in FOCUS_KEYS.get(task, ())), "cut": params.get("cut", 0), "text_chars": params["text_chars"]}  # fmt: skip


MIN_TEXT_CHARS = 100  # node texts are never cut shorter to fit: fewer nodes are shown first, then the row is skipped


def make_graph_within_budget(task, sample_id: str, graph, node: int) -> tuple:
    """(puzzle, prompt, prompt tokens) within the token budget: when a row is over, fewer nodes
    are shown (the farthest go first: the shown neighbourhood fills nearest first, the focus
    nodes taking turns), down to the focus nodes and about one neighbour each; then texts are cut
    shorter, down to MIN_TEXT_CHARS; each time with the same rng seed. Raises
    SkipImage('over-token-budget') when even the smallest puzzle does not fit."""
    budget, template = _worker["budget"], _worker["templates"][task.name]
    made_by = task
    fewest = 2 * focus_count(task)
    while True:
        puzzle = made_by.make(rng_for(_worker["seed"], task.name, sample_id), graph, node)
        prompt = template.format(**puzzle.prompt_vars)
        tokens = budget.count(prompt, [])
        if budget.fits(tokens):
            return puzzle, prompt, tokens
        if made_by.max_nodes > fewest:
            made_by = replace(made_by, max_nodes=max(fewest, made_by.max_nodes - max(1, made_by.max_nodes // 8)))
        elif made_by.text_chars > MIN_TEXT_CHARS:
            made_by = replace(made_by, text_chars=max(MIN_TEXT_CHARS, made_by.text_chars * 3 // 4))
        else:
            raise SkipImage("over-token-budget")


def focus_count(task) -> int:
    """The nodes a graph puzzle is about (always shown): the centre and its candidates, u and v,
    or the masked node."""
    if task.name == "link":
        return 2
    return 1 + (getattr(task, "candidates", 0) if task.name != "masking" else 0)


def make_within_budget(task, sample_id: str, source: SourceImage, others: list) -> tuple:
    """(puzzle, prompt, the source it was made from, prompt tokens) within the token budget.

    When the row is over, the puzzle is made again, with the same rng seed, from the source
    resized once from its original pixels (Lanczos) by the factor that should bring its image
    tokens under what the text leaves (tasks whose views have a fixed `size` get views smaller
    by the same factor); rounding to the patch grid can need a second, smaller try.
    Truth holds by construction: the smaller image simply is the source. Raises
    SkipImage('over-token-budget') when even the task's smallest image cannot fit.
    """
    budget, template = _worker["budget"], _worker["templates"][task.name]
    shown, scale, made_by = source, 1.0, task
    for _ in range(6):
        puzzle = made_by.make(rng_for(_worker["seed"], task.name, sample_id), shown, others)
        prompt = template.format(**puzzle.prompt_vars)
        if prompt.count(IMAGE_PLACEHOLDER) != len(puzzle.images):
            raise UserError(
                f"prompt template for '{task.name}' has {prompt.count(IMAGE_PLACEHOLDER)} {IMAGE_PLACEHOLDER} markers "
                f"but the puzzle shows {len(puzzle.images)} images"
            )
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
    raise SkipImage("over-token-budget")
