"""The most rows/s one build driver can take, whatever the number of workers or Ray nodes:
the driver's own work (reading the source, content hashes, splits, ordering, parquet writing)
with the workers' part replaced by rows that show the source image untouched.

    python bench/driver_ceiling.py [--images N]

This bounds the Ray engine (only the driver reads and writes): past this rate more nodes do
not help. Same photos as bench/build_throughput.py. The rate is the steady one: a 1-image build
is timed too (after a first one that pays the imports) and its time (start-up: checks,
templates, the first shard) left out, which would otherwise weigh on a short build.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_throughput  # noqa: E402

from ssl4rl import build as build_module  # noqa: E402
from ssl4rl.build_jobs import JobResult  # noqa: E402
from ssl4rl.schema import make_row  # noqa: E402


def passthrough_rows(job):
    """A row per sample showing the source as it is: what the driver handles, no worker work."""
    rows = [make_row(task="rotation", prompt="<image> How far was it turned?", images=[b""], answer="0", source="bench",
                     source_id=sample_id, split=job.split, index=-1, params={}, difficulty="default", source_hash="")
            for sample_id, _ in job.samples]  # fmt: skip
    return JobResult(job.split, job.seq, rows, ["0"] * len(rows), tokens=[500] * len(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        photos = build_throughput.make_photos(Path(tmp) / "photos", args.images)
        size = sum(p.stat().st_size for p in photos) / len(photos)
        build_module.make_rows = passthrough_rows
        timed = {}
        one = build_throughput.link_first(photos[:1], Path(tmp) / "one")
        for name, folder in (("warm-up", one), ("one", one), ("all", Path(tmp) / "photos")):  # the warm-up pays first imports
            cfg = build_module.BuildConfig(task="rotation", source=str(folder), out=str(Path(tmp) / f"out_{name}"))
            start = time.perf_counter()
            manifest = build_module.build(cfg, workers=1, progress_bar=False)
            timed[name] = (sum(manifest["rows"].values()), time.perf_counter() - start)
    (rows, seconds), (_, startup) = timed["all"], timed["one"]
    steady = (rows - 1) / (seconds - startup)
    print(f"driver alone: {rows} rows in {seconds:.2f} s, of which {startup:.2f} s start-up (a 1-image build): "
          f"{steady:.0f} rows/s steady ({steady * size / 2**20:.0f} MB/s of source images, {size / 1024:.0f} KB each)")  # fmt: skip


if __name__ == "__main__":
    main()
