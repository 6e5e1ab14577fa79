"""The most rows/s one build driver can take, whatever the number of workers or Ray nodes:
the driver's own work (reading the source, content hashes, splits, ordering, parquet writing)
with the workers' part replaced by ready rows.

    python bench/driver_ceiling.py [--images N] [--new-kb K] [--repeats R]

This bounds the Ray engine (only the driver reads and writes): past this rate more nodes do
not help. Same photos as bench/build_throughput.py. Each row shows its source untouched and
carries `--new-kb` of image bytes made by its worker (a rotated copy: distinct per row), which
the driver takes back and writes; 0 leaves only the source's bytes. Photos and builds live in
/dev/shm where there is one: the figure is the driver's work, not the disk's write-back.

The rate is the steady one: a 1-image build is timed too (after a first that pays the imports)
and its time left out. Each rate is measured R times, alternating: as the builder runs (parquet
row groups written by a thread of their own) and with them written on the driver's thread, as
before; the medians and their ratio are printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_throughput  # noqa: E402

from ssl4rl import build as build_module  # noqa: E402
from ssl4rl import shards  # noqa: E402
from ssl4rl.build_jobs import JobResult  # noqa: E402
from ssl4rl.schema import make_row  # noqa: E402


NEW_IMAGES: list[bytes] = []  # stand-ins for the images a worker makes: random, so nothing compresses or repeats


def passthrough_rows(job):
    """A row per sample showing the source as it is, plus a made image when NEW_IMAGES has
    some: what the driver handles, no worker work."""
    made = [NEW_IMAGES[job.seq % len(NEW_IMAGES)]] if NEW_IMAGES else []
    rows = [make_row(task="rotation", prompt="<image>" * (1 + len(made)) + " How far was it turned?", images=[b"", *made], answer="0",
                     source="bench", source_id=sample_id, split=job.split, index=-1, params={}, difficulty="default", source_hash="")
            for sample_id, _ in job.samples]  # fmt: skip
    return JobResult(job.split, job.seq, rows, ["0"] * len(rows), tokens=[500] * len(rows))


def write_on_the_driver_thread(writer) -> None:
    """ShardWriter._flush as it was before row groups had a thread of their own: the baseline."""
    if writer._buffer:
        writer._write(writer._buffer)
        writer._buffer = []


def steady_rate(photos: list[Path], tmp: Path, label: str) -> tuple[int, float, float]:
    """(rows, seconds, steady rows/s) of the driver alone on `photos`, a 1-image build's time left out."""
    timed = {}
    one = tmp / "one"
    if not one.exists():
        build_throughput.link_first(photos[:1], one)
    for name, folder in (("warm-up", one), ("one", one), ("all", photos[0].parent)):  # the warm-up pays first imports
        cfg = build_module.BuildConfig(task="rotation", source=str(folder), out=str(tmp / f"out_{label}_{name}"))
        start = time.perf_counter()
        manifest = build_module.build(cfg, workers=1, progress_bar=False, overwrite=True)
        timed[name] = (sum(manifest["rows"].values()), time.perf_counter() - start)
        shutil.rmtree(tmp / f"out_{label}_{name}")
    (rows, seconds), (_, startup) = timed["all"], timed["one"]
    return rows, seconds, (rows - 1) / (seconds - startup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--new-kb", type=int, default=270,
                        help="image bytes a worker adds to each row (default: %(default)s, about rotation's rotated PNG on these photos)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    NEW_IMAGES.extend(os.urandom(args.new_kb * 1024) for _ in range(97) if args.new_kb)
    threaded_flush = shards.ShardWriter._flush
    rates: dict[str, list[float]] = {"writer thread": [], "driver thread": []}
    memory = "/dev/shm" if os.path.isdir("/dev/shm") else None  # the driver's work, not the disk's write-back
    with tempfile.TemporaryDirectory(dir=memory) as tmp:
        photos = build_throughput.make_photos(Path(tmp) / "photos", args.images)
        size = sum(p.stat().st_size for p in photos) / len(photos)
        row_kb = size / 1024 + args.new_kb
        build_module.make_rows = passthrough_rows
        for _ in range(args.repeats):
            for label, flush in (("writer thread", threaded_flush), ("driver thread", write_on_the_driver_thread)):
                shards.ShardWriter._flush = flush
                rows, seconds, steady = steady_rate(photos, Path(tmp), label.split()[0])
                rates[label].append(steady)
                print(f"{label:>13}: {rows} rows in {seconds:.2f} s: {steady:.0f} rows/s steady "
                      f"({steady * row_kb / 1024:.0f} MB/s of rows: {size / 1024:.0f} KB source + {args.new_kb} KB made each)", flush=True)  # fmt: skip
    threaded, inline = (statistics.median(rates[label]) for label in rates)
    print(f"driver alone, median: {threaded:.0f} rows/s with row groups written on their own thread, {inline:.0f} on the driver's "
          f"thread: {threaded / inline:.2f}x ({os.cpu_count()} CPUs)")  # fmt: skip


if __name__ == "__main__":
    main()
