"""Graphs as a modality: each node of a graph source becomes an item, its puzzles text only.

A worker loads the graph once (ssl4rl.sources.graph_source), makes a node's puzzles and, when a
row is over the token budget, shows fewer nodes, then shorter texts. Skips: the reader's (drops
while reading the graph) and the task's own (an isolated node, too few distractors, ...). The
manifest gets `graph_shown`: what the prompts show, per task.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from ssl4rl import uri
from ssl4rl.budget import length_stats
from ssl4rl.build_jobs import Job, JobResult, Worker
from ssl4rl.errors import SkipItem, UserError
from ssl4rl.schema import GRAPH_ABILITY, content_key, make_row
from ssl4rl.sources.graph import Graph
from ssl4rl.sources.graph_samples import synthetic_graph, synthetic_kg
from ssl4rl.sources.graph_source import GraphRef, load_graph, open_graph_source
from ssl4rl.tasks import TASKS
from ssl4rl.tasks.common import IMAGE_PLACEHOLDER, rng_for
from ssl4rl.tasks.shape import GraphTask

TEXT_ESTIMATE = True  # graph prompts are all text: without a processor, the calibrated estimate
MIN_TEXT_CHARS = 100  # node texts are never cut shorter to fit: fewer nodes are shown first, then the row is skipped


def _needs_knowledge_graph(task_name: str) -> bool:
    return getattr(TASKS[task_name], "knowledge_graph", False)


def open_reader(cfg, specs) -> object:
    """The graph the source names, one item per node; a task that asks for relations needs a
    knowledge graph. Graphs are read from local folders only, never from a URI."""
    if uri.is_uri(cfg.source) or uri.is_uri(cfg.data):
        raise UserError(f"{uri.shown(cfg.data if uri.is_uri(cfg.data) else cfg.source)}: graphs are read from a local folder or a bundled graph, not a URI")
    reader = open_graph_source(cfg.source, cfg.data)
    for name in dict.fromkeys(spec.task for spec in specs):
        if _needs_knowledge_graph(name) and not reader.graph.is_kg:
            raise UserError(f"{cfg.source}: {name} needs a knowledge graph (train.txt triples, or an edges table with a relation column)")
    return reader


def item_count(reader) -> int:
    return len(reader.graph)


def check_task(task: GraphTask, template: str) -> None:
    """The task's options and prompt template, tried on a bundled synthetic graph."""
    graph = synthetic_kg() if _needs_knowledge_graph(task.name) else synthetic_graph()
    for node in range(len(graph)):
        try:
            puzzle = task.make(rng_for(0, "probe", node), graph, len(graph) - 1 - node)
        except SkipItem:
            continue
        try:
            prompt = template.format(**puzzle.prompt_vars)
        except (KeyError, IndexError, ValueError) as error:
            raise UserError(f"prompt template for '{task.name}' does not fit the puzzle: {error!r}") from None
        if IMAGE_PLACEHOLDER in prompt:
            raise UserError(f"prompt template for '{task.name}' has {IMAGE_PLACEHOLDER} markers, but graph puzzles show no images")
        return


def worker_context(cfg, reader) -> GraphRef:
    """The graph travels by reference: every worker loads it once."""
    return reader.ref


def load_context(ref: GraphRef):
    return load_graph(ref)


def make_rows(job: Job, task: GraphTask, difficulty: str, worker: Worker) -> JobResult:
    """The rows of one graph node: its puzzles, text only (no images)."""
    graph = worker.context
    node = graph.index[job.source_id]
    rows, answers, lengths, shown = [], [], [], []
    source_hash = content_key(job.data).hex()
    for sample_id, _ in job.samples:
        try:
            puzzle, prompt, tokens = make_within_budget(task, sample_id, graph, node, worker)
        except SkipItem as skip:
            return JobResult(job.split, job.seq, [], [], skip.reason)
        lengths.append(tokens)
        shown.append(shown_in(task, puzzle.params))
        rows.append(make_row(task=task.name, prompt=prompt, images=[], answer=puzzle.answer, source=worker.source, source_id=sample_id,
                             split=job.split, index=-1, params=puzzle.params, difficulty=difficulty, source_hash=source_hash, ability=GRAPH_ABILITY))  # fmt: skip
        answers.append(puzzle.answer)
    return JobResult(job.split, job.seq, rows, answers, tokens=lengths, shown=shown)


def make_within_budget(task: GraphTask, sample_id: str, graph: Graph, node: int, worker: Worker) -> tuple:
    """(puzzle, prompt, prompt tokens) within the token budget: when a row is over, fewer nodes
    are shown (the farthest go first: the shown neighbourhood fills nearest first, the focus
    nodes taking turns), down to the focus nodes and about one neighbour each; then texts are cut
    shorter, down to MIN_TEXT_CHARS; each time with the same rng seed. Raises
    SkipItem('over-token-budget') when even the smallest puzzle does not fit."""
    budget, template = worker.budget, worker.templates[task.name]
    made_by = task
    fewest = 2 * task.focus_nodes
    while True:
        puzzle = made_by.make(rng_for(worker.seed, task.name, sample_id), graph, node)
        prompt = template.format(**puzzle.prompt_vars)
        tokens = budget.count(prompt, [])
        if budget.fits(tokens):
            return puzzle, prompt, tokens
        if made_by.max_nodes > fewest:
            made_by = replace(made_by, max_nodes=max(fewest, made_by.max_nodes - max(1, made_by.max_nodes // 8)))
        elif made_by.text_chars > MIN_TEXT_CHARS:
            made_by = replace(made_by, text_chars=max(MIN_TEXT_CHARS, made_by.text_chars * 3 // 4))
        else:
            raise SkipItem("over-token-budget")


def shown_in(task: GraphTask, params: dict) -> dict:
    """What one graph row shows, for the manifest: nodes, edges (facts), whether every focus node
    (the task's FOCUS: the centre, head, masked node, or both ends) shows an edge, and texts cut
    (how many, to what)."""
    ends = {n for pair in params["edges"] for n in pair}
    return {"task": task.name, "nodes": params["nodes"], "edges": len(params["edges"]),
            "focus_edge": all(params[key] in ends for key in task.FOCUS), "cut": params.get("cut", 0), "text_chars": params["text_chars"]}  # fmt: skip


def fill_rows(rows: list[dict], data: bytes) -> None:
    """Graph rows are all text: nothing was left out."""


def tally(tallies: dict, shown: dict) -> None:
    """Count one kept row's `shown_in` into its task's tally (JSON-able: it is saved for resume)."""
    tally = tallies.setdefault(shown["task"], {"rows": 0, "focus_edge": 0, "cut_rows": 0, "cut_texts": 0, "nodes": {}, "edges": {}, "text_chars": {}})
    tally["rows"] += 1
    tally["focus_edge"] += shown["focus_edge"]
    tally["cut_rows"] += shown["cut"] > 0
    tally["cut_texts"] += shown["cut"]
    for key in ("nodes", "edges") + (("text_chars",) if shown["cut"] else ()):
        value = str(shown[key])
        tally[key][value] = tally[key].get(value, 0) + 1


def summary(tallies: list[dict]) -> dict:
    """`graph_shown`, per graph task over the splits' tallies: median nodes and edges shown, the
    share of rows whose focus nodes show an edge, the share of rows with a text cut and the
    shortest cut."""
    if not any(tallies):
        return {}
    shown = {}
    for task in sorted({t for split in tallies for t in split}):
        parts = [split[task] for split in tallies if task in split]
        rows = sum(p["rows"] for p in parts)

        def merged(key: str) -> dict:
            total: Counter = Counter()
            for part in parts:
                total.update({int(k): v for k, v in part[key].items()})
            return total

        cut_to = merged("text_chars")
        shown[task] = {
            "rows": rows,
            "nodes_median": length_stats(merged("nodes")).get("median"),
            "edges_median": length_stats(merged("edges")).get("median"),
            "focus_shows_edge": round(sum(p["focus_edge"] for p in parts) / max(rows, 1), 4),
            "rows_with_texts_cut": round(sum(p["cut_rows"] for p in parts) / max(rows, 1), 4),
            "texts_cut": sum(p["cut_texts"] for p in parts),
            "shortest_cut_chars": min(cut_to) if cut_to else None,
        }
    return {"graph_shown": shown}
