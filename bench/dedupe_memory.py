"""Memory of the builder's duplicate check, before (a Python set of 16-byte keys) and after
(ssl4rl.keyset.KeySet), in one run, on the same synthetic keys: random 16-byte keys as
content_key makes them, one in 50 a repeat of an earlier key.

    python bench/dedupe_memory.py [--counts 100000,1000000]

Bytes per key are Python's own allocation counts (tracemalloc, which numpy reports its arrays
to): what the structure holds after the last key ("held"), and the most it held at any moment
("peak", merges included). "RSS" is how much the resident memory of a fresh process that does
only this grew from just before the first key to just after the last (Linux /proc). Time per key is measured in a second pass
without tracing.
"""

from __future__ import annotations

import argparse
import gc
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

from ssl4rl.keyset import KeySet

REPEAT_EVERY = 50


def synthetic(count: int, seed: int = 0) -> tuple[bytes, np.ndarray]:
    """The keys' bytes and the order they come in (made before measuring)."""
    rng = np.random.default_rng(seed)
    order = np.arange(count)
    repeats = order[REPEAT_EVERY::REPEAT_EVERY]
    order[repeats] = rng.integers(0, repeats)
    return rng.bytes(16 * count), order


def keys(pool: bytes, order: np.ndarray):
    """Each key as a fresh bytes object (the planner makes a new one per image)."""
    for j in order:  # not .tolist(): a list of ints would be counted with the structure
        yield pool[16 * j : 16 * j + 16]


def fill_set(pool: bytes, order: np.ndarray):
    seen, duplicates = set(), 0
    for key in keys(pool, order):
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
    return seen, duplicates


def fill_keyset(pool: bytes, order: np.ndarray):
    seen, duplicates = KeySet(), 0
    for key in keys(pool, order):
        duplicates += not seen.add(key)
    return seen, duplicates


def measure(fill, count: int) -> dict:
    pool, order = synthetic(count)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    seen, duplicates = fill(pool, order)
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del seen
    gc.collect()
    start = time.perf_counter()
    fill(pool, order)
    seconds = time.perf_counter() - start
    return {"held": (held - base) / count, "peak": (peak - base) / count, "us": seconds / count * 1e6, "duplicates": duplicates}


def rss_growth(fill: str, count: int) -> float:
    """Resident memory growth per key of a fresh process filling one structure."""
    output = subprocess.run([sys.executable, __file__, "--child", fill, str(count)], check=True, capture_output=True, text=True).stdout
    return float(output)


def resident() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def child(fill: str, count: int) -> None:
    pool, order = synthetic(count)
    gc.collect()
    before = resident()
    seen = FILLS[fill](pool, order)  # noqa: F841 - held while the memory is read
    print((resident() - before) / count)


FILLS = {"set": fill_set, "keyset": fill_keyset}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="100000,1000000")
    parser.add_argument("--child", nargs=2, metavar=("FILL", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], int(args.child[1]))
    print("keys | structure | held B/key | peak B/key | RSS B/key | us/key (key made + checked) | duplicates")
    for count in (int(c) for c in args.counts.split(",")):
        before, after = measure(fill_set, count), measure(fill_keyset, count)
        before["rss"], after["rss"] = rss_growth("set", count), rss_growth("keyset", count)
        assert before["duplicates"] == after["duplicates"], "the two structures disagree"
        for name, result in (("set (before)", before), ("KeySet (after)", after)):
            print(f"{count} | {name} | {result['held']:.1f} | {result['peak']:.1f} | {result['rss']:.1f} | {result['us']:.2f} | {result['duplicates']}", flush=True)
        print(f"{count} | held {before['held'] / after['held']:.1f}x less; at 10^8 keys: {before['held'] * 1e8 / 2**30:.1f} GiB before, "
              f"{after['held'] * 1e8 / 2**30:.1f} GiB after (peak {after['peak'] * 1e8 / 2**30:.1f} GiB)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
