"""The most rows/s one build driver can take, whatever the number of workers or Ray nodes:
the driver's own work (reading the source, content hashes, splits, ordering, parquet writing)
with the workers' part replaced by rows that show the source image untouched.

    python bench/driver_ceiling.py [--images N]

This bounds the Ray engine (only the driver reads and writes): past this rate more nodes do
not help. Same photos as bench/build_throughput.py.
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
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        photos = build_throughput.make_photos(Path(tmp) / "photos", args.images)
        size = sum(p.stat().st_size for p in photos) / len(photos)
        build_module.make_rows = passthrough_rows
        cfg = build_module.BuildConfig(task="rotation", source=str(Path(tmp) / "photos"), out=str(Path(tmp) / "out"))
        start = time.perf_counter()
        manifest = build_module.build(cfg, workers=1, progress_bar=False)
        seconds = time.perf_counter() - start
    rows = sum(manifest["rows"].values())
    print(f"driver alone: {rows} rows in {seconds:.2f} s = {rows / seconds:.0f} rows/s "
          f"({rows / seconds * size / 2**20:.0f} MB/s of source images, {size / 1024:.0f} KB each)")  # fmt: skip


if __name__ == "__main__":
    main()
