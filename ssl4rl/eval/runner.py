"""Run an evaluation: generate in batches, append each answer to predictions.jsonl as it comes
(so a rerun resumes and skips finished rows), then write summary.json and report.md.

A row that fails (an image that does not decode, a generation error) is recorded as an error
row, scored wrong and counted, and the run goes on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from PIL import Image
from tqdm import tqdm

from ssl4rl.errors import UserError
from ssl4rl.eval.extract import extract_choice
from ssl4rl.eval.heldout import is_heldout
from ssl4rl.eval.questions import load_mcq_template, mcq_prompt, read_questions
from ssl4rl.eval.report import write_markdown
from ssl4rl.eval.scoring import summarize, summarize_puzzles
from ssl4rl.images import load
from ssl4rl.reward import chance, compute_score
from ssl4rl.schema import MANIFEST, PUZZLE_COLUMNS, is_puzzle_build, split_files
from ssl4rl.tasks import TASKS

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
    respond: Callable[..., str] | None = None  # answers itself from the backend (not by generating): likelihood ranking

    @property
    def fingerprint(self) -> str:
        """The question's content (prompt, images, truth): a saved answer is reused only for it."""
        digest = hashlib.sha256(self.prompt.encode())
        for data in self.images:
            digest.update(hashlib.sha256(data or b"").digest())
        digest.update(json.dumps(self.meta.get("answer"), sort_keys=True, default=str).encode())
        return digest.hexdigest()[:32]


def questions_fingerprint(items: list[Item]) -> str:
    """All questions of a run by content, not path: a rebuilt data set has another."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(f"{item.key}\0{item.fingerprint}\n".encode())
    return digest.hexdigest()


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".msgpack", ".h5")


def model_fingerprint(model: str) -> str:
    """A local model folder by the content of its config and weight files (a retrained model
    in the same folder has another); a hub id by its name."""
    root = Path(model).expanduser()
    if not root.is_dir():
        return f"hub:{model}"
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file() and (p.suffix in WEIGHT_SUFFIXES or p.name == "config.json")):
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 24), b""):
                digest.update(chunk)
    return digest.hexdigest()

def _decode_all(images: list[bytes]) -> list[Image.Image]:
    decoded = []
    for data in images:
        picture = load(data)
        picture.load()
        decoded.append(picture)
    return decoded


def benchmark_items(data: str, limit: int | None, template_path: str | None, matcher: str = "ssl4rl", train_hashes: set[str] | None = None) -> list[Item]:
    """Benchmark questions; with `train_hashes` each is marked held out or not (`ssl4rl.eval.heldout`)."""
    template = load_mcq_template(template_path)
    items = []
    for q in read_questions(data, limit):
        def score(response: str, q=q) -> dict:
            choice = extract_choice(response, q.options, matcher)
            return {"choice": choice, "correct": choice == q.answer}

        meta = {"index": q.index, "group": q.group, "category": q.category, "l2_category": q.l2_category, "answer": q.answer, "chance": round(1 / len(q.options), 4)}
        if train_hashes is not None:
            meta["heldout"] = is_heldout(q.images, train_hashes)
        items.append(Item(q.index, mcq_prompt(q, template), q.images, score, meta, q.problem))
    return items


def puzzle_items(folder: str, limit: int | None) -> list[Item]:
    import pyarrow.parquet as pq

    files = split_files(folder, "test")
    if not Path(folder).is_dir() or not is_puzzle_build(folder):
        raise UserError(f"{folder}: not a puzzle build (no manifest.json or ssl4rl rows); --puzzles takes a folder made by `ssl4rl build`")
    if not files:
        raise UserError(f"{folder}: no test rows ({no_test_reason(folder)})")
    rows = []
    for file in files:
        table = pq.read_table(file)
        if not PUZZLE_COLUMNS <= set(table.column_names):
            raise UserError(f"{file}: not ssl4rl puzzle rows (columns: {', '.join(table.column_names)})")
        rows.extend(table.to_pylist()[: limit - len(rows) if limit else None])
        if limit and len(rows) >= limit:
            break
    items = []
    for row in rows:
        info, truth = row["extra_info"], row["reward_model"]["ground_truth"]

        def score(response: str, source=row["data_source"], truth=truth, info=info) -> dict:
            result = compute_score(source, response, truth, info)
            parsed = TASKS[result["task"]].parse(response) is not None
            return {"acc": result["acc"], "format": result["format"], "parsed": parsed, "correct": result["acc"] == 1.0}

        key = f"{info['task']}/{info['index']}"
        meta = {"index": key, "category": info["task"], "answer": truth, "chance": round(chance(row["data_source"], truth, info), 4)}
        items.append(Item(key, row["prompt"][0]["content"], [image["bytes"] for image in row["images"]], score, meta))
    return items


def no_test_reason(folder: str | Path) -> str:
    """Why a build has no test split, from its manifest: the fraction it was built with."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text())
        fraction, images = manifest["config"]["test_fraction"], manifest["source"]["images"]
    except (OSError, ValueError, KeyError, TypeError):
        return "no test-*.parquet files"
    if not fraction:
        return "built with --test-fraction 0: rebuild with a fraction above 0"
    return (f"built with --test-fraction {fraction} from {images} source image(s), none of which fell in the test split "
            "(split by content hash): rebuild from more images or with a larger --test-fraction")


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
    failed = {"choice": None, "correct": False, "acc": 0.0, "format": 0.0, "parsed": False}
    return {**item.meta, "question": item.fingerprint, "prediction": None, **failed, "error": message}


def _rescored(record: dict, item: Item) -> dict:
    record = {**record, **item.meta}
    if not record.get("error") and isinstance(record.get("prediction"), str):
        record.update(item.score(record["prediction"]))
    return record


def _respond(backend, ready: list[tuple[Item, list]]) -> list:
    """Each item's response, or the exception it raised: generated in one batch (a failing batch
    is retried row by row), or, for an item that answers itself, by its `respond`."""
    if ready and all(item.respond is not None for item, _ in ready):
        return [_attempt(item.respond, backend) for item, _ in ready]
    try:
        return backend.generate([i.prompt for i, _ in ready], [imgs for _, imgs in ready]) if ready else []
    except Exception:  # isolate the failing row instead of losing the batch
        return [_attempt(lambda: backend.generate([item.prompt], [images])[0]) for item, images in ready]


def _attempt(call, *args):
    try:
        return call(*args)
    except Exception as error:  # recorded as the row's error, the run goes on
        return error


# run.json keys that only inform (where the data was): moving a file does not change a run.
INFO_KEYS = ("data_path", "model_path")
OUR_FILES = (PREDICTIONS, SUMMARY, "report.md", RUN)


def _claim(out_dir: Path, identity: dict, overwrite: bool = False) -> None:
    """Resume only the same evaluation: predictions of another model (by its weights), other
    questions (by content) or other generation settings never mix; --overwrite starts afresh."""
    marker = out_dir / RUN
    if overwrite:
        for name in OUR_FILES:
            (out_dir / name).unlink(missing_ok=True)
    if marker.exists():
        try:
            saved = json.loads(marker.read_text())
        except ValueError:
            saved = {}
        changed = sorted(k for k in set(saved) | set(identity) if k not in INFO_KEYS and saved.get(k) != identity.get(k))
        if changed:
            raise UserError(
                f"{out_dir} holds predictions of another run ({', '.join(changed)} differ{'s' if len(changed) == 1 else ''}); "
                "pass --overwrite to start afresh or choose another --out"
            )
    elif (out_dir / PREDICTIONS).exists() and not overwrite:
        raise UserError(f"{out_dir} holds predictions without {RUN}; pass --overwrite to start afresh or choose another --out")
    marker.write_text(json.dumps(identity, indent=2, sort_keys=True) + "\n")


def run(items: list[Item], backend, out: str, batch_size: int = 8, puzzles: bool = False, circular: bool = False, label: str = "",
        identity: dict | None = None, overwrite: bool = False) -> dict:
    """`identity`: what must match for `out` to be resumed (questions and model are fingerprinted
    here when absent); a saved answer is reused only for a question of identical content."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    identity = {"model": label, **(identity or {}), "questions": questions_fingerprint(items), "puzzles": puzzles}
    _claim(out_dir, identity, overwrite)
    predictions = out_dir / PREDICTIONS
    fingerprints = {item.key: item.fingerprint for item in items}
    done = {k: r for k, r in _done(predictions).items() if r.get("question") == fingerprints.get(k)}
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
            responses = _respond(backend, ready)
            for (item, _), response in zip(ready, responses):
                if isinstance(response, Exception):
                    records.append(_error_record(item, f"generation failed: {response}"))
                else:
                    records.append({**item.meta, "question": item.fingerprint, "prediction": response, **item.score(response), "error": None})
            for record in records:
                sink.write(json.dumps(record) + "\n")
                done[record["index"]] = record
            sink.flush()
            bar.update(len(batch))
    bar.close()
    # Scored again from the saved responses, so the current matcher and held-out set apply.
    records = [_rescored(done[item.key], item) for item in items if item.key in done]
    summary = summarize_puzzles(records) if puzzles else summarize(records, circular=circular)
    summary["model"] = label
    (out_dir / SUMMARY).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    write_markdown(summary, out_dir / "report.md")
    return summary
