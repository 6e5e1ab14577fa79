"""Bad input at the source layer: every reader counts what it drops, by reason, and one bad row,
file or folder never stops it; files over the size limit are skipped unread."""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from ssl4rl.cli import main
from ssl4rl.sources import FolderSource, HFSource, TsvSource, open_source

W, H = 96, 80


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def b64(seed: int) -> str:
    return base64.b64encode(png(seed)).decode()


def read_all(reader) -> list[tuple[str, str | None]]:
    """(source id, skip reason or None) of everything the reader yields."""
    return [(raw.source_id, raw.skip) for raw in reader]


def build_cli(source: Path, out: Path, capsys, *extra: str) -> tuple[int, str, dict]:
    code = main(["build", "rotation", "--source", str(source), "--out", str(out), "--quiet", "--workers", "1", *extra])
    err = capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").exists() else {}
    return code, err, manifest


# ---------------------------------------------------------------- TSV
def test_tsv_with_a_non_utf8_byte_and_a_byte_order_mark_reads_every_row(tmp_path):
    path = tmp_path / "bench.tsv"
    lines = ["index\tquestion\timage", f"0\tcaf\xe9?\t{b64(0)}", f"1\tok\t{b64(1)}"]
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode("latin-1") + b"\n")  # BOM, then one latin-1 byte
    assert read_all(TsvSource(path)) == [("0", None), ("1", None)]


def test_tsv_bad_rows_are_counted_not_fatal(tmp_path):
    path = tmp_path / "bench.tsv"
    rows = [
        f"0\tq\t{b64(0)}",
        "1\tshort",  # too few columns
        f"2\tq\t[{b64(2)!r}, 7, None]",  # a list of images holding non-strings
        "3\tq\t" + "[" * 5000 + "]" * 5000,  # nesting that breaks the literal parser
        f"4\tq\t{b64(4)}",
    ]
    path.write_text("index\tquestion\timage\n" + "\n".join(rows) + "\n")
    assert read_all(TsvSource(path)) == [
        ("0", None), ("1", "short-row"), ("2/0", None), ("2/1", "unreadable"), ("2/2", "unreadable"), ("3", "unreadable"), ("4", None),
    ]  # fmt: skip


def test_tsv_skips_are_counted_in_the_manifest(tmp_path, capsys):
    path = tmp_path / "bench.tsv"
    rows = [f"{i}\tq\t{b64(i)}" for i in range(4)] + ["9\tshort", f"10\tq\t[{b64(10)!r}, 3]"]
    path.write_text("index\tquestion\timage\n" + "\n".join(rows) + "\n")
    code, err, manifest = build_cli(path, tmp_path / "out", capsys)
    assert code == 0, err
    assert manifest["skipped"] == {"short-row": 1, "unreadable": 1}
    assert sum(manifest["rows"].values()) == 5


# ---------------------------------------------------------------- parquet
def test_parquet_null_images_are_counted(tmp_path):
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.table({"image": pa.array([{"bytes": png(0), "path": None}, None, {"bytes": None, "path": None}], image)})
    pq.write_table(table, tmp_path / "x.parquet")
    assert read_all(HFSource(tmp_path)) == [("x.parquet:0", None), ("x.parquet:1", "missing-image"), ("x.parquet:2", "missing-image")]


def test_an_image_column_of_numbers_is_one_line_and_exit_2(tmp_path, capsys):
    pq.write_table(pa.table({"image": [1, 2, 3]}), tmp_path / "x.parquet")
    code, err, _ = build_cli(tmp_path, tmp_path / "out", capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("ssl4rl: error:") and "int64" in err
    assert not (tmp_path / "out").exists()


def test_parquet_bytes_over_the_size_limit_are_skipped(tmp_path):
    pq.write_table(pa.table({"image": [png(0), png(1) + b"\0" * 5000]}), tmp_path / "x.parquet")
    assert read_all(HFSource(tmp_path, max_bytes=len(png(0)) + 100)) == [("x.parquet:0", None), ("x.parquet:1", "too-large")]


# ---------------------------------------------------------------- folders
def test_symlinked_and_unreadable_subfolders_are_counted(tmp_path, monkeypatch):
    root = tmp_path / "images"
    for name in ("a", "b", "locked"):
        (root / name).mkdir(parents=True)
    (root / "a" / "1.png").write_bytes(png(1))
    (root / "b" / "2.png").write_bytes(png(2))
    (root / "locked" / "3.png").write_bytes(png(3))
    (root / "link").symlink_to(root / "a", target_is_directory=True)
    real_scandir = os.scandir

    def scandir(path="."):  # root cannot be denied a folder: simulate the permission error
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert read_all(FolderSource(root)) == [("link/", "symlinked-folder"), ("locked/", "unreadable-folder"), ("a/1.png", None), ("b/2.png", None)]


def test_a_file_over_the_size_limit_is_skipped_before_it_is_read(tmp_path, monkeypatch):
    root = tmp_path / "images"
    root.mkdir()
    (root / "a.png").write_bytes(png(0))
    with open(root / "huge.jpg", "wb") as handle:  # sparse: 300 MB on paper, nothing on disk
        handle.truncate(300 * 2**20)
    read = Path.read_bytes

    def read_bytes(path):
        assert path.name != "huge.jpg", "the oversized file was read"
        return read(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    assert read_all(open_source(str(root))) == [("a.png", None), ("huge.jpg", "too-large")]
    assert read_all(open_source(str(root), max_bytes=100)) == [("a.png", "too-large"), ("huge.jpg", "too-large")]


def test_the_size_and_pixel_limits_are_build_flags(tmp_path, capsys):
    root = tmp_path / "images"
    root.mkdir()
    for seed in range(3):
        (root / f"{seed}.png").write_bytes(png(seed))
    big = np.zeros((300, 300, 3), np.uint8)
    Image.fromarray(big).save(root / "big.png")  # 0.09 MP, small file
    code, err, manifest = build_cli(root, tmp_path / "out", capsys, "--max-megapixels", "0.05")
    assert code == 0, err
    assert manifest["skipped"] == {"too-large": 1}
    code, err, manifest = build_cli(root, tmp_path / "out2", capsys, "--max-file-mb", str(len(png(0)) / 2**20 / 2))
    assert code == 0, err
    assert manifest["skipped"] == {"too-large": 3}


def test_a_parquet_file_damaged_inside_is_counted_and_the_next_file_is_read(tmp_path, monkeypatch):
    import ssl4rl.sources.hf as hf

    pq.write_table(pa.table({"image": [png(i) for i in range(40)]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"image": [png(9)]}), tmp_path / "b.parquet")
    real = hf._batches

    def damaged(file, columns):  # a page that fails to decode after the first row group
        for number, batch in enumerate(real(file, columns)):
            if file.name == "a.parquet" and number == 1:
                raise pa.ArrowInvalid("Couldn't deserialize thrift: corrupt page header")
            yield batch

    monkeypatch.setattr(hf, "_batches", damaged)
    first = [(f"a.parquet:{row}", None) for row in range(hf.BATCH_ROWS)]
    assert read_all(HFSource(tmp_path)) == [*first, ("a.parquet:", "unreadable-file"), ("b.parquet:0", None)]
