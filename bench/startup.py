"""Fixed start-up cost of `ssl4rl build`: `--help` and a 1-image build, median of several runs,
and which heavy modules (pandas, torch, datasets) each imports; optionally next to another
checkout measured in the same run (`--baseline /path/to/other/checkout`).

    python bench/startup.py [--runs 7] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("pandas", "torch", "datasets", "ray")
ROOT = Path(__file__).resolve().parents[1]


def commands(tmp: Path) -> dict[str, list[str]]:
    one = ["build", "position", "--source", "samples", "--limit", "1", "--quiet", "--overwrite"]
    return {
        "build --help": ["build", "--help"],
        "1-image build, 1 worker": [*one, "--out", str(tmp / "w1"), "--workers", "1"],
        "1-image build, 2 workers": [*one, "--out", str(tmp / "w2"), "--workers", "2"],
    }


def timed(args: list[str], checkout: Path, runs: int) -> tuple[float, list[str]]:
    env, cwd = {**os.environ, "PYTHONPATH": str(checkout)}, tempfile.gettempdir()  # not a checkout: it would come first on sys.path
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ssl4rl", *args], env=env, cwd=cwd, check=True, capture_output=True)
        seconds.append(time.perf_counter() - start)
    probe = ("import sys\nfrom ssl4rl.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")  # fmt: skip
    loaded = subprocess.run([sys.executable, "-c", probe, *args], env=env, cwd=cwd, check=True, capture_output=True, text=True).stdout
    imported = sorted(set(loaded.splitlines()[-1].split()) if loaded.strip() else set())
    return statistics.median(seconds), imported


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--baseline", help="another checkout of ssl4rl (e.g. the main branch's) to measure in the same run")
    args = parser.parse_args()
    checkouts = {"this": ROOT, **({"baseline": Path(args.baseline).resolve()} if args.baseline else {})}
    with tempfile.TemporaryDirectory() as tmp:
        for label, argv in commands(Path(tmp)).items():
            results = {name: timed(argv, path, args.runs) for name, path in checkouts.items()}
            line = ", ".join(f"{name} {s:.2f} s (imports {', '.join(mods) or 'none of ' + '/'.join(HEAVY)})" for name, (s, mods) in results.items())
            if "baseline" in results:
                line += f"; this/baseline {results['this'][0] / results['baseline'][0]:.2f}"
            print(f"{label}: {line}", flush=True)
    print(f"median of {args.runs} runs each; 1-min load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
