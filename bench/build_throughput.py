"""Build throughput and memory of `ssl4rl build`, next to a codec-only floor.

    python bench/build_throughput.py [--images N] [--tasks rotation,jigsaw,...] [--workers 1,2] [--ray] [--json PATH]

Each build runs as the real CLI in a subprocess, so the numbers include process start, the
worker pool and parquet writing; peak RSS is summed over the whole process tree. The floor
is what one process needs just to decode each source image once and encode the row's output
images; the floor with the budget's resize also times the one Lanczos step (from a reduced-scale
JPEG decode) that brings a source over the token budget to the size it is shown at: the part of
the work no builder that keeps the budget can avoid. N workers are compared with N times it.
`--ray` also builds with `--engine ray` on a local Ray cluster of two one-CPU nodes (started
and stopped by the script, as `ray start` would on two machines, with ssl4rl installed on both),
next to the local pool at the same core count (the RSS of the Ray processes is not counted).
Each engine's start-up (a 1-image build) is also timed, and "steady rows/s" leaves it out:
rows / (wall time - start-up), the rate a long build runs at.
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

from ssl4rl.budget import TokenBudget
from ssl4rl.images import decode, encode, load
from ssl4rl.prescale import fit_for
from ssl4rl.schema import MANIFEST, split_files
from ssl4rl.sources.samples import PHOTOS, samples_dir
from ssl4rl.tasks import TASKS
from ssl4rl.tasks.common import load_template

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


def own_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of `pid` itself, without its children."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PeakRss:
    """Polls a process tree's RSS from a thread until stopped; `peak_mb` is the largest sum seen,
    `driver_cpu_s` the root process's own CPU time at the last poll (the build's driver)."""

    def __init__(self, pid: int):
        self.pid, self.peak_kb, self.driver_cpu_s = pid, 0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, tree_rss_kb(self.pid))
            self.driver_cpu_s = max(self.driver_cpu_s, own_cpu_s(self.pid))
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
            "seconds": seconds, "rows_per_s": rows / seconds, "peak_rss_mb": peak_mb, "driver_cpu_s": monitor.driver_cpu_s}  # fmt: skip


def fixed_cost(folder: Path, out: Path, workers: int, cluster: dict | None = None) -> dict:
    """A 1-image build (`folder` holds one photo): its wall time is the process start, imports,
    checks and pool start (with `cluster`: joining Ray and its workers' start), paid once per
    build, so it weighs on rows/s of short builds."""
    return run_build("position", folder, out, workers, cluster)


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


def budget_fit(manifest: dict):
    """The builder's `fit` for this build's task (default template, the manifest's budget), or
    None for a task that does not predict its sizes (it is fitted after the puzzle is made)."""
    task = TASKS[manifest["task"]](**manifest["options"])
    budget = TokenBudget(manifest["token_budget"]["max_prompt_tokens"], manifest["token_budget"]["patch_factor"])
    return fit_for(task, load_template(task.name), budget)


def codec_floor(source: Path, out: Path) -> dict:
    """Rows/s if a build did nothing but decode each source once and encode its outputs, and also
    with the decode going straight to the size the token budget shows it at (the builder's own
    reduced-scale decode and one Lanczos step), which every source over the budget needs.

    Outputs byte-identical to the source were passed through and cost nothing; the others are
    decoded beforehand (untimed) so only `encode` is timed, in the build's image format."""
    manifest = json.loads((out / MANIFEST).read_text())
    image_format, fit = manifest["image_format"], budget_fit(manifest)
    rows = built_rows(out)
    decode_s = fitted_s = encode_s = 0.0
    for source_id, outputs in rows:
        data = (source / source_id).read_bytes()
        start = time.perf_counter()
        decode(data, 1, source_id)
        decode_s += time.perf_counter() - start
        start = time.perf_counter()
        decode(data, 1, source_id, fit=fit)
        fitted_s += time.perf_counter() - start
        for image in [loaded(b) for b in outputs if b != data]:
            start = time.perf_counter()
            encode(image, image_format)
            encode_s += time.perf_counter() - start
    return {"rows": len(rows), "decode_s": decode_s, "fitted_decode_s": fitted_s, "encode_s": encode_s,
            "rows_per_s": len(rows) / (decode_s + encode_s), "resize_rows_per_s": len(rows) / (fitted_s + encode_s)}  # fmt: skip


# ---------------------------------------------------------------- report
def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_table(results: list[dict]) -> None:
    header = (f"{'task':<12}{'engine':>7}{'workers':>8}{'rows/s':>9}{'steady':>8}{'peak RSS MB':>13}{'floor rows/s':>14}{'build/floor':>13}"
              f"{'+resize':>9}{'build/+resize':>15}{'target':>8}{'speed':>7}{'RSS':>6}")  # fmt: skip
    print(header)
    print("-" * len(header))
    for r in results:
        target = TARGET_ROWS_PER_S.get(r["task"]) if r["workers"] == 2 and r["engine"] == "local" else None
        speed = verdict(r["rows_per_s"] >= target) if target else "-"
        floor = r["floor_rows_per_s"] * r["workers"]  # N processes: N times one process's floor, at best
        resize = r["resize_floor_rows_per_s"] * r["workers"]
        print(
            f"{r['task']:<12}{r['engine']:>7}{r['workers']:>8}{r['rows_per_s']:>9.1f}{r['steady_rows_per_s']:>8.1f}{r['peak_rss_mb']:>13.0f}"
            f"{floor:>14.1f}{r['rows_per_s'] / floor:>13.2f}{resize:>9.1f}{r['rows_per_s'] / resize:>15.2f}"
            f"{target or '-':>8}{speed:>7}{verdict(r['peak_rss_mb'] <= TARGET_RSS_MB):>6}"
        )
    print("floor: N workers against N x the 1-process codec floor; +resize: the same floor with the budget's one resize; "
          f"steady: rows/s after the engine's start-up; targets apply to 2 local workers (jigsaw at its default 2x2); RSS target <= {TARGET_RSS_MB} MB")  # fmt: skip
    local = {(r["task"], r["workers"]): r for r in results if r["engine"] == "local"}
    for r in results:
        if r["engine"] == "ray" and (r["task"], r["workers"]) in local:
            pool = local[(r["task"], r["workers"])]
            whole, steady = r["rows_per_s"] / pool["rows_per_s"], r["steady_rows_per_s"] / pool["steady_rows_per_s"]
            print(f"{r['task']}: Ray engine on {r['workers']} one-CPU nodes / local pool of {r['workers']} workers: {whole:.2f} whole build, "
                  f"{steady:.2f} after start-up ({verdict(whole >= 0.8)} / {verdict(steady >= 0.8)}: >= 0.8); its driver used "
                  f"{r['driver_cpu_s']:.2f} s of CPU, so one driver with a core of its own takes about {r['driver_cap_rows_per_s']:.0f} of these rows/s")  # fmt: skip


def measure_builds(tasks: list[str], worker_counts: list[int], source: Path, one: Path, tmp: Path, cluster: dict | None = None) -> tuple[list[dict], dict]:
    """Every (task, workers) build, each with the codec floor of its task; with `cluster`, also
    the Ray engine on it (as many workers as the cluster has nodes). Also the start-up of each
    engine and worker count (a build of the 1 photo in `one`)."""
    results = []
    runs = [(workers, None) for workers in worker_counts] + ([(len(cluster["groups"]), cluster)] if cluster else [])
    startup, driver_startup = {}, {}
    for workers, on in runs:
        key = f"{'ray' if on else 'local'} x{workers}"
        first = fixed_cost(one, tmp / "out_fixed", workers, on)
        startup[key], driver_startup[key] = first["seconds"], first["driver_cpu_s"]
        print(f"start-up, {key} (a 1-image build): {startup[key]:.2f} s", flush=True)
    for task in tasks:
        out, floor = tmp / f"out_{task}", None
        for workers, on in runs:
            result = run_build(task, source, out, workers, on)
            floor = floor or codec_floor(source, out)  # the output is identical for any worker count and engine
            key = f"{result['engine']} x{workers}"
            steady = result["rows"] / max(1e-9, result["seconds"] - startup[key])
            driver_cap = result["rows"] / max(1e-9, result["driver_cpu_s"] - driver_startup[key])
            results.append({**result, "steady_rows_per_s": steady, "driver_cap_rows_per_s": driver_cap, "floor_rows_per_s": floor["rows_per_s"],
                            "resize_floor_rows_per_s": floor["resize_rows_per_s"]})  # fmt: skip
            print(f"  {task} {result['engine']} x{workers}: {result['rows']} rows in {result['seconds']:.2f} s; floor: decode {floor['decode_s']:.2f} s "
                  f"(to the budget's size {floor['fitted_decode_s']:.2f} s) + encode {floor['encode_s']:.2f} s", flush=True)  # fmt: skip
    return results, startup


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
        one = link_first(photos[:1], tmp / "photos_1")
        load_before = os.getloadavg()[0]
        if args.ray:
            from ssl4rl.ray_local import local_cluster

            with local_cluster(nodes=2, cpus=1) as cluster:  # ssl4rl is installed: the nodes import it as the driver does
                results, startup = measure_builds(tasks, worker_counts, source, one, tmp, cluster)
        else:
            results, startup = measure_builds(tasks, worker_counts, source, one, tmp)
        print()
        print_table(results)
        print(f"1-min load average {load_before:.2f} before the builds, {os.getloadavg()[0]:.2f} after, "
              f"on {os.cpu_count()} CPUs (other load skews the timings)\n")  # fmt: skip
        scaling = None if args.no_scaling else rss_scaling(source, tmp / "photos_3n", tmp / "out_scaling")

    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        payload = {"images": args.images, "cpus": os.cpu_count(), "startup_s": startup, "load_before": load_before,
                   "builds": results, "rss_scaling": scaling}  # fmt: skip
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
