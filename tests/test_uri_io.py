"""Sources and outputs named by pyarrow.fs URIs (file://, and s3:// on a local moto server): the
same shards as a local build, resume on an object store, and one-line errors."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from conftest import write_folder
from ssl4rl import build as build_module
from ssl4rl.build import BuildConfig, build
from ssl4rl.errors import UserError
from test_webdataset import png, shard

OPTS = dict(task="rotation", shard_rows=4, test_fraction=0.3)
WHERE = ("source", "path")  # the only manifest fields that name where the source is


def local_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def same_build(a: dict[str, bytes], b: dict[str, bytes]) -> None:
    """Byte-identical shards; manifests equal but for where the source was read from."""
    assert sorted(a) == sorted(b) and any(name.endswith(".parquet") for name in a)
    for name in a:
        if name != "manifest.json":
            assert a[name] == b[name], name
    ma, mb = json.loads(a["manifest.json"]), json.loads(b["manifest.json"])
    for manifest in (ma, mb):
        manifest["config"].pop("source"), manifest["source"].pop("path")
    assert ma == mb


def hf_folder(root: Path, count: int) -> Path:
    root.mkdir(parents=True)
    for part in range(2):
        rows = [{"image": {"bytes": png(i), "path": None}, "label": i} for i in range(part * count, (part + 1) * count)]
        pq.write_table(pa.Table.from_pylist(rows), root / f"train-{part:05d}-of-00002.parquet")
    return root


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sources")
    shard(root / "tars" / "shard-000.tar", 0, 6)
    shard(root / "tars" / "shard-001.tar", 6, 6)
    write_folder(root / "photos" / "a", 12)
    for i in range(4):  # and one image twice: dropped as a duplicate alike
        (root / "photos" / "b" / f"{i}.png").parent.mkdir(parents=True, exist_ok=True)
        (root / "photos" / "b" / f"{i}.png").write_bytes(png(20 + i % 3))
    hf_folder(root / "hf", 6)
    return root


def run(source: str, out: str, workers: int = 1, **kwargs) -> dict:
    return build(BuildConfig(source=source, out=out, **{**OPTS, **kwargs}), workers=workers, progress_bar=False)


@pytest.mark.parametrize("given", ["tars/*.tar", "tars", "photos", "hf/*.parquet", "hf"])
def test_file_uris_build_the_same_shards_as_local_paths(tmp_path, sources, given):
    run(str(sources / given), str(tmp_path / "local"))
    run(f"file://{sources}/{given}", f"file://{tmp_path}/uri")
    same_build(local_files(tmp_path / "local"), local_files(tmp_path / "uri"))


def test_a_file_uri_output_keeps_the_build_lock(tmp_path, sources):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".lock").write_text(f"{os.getppid()}\n")  # a live process holds it
    with pytest.raises(UserError, match="is being built by process"):
        run(str(sources / "tars"), f"file://{out}")


# ---------------------------------------------------------------- s3:// on a local moto server
KEY, SECRET = "test-key", "test-secret"


@pytest.fixture(scope="module")
def s3(sources):
    """A moto S3 server on a free local port, a bucket holding the sources, and the query that
    points pyarrow at it."""
    server_module = pytest.importorskip("moto.server", reason="the s3:// tests need moto[server] (pip install 'moto[server]')")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # not a line per request
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as env:
        for name, value in {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1",
                            "AWS_EC2_METADATA_DISABLED": "true"}.items():  # fmt: skip
            env.setenv(name, value)
        fs = pafs.S3FileSystem(access_key=KEY, secret_key=SECRET, endpoint_override=f"{host}:{port}", scheme="http",
                               region="us-east-1", allow_bucket_creation=True)  # fmt: skip
        fs.create_dir("bkt")
        pafs.copy_files(str(sources), "bkt/src", source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)
        yield fs, f"?endpoint_override={host}%3A{port}&scheme=http"
    server.stop()


def s3_files(fs, prefix: str) -> dict[str, bytes]:
    infos = fs.get_file_info(pafs.FileSelector(f"bkt/{prefix}", allow_not_found=True))
    files = {}
    for info in infos:
        if info.type == pafs.FileType.File:
            with fs.open_input_stream(info.path) as handle:
                files[info.base_name] = handle.read()
    return files


@pytest.mark.parametrize("given", ["tars/*.tar", "photos", "hf/*.parquet"])
def test_s3_sources_and_outputs_give_the_bytes_of_a_local_build(tmp_path, sources, s3, given):
    fs, query = s3
    run(str(sources / given), str(tmp_path / "local"))
    # credentials in the URI: used, and never written to the manifest
    source = f"s3://{KEY}:{SECRET}@bkt/src/{given}{query}"
    manifest = run(source, f"s3://bkt/out-{given.split('/')[0]}{query}", workers=2)
    remote = s3_files(fs, f"out-{given.split('/')[0]}")
    same_build(local_files(tmp_path / "local"), remote)
    assert SECRET not in remote["manifest.json"].decode() and "endpoint_override" not in remote["manifest.json"].decode()
    assert manifest["config"]["source"] == f"s3://bkt/src/{given}" and manifest["source"]["path"].startswith("s3://bkt/src")


def test_a_local_source_built_into_s3_is_byte_identical_to_a_local_output(tmp_path, sources, s3):
    fs, query = s3
    run(str(sources / "tars"), str(tmp_path / "local"))
    run(str(sources / "tars"), f"s3://bkt/from-local{query}")
    assert s3_files(fs, "from-local") == local_files(tmp_path / "local")  # no .tmp, .lock or .progress.json left either


def test_an_interrupted_s3_build_resumes_from_its_complete_shards(tmp_path, sources, s3, monkeypatch):
    fs, query = s3
    opts = dict(task="contrastive", per_image=2, shard_rows=6, test_fraction=0.2)
    run(str(sources / "photos"), str(tmp_path / "reference"), **opts)
    calls, real = {"n": 0}, build_module.make_rows

    def failing(job):
        calls["n"] += 1
        if calls["n"] == 9:
            raise KeyboardInterrupt
        return real(job)

    out = f"s3://bkt/resumed{query}"
    monkeypatch.setattr(build_module, "make_rows", failing)
    with pytest.raises(KeyboardInterrupt):
        run(str(sources / "photos"), out, **opts)
    left = s3_files(fs, "resumed")
    kept = {info.base_name: info.mtime for info in fs.get_file_info(pafs.FileSelector("bkt/resumed")) if info.base_name.endswith(".parquet")}
    assert kept and ".progress.json" in left and "manifest.json" not in left
    assert not [name for name in left if name.endswith(".tmp")]  # the half-filled shard was removed, not published

    monkeypatch.setattr(build_module, "make_rows", real)
    run(str(sources / "photos"), out, **opts)
    assert s3_files(fs, "resumed") == local_files(tmp_path / "reference")
    after = {info.base_name: info.mtime for info in fs.get_file_info(pafs.FileSelector("bkt/resumed"))}
    assert all(after[name] == mtime for name, mtime in kept.items())  # finished shards were not written again


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ssl4rl", "build", "rotation", *args, "--quiet"], capture_output=True, text=True)


def test_bad_uris_are_one_line_and_write_nothing(tmp_path, sources, s3):
    fs, query = s3
    data = bytearray((sources / "tars" / "shard-000.tar").read_bytes())
    second_header = 512 + -(-len(png(0)) // 512) * 512
    data[second_header : second_header + 100] = b"\xff" * 100
    with fs.open_output_stream("bkt/bad/a.tar") as handle:
        handle.write(bytes(data))
    cases = [
        (f"s3://bkt/src/none/*.tar{query}", f"s3://bkt/e1{query}", "ssl4rl: error: s3://bkt/src/none/*.tar: no files match"),
        (f"s3://bkt/src/nothing-here{query}", f"s3://bkt/e2{query}", "ssl4rl: error: s3://bkt/src/nothing-here: no such file or folder"),
        (f"s3://bkt/bad/*.tar{query}", f"s3://bkt/e3{query}",
         f"ssl4rl: error: s3://bkt/bad/a.tar: corrupt tar header at byte {second_header}; the members after it cannot be read"),
        (str(sources / "tars"), f"s3://no-such-bucket/out{query}", "ssl4rl: error: s3://no-such-bucket/out: cannot create the output folder ("),
    ]  # fmt: skip
    for source, out, line in cases:
        result = cli("--source", source, "--out", out)
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith(line), result.stderr
    for prefix in ("e1", "e2", "e3"):
        assert not [name for name in s3_files(fs, prefix) if name.endswith(".parquet") or name == "manifest.json"]


def test_a_build_is_never_a_uri_source(tmp_path, sources, s3):
    fs, query = s3
    run(str(sources / "tars"), f"s3://bkt/built{query}")
    with pytest.raises(UserError, match="is an ssl4rl puzzle build"):
        run(f"s3://bkt/built{query}", str(tmp_path / "again"))
    with pytest.raises(UserError, match="matches files of the puzzle build"):
        run(f"s3://bkt/built/*.parquet{query}", str(tmp_path / "again"))
    assert not (tmp_path / "again").exists() or not list((tmp_path / "again").iterdir())


@pytest.mark.parametrize("where", ["source", "data"])
def test_graphs_are_never_read_from_a_uri(tmp_path, where):
    """A graph source or its --data given as a URI is refused, naming it, before the output
    folder exists (graphs are read whole from a local folder or a bundled graph)."""
    given = f"file://{tmp_path}/graph"
    config = BuildConfig(task="neighbour", source=given if where == "source" else "karate", data=given if where == "data" else None, out=str(tmp_path / "out"))
    with pytest.raises(UserError, match=f"^{given}: graphs are read from a local folder or a bundled graph, not a URI$"):
        build(config, workers=1, progress_bar=False)
    assert not (tmp_path / "out").exists()
