"""Run an evaluation: generate in batches, append each answer to predictions.jsonl as it comes
(so a rerun resumes and skips finished rows), then write summary.json and report.md.

A row that fails (an image that does not decode, a generation error) is recorded as an error
row, scored wrong and counted, and the run goes on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from PIL import Image
from tqdm import tqdm

from ssl4rl.errors import UserError
from ssl4rl.eval.extract import extract_choice
from ssl4rl.eval.questions import load_mcq_template, mcq_prompt, read_questions
from ssl4rl.eval.report import write_markdown
from ssl4rl.eval.scoring import summarize, summarize_puzzles
from ssl4rl.images import load
from ssl4rl.reward import compute_score

PREDICTIONS = "predictions.jsonl"
SUMMARY = "summary.json"
RUN = "run.json"


@dataclass
class Item:
    """One row to answer: its prompt and images, and how to score the response."""

    key: str
    prompt: str
    images: list[bytes]
    score: Callable[[str], dict]  # response -> record fields (choice/correct or acc/format)
    meta: dict
    problem: str | None = None  # set when the row cannot be asked as written: an error row, never asked


def _decode_all(images: list[bytes]) -> list[Image.Image]:
    decoded = []
    for data in images:
        picture = load(data)
        picture.load()
        decoded.append(picture)
    return decoded


def benchmark_items(data: str, limit: int | None, template_path: str | None) -> list[Item]:
    template = load_mcq_template(template_path)
    items = []
    for q in read_questions(data, limit):
        def score(response: str, q=q) -> dict:
            choice = extract_choice(response, q.options)
            return {"choice": choice, "correct": choice == q.answer}

        meta = {"index": q.index, "group": q.group, "category": q.category, "l2_category": q.l2_category, "answer": q.answer}
        items.append(Item(q.index, mcq_prompt(q, template), q.images, score, meta, q.problem))
    return items


def puzzle_items(folder: str, limit: int | None) -> list[Item]:
    import pyarrow.parquet as pq

    files = sorted(Path(folder).glob("test-*.parquet"))
    if not files:
        raise UserError(f"{folder}: no test-*.parquet files (a build folder made by `ssl4rl build`)")
    items = []
    for file in files:
        for row in pq.read_table(file).to_pylist():
            info, truth = row["extra_info"], row["reward_model"]["ground_truth"]

            def score(response: str, source=row["data_source"], truth=truth, info=info) -> dict:
                result = compute_score(source, response, truth, info)
                return {"acc": result["acc"], "format": result["format"], "correct": result["acc"] == 1.0}

            key = f"{info['task']}/{info['index']}"
            meta = {"index": key, "category": info["task"], "answer": truth}
            items.append(Item(key, row["prompt"][0]["content"], [image["bytes"] for image in row["images"]], score, meta))
            if limit and len(items) >= limit:
                return items
    return items


def _done(path: Path) -> dict[str, dict]:
    """Records already written; a half-written last line (an interrupted run) is dropped."""
    records = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            records[record["index"]] = record
    return records


def _batches(items: list[Item], size: int) -> Iterator[list[Item]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _error_record(item: Item, message: str) -> dict:
    failed = {"choice": None, "correct": False, "acc": 0.0, "format": 0.0}
    return {**item.meta, "prediction": None, **failed, "error": message}


def _claim(out_dir: Path, identity: dict) -> None:
    """Resume only the same evaluation: predictions of another model or data set never mix."""
    marker = out_dir / RUN
    if marker.exists() and json.loads(marker.read_text()) != identity:
        raise UserError(f"{out_dir} holds predictions of another run ({marker.name} differs); choose another --out")
    marker.write_text(json.dumps(identity, indent=2, sort_keys=True) + "\n")


def run(items: list[Item], backend, out: str, batch_size: int = 8, puzzles: bool = False, circular: bool = False, label: str = "", identity: dict | None = None) -> dict:
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    _claim(out_dir, identity or {"model": label, "rows": len(items), "puzzles": puzzles})
    predictions = out_dir / PREDICTIONS
    done = _done(predictions)
    # Rewrite what is kept, so a torn last line does not stay in the file.
    predictions.write_text("".join(json.dumps(done[k]) + "\n" for k in done))
    todo = [item for item in items if item.key not in done]
    bar = tqdm(total=len(items), initial=len(items) - len(todo), unit="q", desc=f"eval {label}".strip())
    with open(predictions, "a") as sink:
        for batch in _batches(todo, batch_size):
            ready, records = [], []
            for item in batch:
                if item.problem:
                    records.append(_error_record(item, item.problem))
                    continue
                try:
                    ready.append((item, _decode_all(item.images)))
                except Exception as error:  # a corrupt image: recorded, not fatal
                    records.append(_error_record(item, f"image does not decode: {error}"))
            try:
                responses = backend.generate([i.prompt for i, _ in ready], [imgs for _, imgs in ready]) if ready else []
            except Exception:  # isolate the failing row instead of losing the batch
                responses = []
                for item, images in ready:
                    try:
                        responses.extend(backend.generate([item.prompt], [images]))
                    except Exception as error:
                        responses.append(error)
            for (item, _), response in zip(ready, responses):
                if isinstance(response, Exception):
                    records.append(_error_record(item, f"generation failed: {response}"))
                else:
                    records.append({**item.meta, "prediction": response, **item.score(response), "error": None})
            for record in records:
                sink.write(json.dumps(record) + "\n")
                done[record["index"]] = record
            sink.flush()
            bar.update(len(batch))
    bar.close()
    order = [item.key for item in items]
    records = [done[k] for k in order if k in done]
    summary = summarize_puzzles(records) if puzzles else summarize(records, circular=circular)
    summary["model"] = label
    (out_dir / SUMMARY).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    write_markdown(summary, out_dir / "report.md")
    return summary
