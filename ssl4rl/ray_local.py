"""A Ray cluster of several nodes on this one machine, as `ray start` makes them on a real one:
for the CI test and the benchmark of the Ray engine (`--engine ray`).

Each node is a `ray start --block` in its own process group, in a private temp dir,
with its own auth token and free ports, so it never meets another cluster on the machine; on
exit only those process groups are ended (never `ray stop`, which stops every Ray here).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def cluster_env(pythonpath: str | None = None) -> dict:
    """Environment of the nodes and of the drivers that join them: a private auth token, and
    `pythonpath` (a source checkout) for the workers."""
    path = os.pathsep.join(p for p in (pythonpath, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16), "RAY_USAGE_STATS_ENABLED": "0"}
    return {**env, "PYTHONPATH": path} if path else env


def stop_groups(processes: list[subprocess.Popen], patience: float = 2.0) -> None:
    """End each `ray start --block` and everything it started (they share its process group):
    SIGTERM, then SIGKILL for what is left after `patience` seconds. Workers exit with their raylet."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline and any(_group_alive(p.pid) for p in processes):
            time.sleep(0.1)
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for_nodes(address: str, count: int, env: dict, timeout: float = 120.0) -> None:
    script = (
        "import ray, time, sys\n"
        f"ray.init(address={address!r}, logging_level='ERROR', log_to_driver=False)\n"
        f"deadline = time.monotonic() + {timeout}\n"
        f"while sum(n['Alive'] for n in ray.nodes()) < {count} and time.monotonic() < deadline: time.sleep(0.2)\n"
        f"sys.exit(0 if sum(n['Alive'] for n in ray.nodes()) >= {count} else 1)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout + 30)
    if result.returncode:
        raise RuntimeError(f"the Ray cluster at {address} did not reach {count} nodes:\n{result.stderr[-2000:]}")


@contextlib.contextmanager
def local_cluster(nodes: int = 2, cpus: int = 1, pythonpath: str | None = None) -> Iterator[dict]:
    """`ray start --head --num-cpus CPUS`, then NODES-1 x `ray start --address ...`; yields
    {'address', 'env' (for drivers), 'groups' (process group ids of the nodes), 'temp'}."""
    temp = tempfile.mkdtemp(prefix="r", dir="/tmp")  # short: Ray's socket paths have a length limit
    env, started = cluster_env(pythonpath), []
    port, client, dashboard, *agents = free_ports(3 + 3 * nodes)
    address = f"127.0.0.1:{port}"
    ray = [sys.executable, "-m", "ray.scripts.scripts", "start"]
    try:
        for k in range(nodes):
            role = (["--head", "--port", str(port), "--ray-client-server-port", str(client), "--include-dashboard", "false",
                     "--dashboard-port", str(dashboard)] if k == 0 else ["--address", address])  # fmt: skip
            ports = ["--dashboard-agent-listen-port", str(agents[3 * k]), "--dashboard-agent-grpc-port", str(agents[3 * k + 1]),
                     "--metrics-export-port", str(agents[3 * k + 2])]  # fmt: skip
            common = ["--num-cpus", str(cpus), "--temp-dir", temp, "--disable-usage-stats", "--block"]
            with open(Path(temp) / f"start-{k}.log", "w") as log:
                started.append(subprocess.Popen(ray + role + ports + common, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            try:
                wait_for_nodes(address, k + 1, env)  # a node joins a head that is up
            except RuntimeError as error:
                log = (Path(temp) / f"start-{k}.log").read_text()[-2000:]
                raise RuntimeError(f"{error}\nnode {k} (`ray start`) said:\n{log}") from None
        yield {"address": address, "env": env, "groups": [p.pid for p in started], "temp": temp}
    finally:
        stop_groups(started)
        shutil.rmtree(temp, ignore_errors=True)
