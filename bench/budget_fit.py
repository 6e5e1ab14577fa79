"""Tasks that fit the token budget from the source's header (position, rotation, jigsaw):
decoding straight to the size that fits (a JPEG at reduced DCT scale, Pillow's draft, then one
Lanczos step) against a full decode then the same Lanczos step, on the same photos as
bench/build_throughput.py: the pixel difference and the time.

    python bench/budget_fit.py [--task position|rotation|jigsaw] [--images N] [--sides 300,1000]

Draft only engages when the fitted size is at most half the photo's (a 2x, 4x or 8x DCT
reduction), so photos of 300-1000 px show none and photos of 2000-4000 px show its effect.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_throughput  # noqa: E402

from ssl4rl.budget import TokenBudget  # noqa: E402
from ssl4rl.images import decode, to_rgb  # noqa: E402
from ssl4rl.prescale import fit_for, predicts  # noqa: E402
from ssl4rl.tasks import TASKS  # noqa: E402
from ssl4rl.tasks.common import load_template  # noqa: E402

FITTING = [name for name, task in TASKS.items() if predicts(task())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="position", choices=FITTING, help="at its default options (default: %(default)s)")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--sides", default="300,1000", help="photo side range in px (default: %(default)s)")
    args = parser.parse_args()
    build_throughput.SIDES = tuple(int(side) for side in args.sides.split(","))
    task, budget, template = TASKS[args.task](), TokenBudget(), load_template(args.task)
    fit = fit_for(task, template, budget)
    diffs, full_s, draft_s, downscaled = [], 0.0, 0.0, 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in build_throughput.make_photos(Path(tmp), args.images):
            data = path.read_bytes()
            with Image.open(io.BytesIO(data)) as header:
                target = fit(header.size)
            if target is None:
                continue
            downscaled += 1
            start = time.perf_counter()
            full = to_rgb(Image.open(io.BytesIO(data))).resize(target, Image.Resampling.LANCZOS)
            middle = time.perf_counter()
            drafted = decode(data, task.min_side, fit=fit).pixels
            draft_s += time.perf_counter() - middle
            full_s += middle - start
            diffs.append(np.abs(np.asarray(full, np.int16) - np.asarray(drafted, np.int16)))
    flat = np.concatenate([d.ravel() for d in diffs])
    mse = max(1e-12, float(np.mean([np.mean(d.astype(np.float64) ** 2) for d in diffs])))
    print(f"{args.task}, {args.sides} px photos: {downscaled} of {args.images} downscaled to fit {budget.max_tokens} tokens")
    print(f"pixel difference, draft+Lanczos vs full decode+Lanczos (0-255 per channel): mean {flat.mean():.2f}, "
          f"p99 {np.percentile(flat, 99):.0f}, max {flat.max()}, PSNR {10 * np.log10(255 ** 2 / mse):.1f} dB")  # fmt: skip
    print(f"decode+resize time: full {full_s:.2f} s, draft {draft_s:.2f} s, ratio {full_s / draft_s:.2f}x")


if __name__ == "__main__":
    main()
