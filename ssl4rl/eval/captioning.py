"""A resumable CapArena-Auto run: caption every image (captions.jsonl), judge every battle
(battles.jsonl), then write summary.json and report.md.

Each caption and each verdict is one JSON line appended as soon as it exists, so Ctrl-C loses
at most the line being written (a torn last line is dropped on the next run). A rerun reuses a
caption only for the same image bytes and prompt, and a verdict only for the same judge, image
and texts; failed battles (no reply from the judge) and missing ones are tried again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from tqdm import tqdm

from ssl4rl.eval.caparena import Entry, orders_for, outcome, read_release, score, words
from ssl4rl.eval.judge import JudgeFailed, battle_fingerprint, parse_verdict
from ssl4rl.eval.runner import SUMMARY, _claim
from ssl4rl.images import load
from ssl4rl.tasks.common import IMAGE_PLACEHOLDER

CAPTIONS = "captions.jsonl"
BATTLES = "battles.jsonl"
# CapArena's repository gives no captioning prompt; this is the plain request for a detailed one.
DEFAULT_PROMPT = "Describe this image in detail."
DECIDED = ("win", "loss", "tie", "malformed")  # kept by a rerun; failed and missing are tried again
STOP_AFTER_FAILURES = 5  # consecutive failed battles: the judge is down or misconfigured


def _records(path: Path, key: str) -> dict[str, dict]:
    """Saved records by `key`; the file is rewritten without a torn last line."""
    records = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
                records[record[key]] = record
            except (ValueError, KeyError, TypeError):
                continue
    path.write_text("".join(json.dumps(r) + "\n" for r in records.values()))
    return records


def _append(sink, record: dict) -> None:
    sink.write(json.dumps(record) + "\n")
    sink.flush()


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _image_bytes(entry: Entry) -> tuple[bytes | None, str | None]:
    try:
        return entry.path.read_bytes(), None
    except FileNotFoundError:
        return None, f"image missing: {entry.path}"
    except OSError as error:
        return None, f"image unreadable: {entry.path}: {error}"


def _caption_fingerprint(data: bytes | None, prompt: str) -> str:
    return hashlib.sha256(hashlib.sha256(data or b"").digest() + prompt.encode()).hexdigest()[:32]


def make_captions(entries: list[Entry], backend, out_dir: Path, prompt: str, batch_size: int, label: str = "") -> dict[str, dict]:
    """Caption records by image; an image that is missing or does not decode, or whose
    generation fails, gets a record with `caption` None and the reason in `error`."""
    path = out_dir / CAPTIONS
    saved = _records(path, "image")
    text = f"{IMAGE_PLACEHOLDER}{prompt}"
    records, todo = {}, []
    for entry in entries:
        data, problem = _image_bytes(entry)
        fingerprint = _caption_fingerprint(data, prompt)
        old = saved.get(entry.image)
        if old and old.get("fingerprint") == fingerprint and old.get("caption") is not None:
            records[entry.image] = old
        else:
            todo.append((entry, problem, fingerprint))  # bytes read again when captioned: 600 photos stay on disk
    bar = tqdm(total=len(entries), initial=len(entries) - len(todo), unit="caption", desc=f"captions {label}".strip())
    with open(path, "a") as sink:
        for start in range(0, len(todo), batch_size):
            batch, ready = todo[start : start + batch_size], []
            for entry, problem, fingerprint in batch:
                if problem is None:
                    try:
                        picture = load(entry.path.read_bytes())
                        picture.load()
                        ready.append((entry, fingerprint, picture))
                        continue
                    except Exception as error:  # a corrupt file: recorded, not fatal
                        problem = f"image does not decode: {entry.path}: {error}"
                record = {"image": entry.image, "fingerprint": fingerprint, "caption": None, "error": problem}
                _append(sink, record)
                records[entry.image] = record
            try:
                replies = backend.generate([text] * len(ready), [[p] for _, _, p in ready]) if ready else []
            except Exception:  # isolate the failing image instead of losing the batch
                replies = []
                for _, _, picture in ready:
                    try:
                        replies.extend(backend.generate([text], [[picture]]))
                    except Exception as error:
                        replies.append(error)
            for (entry, fingerprint, _), reply in zip(ready, replies):
                failed = isinstance(reply, Exception)
                record = {"image": entry.image, "fingerprint": fingerprint, "caption": None if failed else reply,
                          "error": f"generation failed: {reply}" if failed else None}  # fmt: skip
                _append(sink, record)
                records[entry.image] = record
            bar.update(len(batch))
    bar.close()
    return records


def _missing_reason(entry: Entry, caption: dict) -> str | None:
    if caption.get("caption") is None:
        return f"no caption of the model ({caption.get('error')})"
    if entry.baseline_caption is None:
        return f"no {entry.baseline} caption for {entry.image} in the release"
    if entry.reference is None:
        return f"no human reference caption for {entry.image} in the release"
    return None


def judge_battles(entries: list[Entry], captions: dict[str, dict], judge, out_dir: Path, orders: str) -> list[dict]:
    """Battle records in schedule order (image, then order), each appended as it is judged."""
    path = out_dir / BATTLES
    saved = _records(path, "key")
    schedule = [(entry, order) for entry in entries for order in orders_for(entry.image, orders)]
    records, failures = [], 0
    bar = tqdm(total=len(schedule), unit="battle", desc="battles")
    with open(path, "a") as sink:
        for entry, order in schedule:
            key = f"{entry.image}#{order}"
            base = {"key": key, "image": entry.image, "baseline": entry.baseline, "order": order}
            missing = _missing_reason(entry, captions[entry.image])
            if missing:
                record = {**base, "outcome": "missing", "error": missing}
                _append(sink, record)
                records.append(record)
                bar.update()
                continue
            model_caption = captions[entry.image]["caption"]
            first, second = (model_caption, entry.baseline_caption) if order == "model_first" else (entry.baseline_caption, model_caption)
            image = entry.path.read_bytes()
            fingerprint = battle_fingerprint(judge.identity, image, first, second, entry.reference)
            old = saved.get(key)
            if old and old.get("fingerprint") == fingerprint and old.get("outcome") in DECIDED:
                records.append(old)
                bar.update()
                continue
            record = {**base, "fingerprint": fingerprint, "judge": judge.identity}
            try:
                reply, attempts = judge(image, first, second, entry.reference)
                verdict = parse_verdict(reply)
                record.update(outcome=outcome(verdict, order), verdict=verdict, reply=reply, attempts=attempts, error=None)
                failures = 0
            except JudgeFailed as error:
                record.update(outcome="failed", verdict=None, reply=None, error=str(error))
                failures += 1
            _append(sink, record)
            records.append(record)
            bar.update()
            if failures >= STOP_AFTER_FAILURES:
                from ssl4rl.errors import UserError

                bar.close()
                raise UserError(f"the judge failed {failures} battles in a row, last: {record['error']}; "
                                f"they are recorded as failed in {path} and a rerun tries them again")  # fmt: skip
    bar.close()
    return records


def summarize(entries: list[Entry], captions: dict[str, dict], battles: list[dict], label: str, judge_label: str, orders: str) -> dict:
    """summary.json: CapArena's scores, the battles' outcomes, and caption lengths in words."""
    made = {name: r["caption"] for name, r in captions.items() if r.get("caption") is not None}
    summary = {"benchmark": "caparena", "model": label, "judge": judge_label, "orders": orders, "images": len(entries),
               "captions": len(made), "caption_errors": len(entries) - len(made), **score(battles)}  # fmt: skip
    summary["words"] = round(sum(map(words, made.values())) / len(made), 2) if made else None
    for name, row in summary["per_baseline"].items():
        mine = [e for e in entries if e.baseline == name]
        model_words = [words(made[e.image]) for e in mine if e.image in made]
        baseline_words = [words(e.baseline_caption) for e in mine if e.baseline_caption]
        row["words"] = round(sum(model_words) / len(model_words), 2) if model_words else None
        row["baseline_words"] = round(sum(baseline_words) / len(baseline_words), 2) if baseline_words else None
    return summary


def run_caparena(data: str, images: str | None, backend, judge, out: str, *, prompt: str = DEFAULT_PROMPT, orders: str = "both",
                 batch_size: int = 8, limit: int | None = None, label: str = "", identity: dict | None = None, overwrite: bool = False) -> dict:  # fmt: skip
    """Read the release, caption, judge, score; `identity` (model and generation settings) must
    match for `out` to be resumed; the judge need not (its verdicts are matched one by one)."""
    from ssl4rl.eval.caparena_report import markdown

    entries = read_release(data, images, limit)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if overwrite:
        for name in (CAPTIONS, BATTLES):
            (out_dir / name).unlink(missing_ok=True)
    prompt_hash = hashlib.sha256(prompt.encode()).hexdigest()[:16]
    _claim(out_dir, {"model": label, **(identity or {}), "bench": "caparena", "prompt": prompt_hash}, overwrite)
    captions = make_captions(entries, backend, out_dir, prompt, batch_size, label)
    battles = judge_battles(entries, captions, judge, out_dir, orders)
    summary = summarize(entries, captions, battles, label, getattr(judge, "label", judge.identity), orders)
    _write_atomic(out_dir / SUMMARY, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    _write_atomic(out_dir / "report.md", markdown(summary))
    return summary
