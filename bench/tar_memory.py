"""Memory of reading WebDataset tar shards against the number of images: peak RSS of the
builder's driver side (the tar reader and the job planner: dedup, split, partners) over 10 k
and 100 k synthetic images, each in a fresh process.

    python bench/tar_memory.py [--counts 10000,100000] [--per-tar 1000]

Workers are left out: their memory does not depend on the source (bench/build_throughput.py).
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

CHILD = """
import resource, sys
from ssl4rl.build import BuildConfig, JobPlanner, make_specs
from ssl4rl.sources import open_source
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
cfg = BuildConfig(task="rotation", source=sys.argv[1], out="unused")
planner = JobPlanner(open_source(cfg.source), cfg, make_specs(cfg), 0, {})
jobs = 0
for job in planner:
    planner.pending.popleft()
    jobs += 1
print(jobs, before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def write_shards(folder: Path, count: int, per_tar: int, side: int = 16) -> int:
    """`count` distinct `side`-pixel PNGs with a caption each, `per_tar` samples per shard;
    returns the shards' bytes (bench/uri_read.py writes its shards with it too)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for first in range(0, count, per_tar):
        with tarfile.open(folder / f"shard-{first // per_tar:05d}.tar", "w") as tar:
            for i in range(first, min(count, first + per_tar)):
                buffer = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(buffer, "PNG")
                for name, data in ((f"{i:08d}.png", buffer.getvalue()), (f"{i:08d}.json", json.dumps({"caption": f"image {i}"}).encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return sum(f.stat().st_size for f in folder.iterdir())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="10000,100000")
    parser.add_argument("--per-tar", type=int, default=1000)
    args = parser.parse_args()
    counts = sorted({int(c) for c in args.counts.split(",")})
    if len(counts) < 2:
        parser.error("--counts takes two or more different counts (the memory of the larger is compared with the smaller)")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in counts:
            folder = Path(tmp) / f"n{count}"
            write_shards(folder, count, args.per_tar)
            output = subprocess.run([sys.executable, "-c", CHILD, str(folder / "*.tar")], check=True, capture_output=True, text=True).stdout
            jobs, before, peak = map(int, output.split())
            results.append((count, jobs, before / 1024, peak / 1024))
            print(f"{count} images ({count // args.per_tar} tars): {jobs} jobs planned; peak RSS {peak / 1024:.1f} MB "
                  f"({before / 1024:.1f} MB after imports, +{(peak - before) / 1024:.1f} MB reading)", flush=True)  # fmt: skip
    (small, _, _, small_peak), (large, _, _, large_peak) = results[0], results[-1]
    print(f"peak RSS {large_peak / small_peak:.2f}x for {large / small:.0f}x the images; "
          f"{(large_peak - small_peak) * 2**20 / (large - small):.0f} bytes per extra image")


if __name__ == "__main__":
    main()
