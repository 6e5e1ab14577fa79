"""How fast the source readers stream WebDataset tar shards from a local path, a `file://` URI
and an `s3://` URI (a local moto S3 server: a Python server on this machine, so its rate is a
floor, not S3's), and how many requests the S3 read makes.

    python bench/uri_read.py [--images 20000] [--per-tar 1000] [--side 64]

The images are distinct random PNGs (`--side` pixels) with a JSON caption each, as in
bench/tar_memory.py. Only reading is timed (ssl4rl.sources.open_source, every sample's bytes).
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path


from ssl4rl.sources import open_source
from tar_memory import write_shards  # bench/ is the script's folder


def read(source: str) -> tuple[int, float]:
    start = time.perf_counter()
    count = sum(1 for raw in open_source(source) if raw.data)
    return count, time.perf_counter() - start


class Requests(logging.Handler):
    def __init__(self):
        super().__init__()
        self.counts: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        for method in ("GET", "HEAD"):
            if f"{method} /" in record.getMessage():
                self.counts[method] = self.counts.get(method, 0) + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--per-tar", type=int, default=1000)
    parser.add_argument("--side", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "tars"
        size = write_shards(folder, args.images, args.per_tar, args.side)
        print(f"{args.images} images in {len(list(folder.iterdir()))} tars, {size / 2**20:.0f} MiB; load average {os.getloadavg()[0]:.1f}")
        sources = {"local path": f"{folder}/*.tar", "file:// URI": f"file://{folder}/*.tar"}
        try:
            from moto.server import ThreadedMotoServer
        except ImportError:
            ThreadedMotoServer = None
            print("s3:// skipped: pip install 'moto[server]'")
        server, requests = None, Requests()
        if ThreadedMotoServer:
            import pyarrow.fs as pafs

            for name, value in (("AWS_ACCESS_KEY_ID", "bench"), ("AWS_SECRET_ACCESS_KEY", "bench"), ("AWS_EC2_METADATA_DISABLED", "true")):
                os.environ.setdefault(name, value)
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            server.start()
            host, port = server.get_host_and_port()
            s3 = pafs.S3FileSystem(endpoint_override=f"{host}:{port}", scheme="http", region="us-east-1", allow_bucket_creation=True)
            s3.create_dir("bench")
            pafs.copy_files(str(folder), "bench/tars", source_filesystem=pafs.LocalFileSystem(), destination_filesystem=s3)
            sources["s3:// URI (moto)"] = f"s3://bench/tars/*.tar?endpoint_override={host}%3A{port}&scheme=http"
            logging.getLogger("werkzeug").addHandler(requests)
            logging.getLogger("werkzeug").setLevel(logging.INFO)
        try:
            for name, source in sources.items():
                requests.counts.clear()
                count, seconds = read(source)
                calls = f"; {requests.counts.get('GET', 0)} GET and {requests.counts.get('HEAD', 0)} HEAD requests" if requests.counts else ""
                print(f"{name}: {count} images in {seconds:.2f} s, {count / seconds:.0f} images/s, {size / 2**20 / seconds:.0f} MiB/s{calls}", flush=True)
        finally:
            if server:
                server.stop()


if __name__ == "__main__":
    main()
