"""How the Ray engine sends a task its images: inside the task, or through the object store.

    python bench/ray_args.py [--images 1000] [--task rotation] [--repeats 2]

Builds the same photos (bench/build_throughput.py's) with `--engine ray` on a local cluster of
two one-CPU nodes (ssl4rl.ray_local), alternating two ways of passing each task its batch of
source images:

- **inline pieces** (what ssl4rl.ray_build does): the pickled batch cut into pieces below Ray's
  inline limit, sent with the task;
- **one argument**: the pickled batch whole, over that limit, so Ray puts it in the object store
  and the task waits for it there (what the engine did before).

Prints the wall time of each build and the median ratio, measured in the same run on the same
cluster. Both give byte-identical builds (checked).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_throughput import make_photos  # noqa: E402

from ssl4rl import ray_build  # noqa: E402
from ssl4rl.build import BuildConfig, build  # noqa: E402
from ssl4rl.ray_local import local_cluster  # noqa: E402

WAYS = {"inline pieces": ray_build.INLINE_PIECE_BYTES, "one argument": 1 << 40}


def output_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.suffix in (".parquet", ".json")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--task", default="rotation")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ssl4rl-bench-") as tmp, local_cluster(nodes=2, cpus=1) as cluster:
        tmp = Path(tmp)
        photos = make_photos(tmp / "photos", args.images)[0].parent
        os.environ.update(cluster["env"])  # the cluster's auth token: Ray reads it when imported
        seconds: dict[str, list[float]] = {way: [] for way in WAYS}
        outputs = {}
        for repeat in range(args.repeats):
            for way, piece in WAYS.items():
                ray_build.INLINE_PIECE_BYTES = piece
                out = tmp / f"out_{repeat}_{way.replace(' ', '_')}"
                cfg = BuildConfig(task=args.task, source=str(photos), out=str(out), test_fraction=0.1)
                start = time.perf_counter()
                manifest = build(cfg, workers=2, progress_bar=False, engine="ray", ray_address=cluster["address"])
                seconds[way].append(time.perf_counter() - start)
                outputs[way] = output_bytes(out)
                rows = sum(manifest["rows"].values())
                print(f"{way:>14}: {rows} rows in {seconds[way][-1]:.2f} s ({rows / seconds[way][-1]:.1f} rows/s)", flush=True)
        if outputs["inline pieces"] != outputs["one argument"]:
            raise SystemExit("the two ways built different bytes")
        inline, whole = (statistics.median(seconds[way]) for way in WAYS)
        print(f"median: inline pieces {inline:.2f} s, one argument {whole:.2f} s: one argument / inline pieces = {whole / inline:.2f} "
              f"({args.task}, {args.images} photos, 2 one-CPU nodes on {os.cpu_count()} CPUs; identical output)")  # fmt: skip


if __name__ == "__main__":
    main()
