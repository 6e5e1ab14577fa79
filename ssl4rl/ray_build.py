"""The Ray engine (`ssl4rl build --engine ray`): the same build, its puzzles made by Ray tasks.

Only the expensive part moves to the cluster: decoding, making puzzles and encoding images
(`build_worker.make_rows`). The driver keeps what fixes the output's bytes: reading the source in
order, the split and partners of each image, numbering rows and cutting shards. Results are
taken back in submission order, so the shards and manifest are byte-identical to a local
`--workers N` build for any number of Ray workers and nodes, and resume (`.progress.json`)
works unchanged. Ray tasks rather than Ray Data: a task lost with its worker or node is simply
run again (its rows depend only on its job), and ordered, bounded in-flight batches need no
block-level shuffling to undo. Only the driver reads the source and writes the output.

A task's jobs travel inside the task itself, pickled and cut into pieces below Ray's inline
limit (`inline_pieces`). Passed whole, a batch of images is over that limit and goes through the
object store, and each task then waits for its argument there: on two local one-CPU nodes that
made a 1000-photo build take 1.75x as long (bench/ray_args.py). Ray still moves what is over its
per-task inline total (10 MB by default) through the object store, so huge images stay correct.
"""

from __future__ import annotations

import os
import pickle
import socket
import uuid
from collections import deque
from typing import Iterable, Iterator

from ssl4rl.errors import UserError

JOBS_PER_TASK = 8  # source images per Ray task: amortises Ray's per-task cost (~1 ms)
TASKS_IN_FLIGHT_PER_CPU = 4
MAX_RETRIES = 5  # a task whose worker process or node dies is run again, up to this many times
INLINE_PIECE_BYTES = 64 * 1024  # under Ray's max_direct_call_object_size (100 KiB by default)


def import_ray():
    """Ray, or one clear line: plain builds never need it."""
    try:
        import ray
    except ImportError:
        raise UserError("--engine ray needs Ray: pip install 'ray>=2.9' (it comes with ssl4rl[verl])") from None
    return ray


def check_reachable(address: str | None) -> None:
    """A HOST:PORT that nothing answers on is one line now, before the output folder is touched
    (Ray itself would retry for minutes)."""
    if not address or address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--ray-address must be auto or HOST:PORT (got {address!r})")
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as error:
        raise UserError(f"cannot reach the Ray cluster at {address} ({error.strerror or error}); start it with `ray start --head` or fix --ray-address") from None


def _runtime_env() -> dict:
    """Workers import ssl4rl like the driver: an installed package needs nothing, a source
    checkout on PYTHONPATH is passed on."""
    path = os.environ.get("PYTHONPATH")
    return {"env_vars": {"PYTHONPATH": path}} if path else {}


def connect(address: str | None, workers: int):
    """Join the cluster at `address` ('auto': the one `ray start` runs on this machine), or
    start a private single-machine Ray with `workers` CPUs."""
    ray = import_ray()
    options = dict(runtime_env=_runtime_env(), logging_level="ERROR", log_to_driver=False, configure_logging=False)
    try:
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, **options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise UserError(f"cannot reach the Ray cluster at {address or 'a new local instance'} ({str(error).strip().splitlines()[0]})") from None
    return ray


_state: dict = {}


def inline_pieces(value, size: int | None = None) -> list[bytes]:
    """`value` pickled and cut into pieces of at most `size` bytes, each small enough for Ray to
    send inside the task rather than through the object store.

    >>> pieces = inline_pieces(list(range(10_000)), size=1000)
    >>> max(map(len, pieces)) <= 1000, pickle.loads(b"".join(pieces)) == list(range(10_000))
    (True, True)
    """
    data, size = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), size or INLINE_PIECE_BYTES
    return [data[start : start + size] for start in range(0, len(data), size)] or [b""]


def make_batch(token: str, initargs: tuple, *pieces: bytes) -> list:
    """One Ray task: the rows of a few jobs (`inline_pieces` of the list). The worker state is set
    up once per worker process (token: this build); a UserError (a bad template) comes back as a
    value, not a traceback."""
    from ssl4rl import build_worker

    jobs = pickle.loads(b"".join(pieces))
    if _state.get("token") != token:
        build_worker.init_worker(*initargs)
        _state["token"] = token
    try:
        return [build_worker.make_rows(job) for job in jobs]
    except UserError as error:
        return [error]


def ray_ordered_map(jobs: Iterable, workers: int, initargs: tuple, address: str | None = None) -> Iterator:
    """build.ordered_map on a Ray cluster: make_rows over jobs, results in input order, a
    bounded number of tasks in flight (a few per CPU of the cluster)."""
    ray = connect(address, workers)
    try:
        remote = ray.remote(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)(make_batch)
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        token, shared = uuid.uuid4().hex, ray.put(initargs)
        pending: deque = deque()

        def take() -> list:
            results = ray.get(pending.popleft())
            if results and isinstance(results[0], UserError):
                raise results[0]
            return results

        batch: list = []
        for job in jobs:
            batch.append(job)
            if len(batch) == JOBS_PER_TASK:
                pending.append(remote.remote(token, shared, *inline_pieces(batch)))
                batch = []
                if len(pending) >= cpus * TASKS_IN_FLIGHT_PER_CPU:
                    yield from take()
        if batch:
            pending.append(remote.remote(token, shared, *inline_pieces(batch)))
        while pending:
            yield from take()
    finally:
        ray.shutdown()  # tasks still in flight (--limit, Ctrl-C) are cancelled with the driver
