"""Build throughput and memory of `ssl4rl build`, next to a codec-only floor.

    python bench/build_throughput.py [--images N] [--tasks rotation,jigsaw,...] [--workers 1,2] [--ray] [--json PATH]

Each build runs as the real CLI in a subprocess, so the numbers include process start, the
worker pool and parquet writing; peak RSS is summed over the whole process tree. The floor
is what one process needs just to decode each source image once and encode the row's output
images: the part of the work no builder can avoid; N workers are compared with N times it.
`--ray` also builds with `--engine ray` on a local Ray cluster of two one-CPU nodes (started
and stopped by the script, as `ray start` would on two machines), next to the local pool at the
same core count (the RSS of the Ray processes is not counted).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from ssl4rl.images import decode, encode, load
from ssl4rl.schema import MANIFEST, split_files
from ssl4rl.sources.samples import PHOTOS, samples_dir

TARGET_ROWS_PER_S = {"rotation": 70, "jigsaw": 70, "position": 350, "contrastive": 90}  # 2 workers, from the issue
TARGET_RSS_MB = 600
POLL_SECONDS = 0.02
SIDES = (300, 1000)


# ---------------------------------------------------------------- input photos
def make_photos(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """`count` distinct RGB JPEGs (quality 90) of 300-1000 px per side, cut from the bundled
    photos: most benchmark images are JPEGs of about that size."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    root = samples_dir()
    photos = [Image.open(root / name).convert("RGB") for name in PHOTOS if (root / name).is_file()]
    paths, seen = [], set()
    for i in range(count):
        photo = photos[i % len(photos)]
        w, h = int(rng.integers(photo.width // 2, photo.width + 1)), int(rng.integers(photo.height // 2, photo.height + 1))
        x, y = int(rng.integers(0, photo.width - w + 1)), int(rng.integers(0, photo.height - h + 1))
        size = tuple(int(s) for s in rng.integers(SIDES[0], SIDES[1] + 1, size=2))
        image = photo.resize(size, Image.Resampling.BICUBIC, box=(x, y, x + w, y + h))
        path = folder / f"photo_{i:05d}.jpg"
        image.save(path, "JPEG", quality=90)
        seen.add(hashlib.sha256(path.read_bytes()).digest())
        paths.append(path)
    if len(seen) != count:
        raise RuntimeError(f"only {len(seen)} of {count} photos are distinct")
    return paths


def link_first(paths: list[Path], folder: Path) -> Path:
    """A folder holding the first photos of a larger set (hard links: no copy, same bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in paths:
        os.link(path, folder / path.name)
    return folder


# ---------------------------------------------------------------- memory of a process tree
def _children_map() -> dict[int, list[int]]:
    """ppid -> pids, from /proc/*/stat (this kernel has no /proc/<pid>/task/*/children)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])  # the name may hold spaces
        children.setdefault(ppid, []).append(int(entry))
    return children


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kb(pid: int) -> int:
    """VmRSS of `pid` plus all its descendants, summed (shared pages count once per process)."""
    children, total, todo = _children_map(), 0, [pid]
    while todo:
        current = todo.pop()
        total += _rss_kb(current)
        todo.extend(children.get(current, []))
    return total


class PeakRss:
    """Polls a process tree's RSS from a thread until stopped; `peak_mb` is the largest sum seen."""

    def __init__(self, pid: int):
        self.pid, self.peak_kb = pid, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, tree_rss_kb(self.pid))
            self._stop.wait(POLL_SECONDS)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_kb / 1024


# ---------------------------------------------------------------- the real build
def run_build(task: str, source: Path, out: Path, workers: int, cluster: dict | None = None) -> dict:
    """One `ssl4rl build` as a subprocess: wall time, rows, and peak RSS of its process tree;
    with `cluster` (ssl4rl.ray_local), on that Ray cluster."""
    command = [sys.executable, "-m", "ssl4rl", "build", task, "--source", str(source), "--out", str(out),
               "--workers", str(workers), "--quiet", "--overwrite", "--test-fraction", "0.1"]  # fmt: skip
    if cluster:
        command += ["--engine", "ray", "--ray-address", cluster["address"]]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cluster["env"] if cluster else None)
    monitor = PeakRss(process.pid)
    _, stderr = process.communicate()
    seconds = time.perf_counter() - start
    peak_mb = monitor.stop()
    if process.returncode:
        raise RuntimeError(f"build {task} failed ({process.returncode}):\n{stderr}")
    manifest = json.loads((out / MANIFEST).read_text())
    rows = sum(manifest["rows"].values())
    return {"task": task, "engine": "ray" if cluster else "local", "workers": workers, "images": len(list(source.glob("*.jpg"))), "rows": rows,
            "seconds": seconds, "rows_per_s": rows / seconds, "peak_rss_mb": peak_mb}  # fmt: skip


def fixed_cost(folder: Path, photo: Path, out: Path, workers: int) -> float:
    """Wall time of a 1-image build: process start, imports, checks and pool start, paid once
    per build, so it weighs on rows/s of short builds."""
    return run_build("position", link_first([photo], folder), out, workers)["seconds"]


# ---------------------------------------------------------------- codec-only floor
def built_rows(out: Path) -> list[tuple[str, list[bytes]]]:
    """(source id, output image bytes) of every row of a build, train and test."""
    rows = []
    for shard in split_files(out):
        table = pq.read_table(shard, columns=["images", "extra_info"]).to_pylist()
        rows += [(row["extra_info"]["source_id"], [image["bytes"] for image in row["images"]]) for row in table]
    return rows


def loaded(data: bytes) -> Image.Image:
    """Fully decoded pixels: Image.open is lazy, and the decode must stay out of the timing."""
    image = load(data)
    image.load()
    return image


def codec_floor(source: Path, out: Path) -> dict:
    """Rows/s if a build did nothing but decode each source once and encode its outputs.

    Outputs byte-identical to the source were passed through and cost nothing; the others are
    decoded beforehand (untimed) so only `encode` is timed, in the build's image format."""
    image_format = json.loads((out / MANIFEST).read_text())["image_format"]
    rows = built_rows(out)
    decode_s = encode_s = 0.0
    for source_id, outputs in rows:
        data = (source / source_id).read_bytes()
        start = time.perf_counter()
        decode(data, 1, source_id)
        decode_s += time.perf_counter() - start
        for image in [loaded(b) for b in outputs if b != data]:
            start = time.perf_counter()
            encode(image, image_format)
            encode_s += time.perf_counter() - start
    return {"rows": len(rows), "decode_s": decode_s, "encode_s": encode_s, "rows_per_s": len(rows) / (decode_s + encode_s)}


# ---------------------------------------------------------------- report
def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_table(results: list[dict]) -> None:
    header = f"{'task':<12}{'engine':>7}{'workers':>8}{'rows/s':>9}{'peak RSS MB':>13}{'floor rows/s':>14}{'build/floor':>13}{'target':>9}{'speed':>7}{'RSS':>6}"
    print(header)
    print("-" * len(header))
    for r in results:
        target = TARGET_ROWS_PER_S.get(r["task"]) if r["workers"] == 2 and r["engine"] == "local" else None
        speed = verdict(r["rows_per_s"] >= target) if target else "-"
        floor = r["floor_rows_per_s"] * r["workers"]  # N processes: N times one process's floor, at best
        print(
            f"{r['task']:<12}{r['engine']:>7}{r['workers']:>8}{r['rows_per_s']:>9.1f}{r['peak_rss_mb']:>13.0f}{floor:>14.1f}"
            f"{r['rows_per_s'] / floor:>13.2f}{target or '-':>9}{speed:>7}{verdict(r['peak_rss_mb'] <= TARGET_RSS_MB):>6}"
        )
    print(f"floor: N workers against N x the 1-process codec floor; targets apply to 2 local workers (jigsaw at its default 2x2); "
          f"RSS target <= {TARGET_RSS_MB} MB")  # fmt: skip
    local = {(r["task"], r["workers"]): r["rows_per_s"] for r in results if r["engine"] == "local"}
    for r in results:
        if r["engine"] == "ray" and (r["task"], r["workers"]) in local:
            ratio = r["rows_per_s"] / local[(r["task"], r["workers"])]
            print(f"{r['task']}: Ray engine on {r['workers']} one-CPU nodes / local pool of {r['workers']} workers: {ratio:.2f} ({verdict(ratio >= 0.8)}: >= 0.8)")


def measure_builds(tasks: list[str], worker_counts: list[int], source: Path, tmp: Path, cluster: dict | None = None) -> list[dict]:
    """Every (task, workers) build, each with the codec floor of its task; with `cluster`, also
    the Ray engine on it (as many workers as the cluster has nodes)."""
    results = []
    for task in tasks:
        out, floor = tmp / f"out_{task}", None
        runs = [(workers, None) for workers in worker_counts] + ([(len(cluster["groups"]), cluster)] if cluster else [])
        for workers, on in runs:
            result = run_build(task, source, out, workers, on)
            floor = floor or codec_floor(source, out)  # the output is identical for any worker count and engine
            results.append({**result, "floor_rows_per_s": floor["rows_per_s"]})
            print(f"  {task} {result['engine']} x{workers}: {result['rows']} rows in {result['seconds']:.2f} s; "
                  f"floor: decode {floor['decode_s']:.2f} s + encode {floor['encode_s']:.2f} s", flush=True)  # fmt: skip
    return results


def rss_scaling(small: Path, large: Path, out: Path) -> dict:
    """Peak RSS of rotation x2 on N and 3N images: bounded memory means a ratio near 1."""
    runs = [run_build("rotation", folder, out, 2) for folder in (small, large)]
    ratio = runs[1]["peak_rss_mb"] / runs[0]["peak_rss_mb"]
    print(f"RSS vs N (rotation, 2 workers): {runs[0]['images']} images {runs[0]['peak_rss_mb']:.0f} MB, "
          f"{runs[1]['images']} images {runs[1]['peak_rss_mb']:.0f} MB, ratio {ratio:.2f} ({verdict(ratio < 1.2)}: < 1.2)")  # fmt: skip
    return {"runs": runs, "ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000, help="input photos (default: %(default)s)")
    parser.add_argument("--tasks", default=",".join(TARGET_ROWS_PER_S), help="comma-separated tasks")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts (default: %(default)s)")
    parser.add_argument("--ray", action="store_true", help="also build with --engine ray on a local two-node Ray cluster")
    parser.add_argument("--no-scaling", action="store_true", help="skip the RSS-vs-N check (3N photos, two more builds)")
    parser.add_argument("--json", help="also save the results to this JSON file")
    args = parser.parse_args()
    tasks, worker_counts = args.tasks.split(","), [int(w) for w in args.workers.split(",")]

    with tempfile.TemporaryDirectory(prefix="ssl4rl-bench-") as tmp:
        tmp = Path(tmp)
        print(f"making {(1 if args.no_scaling else 3) * args.images} photos ...", flush=True)
        photos = make_photos(tmp / "photos_3n", (1 if args.no_scaling else 3) * args.images)
        source = link_first(photos[: args.images], tmp / "photos_n")
        fixed = fixed_cost(tmp / "photos_1", photos[0], tmp / "out_fixed", max(worker_counts))
        print(f"fixed cost per build (1 image, {max(worker_counts)} workers): {fixed:.2f} s", flush=True)
        load_before = os.getloadavg()[0]
        if args.ray:
            from ssl4rl.ray_local import local_cluster

            with local_cluster(nodes=2, cpus=1, pythonpath=str(Path(__file__).resolve().parents[1])) as cluster:
                results = measure_builds(tasks, worker_counts, source, tmp, cluster)
        else:
            results = measure_builds(tasks, worker_counts, source, tmp)
        print()
        print_table(results)
        print(f"1-min load average {load_before:.2f} before the builds, {os.getloadavg()[0]:.2f} after, "
              f"on {os.cpu_count()} CPUs (other load skews the timings)\n")  # fmt: skip
        scaling = None if args.no_scaling else rss_scaling(source, tmp / "photos_3n", tmp / "out_scaling")

    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        payload = {"images": args.images, "cpus": os.cpu_count(), "fixed_cost_s": fixed, "load_before": load_before,
                   "builds": results, "rss_scaling": scaling}  # fmt: skip
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
