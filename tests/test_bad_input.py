"""Bad input: user mistakes end in one `ssl4rl: error:` line and exit 2 with nothing written;
bad images are skipped and counted; every Pillow mode decodes to RGB; bombs are skipped."""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

import ssl4rl.images
from ssl4rl.cli import main
from ssl4rl.errors import SkipItem
from ssl4rl.images import decode

W, H = 96, 80


def noise(seed: int, size: tuple[int, int] = (W, H)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


def encode(image: Image.Image | np.ndarray, fmt: str = "PNG", **params) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def write_tsv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


# ---------------------------------------------------------------- CLI: user errors
@pytest.fixture
def cli(capsys, tmp_path, monkeypatch):
    """Runs `ssl4rl build rotation --source ... --out OUT --quiet`; returns (code, stdout, stderr, OUT)."""
    monkeypatch.chdir(tmp_path)  # bare names cannot accidentally be existing paths

    def run(*args: str):
        out = tmp_path / "out"
        code = main(["build", "rotation", *args, "--out", str(out), "--quiet", "--workers", "1"])
        captured = capsys.readouterr()
        return code, captured.out, captured.err, out

    return run


def _tsv_without_image(tmp_path: Path) -> tuple[list[str], list[str]]:
    path = write_tsv(
        tmp_path / "MMBench_DEV_EN.tsv",
        ["index", "question", "picture"],
        [["0", "q", base64.b64encode(encode(noise(0))).decode()]],
    )
    return ["--source", str(path)], [str(path), "image"]


def _parquet_without_image(tmp_path: Path) -> tuple[list[str], list[str]]:
    folder = tmp_path / "hf" / "data"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"index": [0, 1], "question": ["a", "b"], "answer": ["A", "B"]}), folder / "test-00000-of-00001.parquet")
    return ["--source", str(tmp_path / "hf")], [str(tmp_path / "hf"), "--image-column"]


def _parquet_wrong_column(tmp_path: Path) -> tuple[list[str], list[str]]:
    folder = tmp_path / "hf2"
    folder.mkdir()
    pq.write_table(pa.table({"image": [base64.b64encode(encode(noise(0))).decode()]}), folder / "x.parquet")
    return ["--source", str(folder), "--image-column", "photo"], [str(folder), "'photo'"]


CASES = {
    "missing path": lambda tmp: (["--source", str(tmp / "no" / "such.tsv")], [str(tmp / "no" / "such.tsv")]),
    "missing --data path": lambda tmp: (["--source", "mmbench", "--data", str(tmp / "gone.tsv")], [str(tmp / "gone.tsv")]),
    "unknown source": lambda tmp: (["--source", "nosuch_source"], ["nosuch_source"]),
    "unknown source with --data": lambda tmp: (["--source", "nosuch_source", "--data", str(tmp)], ["nosuch_source"]),
    "preset without --data": lambda tmp: (["--source", "coco"], ["coco", "--data"]),
    "empty folder": lambda tmp: ((tmp / "empty").mkdir() or ["--source", str(tmp / "empty")], [str(tmp / "empty")]),
    "tsv without image column": _tsv_without_image,
    "parquet without image column": _parquet_without_image,
    "parquet without the named column": _parquet_wrong_column,
}


@pytest.mark.parametrize("case", list(CASES))
def test_user_error_is_one_line_exit_2_nothing_written(cli, tmp_path, case):
    args, names = CASES[case](tmp_path)
    code, stdout, stderr, out = cli(*args)
    assert code == 2
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("ssl4rl: error: ")
    for name in names:
        assert name in lines[0]
    assert stdout == ""
    assert not out.exists()


def test_unknown_task_is_an_argparse_error(capsys, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["build", "no-such-task", "--source", "samples", "--out", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "no-such-task" in err and "invalid choice" in err
    assert not out.exists()


def test_bad_task_option_is_a_user_error(cli):
    code, _, stderr, out = cli("--source", "samples", "--granularity", "7")
    assert code == 2 and len(stderr.splitlines()) == 1
    assert stderr.startswith("ssl4rl: error: ") and "granularity" in stderr
    assert not out.exists()


# ---------------------------------------------------------------- bad images are skipped and counted
@pytest.mark.parametrize("workers", [1, 2])
def test_bad_images_are_counted(tmp_path, capsys, workers):
    folder = tmp_path / "images"
    folder.mkdir()
    good = [noise(seed) for seed in range(4)]
    for k, array in enumerate(good):
        (folder / f"good_{k}.png").write_bytes(encode(array))
    (folder / "x.jpg").write_bytes(np.random.default_rng(9).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    whole = encode(noise(50))
    (folder / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (folder / "tiny.png").write_bytes(encode(noise(60, (10, 10))))
    out = tmp_path / "out"

    code = main(["build", "rotation", "--source", str(folder), "--out", str(out), "--quiet", "--workers", str(workers), "--test-fraction", "0.5"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["skipped"] == {"too-small": 1, "truncated": 1, "unreadable": 1}
    assert manifest["rows"]["train"] + manifest["rows"]["test"] == len(good)
    ids = sorted(
        row["extra_info"]["source_id"]
        for path in out.glob("*.parquet")
        for row in pq.read_table(path, columns=["extra_info"]).to_pylist()
    )
    assert ids == [f"good_{k}.png" for k in range(len(good))]
    assert "unreadable 1" in captured.out and "truncated 1" in captured.out and "too-small 1" in captured.out


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_half_a_file_is_truncated(fmt):
    whole = encode(noise(3, (400, 300)), fmt)
    with pytest.raises(SkipItem) as skip:
        decode(whole[: len(whole) // 2])
    assert skip.value.reason == "truncated"


def test_file_cut_inside_the_jpeg_header_is_truncated():
    whole = encode(np.zeros((H, W, 3), np.uint8), "JPEG")  # small: the header is most of the file
    with pytest.raises(SkipItem) as skip:
        decode(whole[: len(whole) // 2])
    assert skip.value.reason == "truncated"


@pytest.mark.parametrize("data", [b"", b"GIF89a", b"\x89PNG\r\n\x1a\n", b"hello world" * 10])
def test_garbage_is_unreadable(data):
    with pytest.raises(SkipItem) as skip:
        decode(data)
    assert skip.value.reason == "unreadable"


def test_too_small_respects_min_side():
    data = encode(noise(1, (10, 12)))
    assert decode(data, min_side=10).size == (10, 12)
    with pytest.raises(SkipItem) as skip:
        decode(data, min_side=11)
    assert skip.value.reason == "too-small"


# ---------------------------------------------------------------- every Pillow mode -> RGB
def _gradient() -> np.ndarray:
    """(H, W) uint8, strictly increasing along x, constant along y."""
    return np.broadcast_to(np.linspace(10, 240, W).round().astype(np.uint8)[None, :], (H, W)).copy()


def _mode_image(mode: str) -> Image.Image:
    grey = _gradient()
    if mode == "1":
        return Image.fromarray(grey).point(lambda v: 255 if v >= 128 else 0).convert("1")
    if mode == "L":
        return Image.fromarray(grey)
    if mode == "LA":
        return Image.merge("LA", (Image.fromarray(grey), Image.new("L", (W, H), 255)))
    if mode == "P":
        return Image.fromarray(np.dstack([grey, 255 - grey, grey // 2])).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    if mode == "P+transparency":
        image = Image.fromarray((np.arange(W)[None, :] // 12).repeat(H, 0).astype(np.uint8), "P")
        image.putpalette([c for k in range(8) for c in (k * 30, 255 - k * 30, 100)])
        image.info["transparency"] = 0  # columns 0..11 are palette index 0
        return image
    if mode == "RGBA":
        return Image.fromarray(np.dstack([grey, 255 - grey, grey // 2, np.full_like(grey, 255)]), "RGBA")
    if mode == "CMYK":
        return Image.fromarray(np.dstack([grey, 255 - grey, grey // 2, np.zeros_like(grey)]), "CMYK")
    if mode == "I;16":
        return Image.fromarray(grey.astype(np.uint16) * 257)
    if mode == "I":
        return Image.fromarray(grey.astype(np.int32) * 100000 - 3_000_000)
    if mode == "F":
        return Image.fromarray(grey.astype(np.float32) / 255.0 - 0.5)
    raise AssertionError(mode)


MODES = [
    ("1", "PNG"),
    ("L", "PNG"),
    ("LA", "PNG"),
    ("P", "PNG"),
    ("P+transparency", "PNG"),
    ("RGBA", "PNG"),
    ("CMYK", "TIFF"),
    ("CMYK", "JPEG"),
    ("I;16", "PNG"),
    ("I;16", "TIFF"),
    ("I", "TIFF"),
    ("F", "TIFF"),
]


@pytest.mark.parametrize("mode,fmt", MODES, ids=[f"{m}-{f}" for m, f in MODES])
def test_every_mode_decodes_to_rgb(mode, fmt):
    image = _mode_image(mode)
    data = encode(image, fmt)
    opened = Image.open(io.BytesIO(data))
    assert opened.mode == image.mode or (mode == "P+transparency" and opened.mode == "P")
    decoded = decode(data)
    assert decoded.pixels.mode == "RGB" and decoded.size == (W, H)
    assert decoded.passthrough is False  # bytes that are not plain RGB are never shown as they are
    rgb = np.asarray(decoded.pixels)
    grey = _gradient()
    if mode in ("L", "LA"):
        assert np.array_equal(rgb, np.dstack([grey] * 3))
    elif mode == "1":
        assert set(np.unique(rgb)) <= {0, 255} and np.array_equal(rgb[..., 0], np.where(grey >= 128, 255, 0))
    elif mode == "RGBA":
        assert np.array_equal(rgb, np.dstack([grey, 255 - grey, grey // 2]))
    elif mode == "P":
        assert np.array_equal(rgb, np.asarray(opened.convert("RGB")))
    elif mode == "P+transparency":
        assert (rgb[:, :12] == 255).all()  # transparent index composited onto white
        assert np.array_equal(rgb[:, 12:24], np.broadcast_to(np.array([30, 225, 100], np.uint8), (H, 12, 3)))
    elif mode in ("I;16", "I", "F"):
        # stretched to the full 8-bit range, order along x preserved, grey
        assert rgb.min() == 0 and rgb.max() == 255
        assert (np.diff(rgb[0, :, 0].astype(int)) >= 0).all()
        assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
        assert (rgb == rgb[:1]).all()


def test_transparent_pixels_become_white():
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., :3] = (200, 10, 30)
    rgba[..., 3] = 255
    rgba[0, 0] = (0, 0, 0, 0)  # transparent black
    rgba[1, 1] = (0, 0, 255, 0)  # transparent blue
    rgba[2, 2] = (0, 0, 0, 128)  # half-transparent black
    rgb = np.asarray(decode(encode(Image.fromarray(rgba, "RGBA"))).pixels)
    assert tuple(rgb[0, 0]) == (255, 255, 255)
    assert tuple(rgb[1, 1]) == (255, 255, 255)
    assert all(abs(int(v) - 127) <= 1 for v in rgb[2, 2])
    assert tuple(rgb[5, 5]) == (200, 10, 30)

    la = Image.merge("LA", (Image.new("L", (W, H), 0), Image.new("L", (W, H), 0)))
    assert (np.asarray(decode(encode(la)).pixels) == 255).all()


def test_rgb_png_and_jpeg_pass_through_untouched():
    array = noise(4)
    png = encode(array)
    decoded = decode(png)
    assert decoded.passthrough and decoded.original() == png
    assert np.array_equal(np.asarray(decoded.pixels), array)
    jpeg = encode(array, "JPEG", quality=90)
    assert decode(jpeg).original() == jpeg


def test_exif_rotation_is_applied_and_not_passed_through():
    image = Image.fromarray(noise(5))  # 96 wide, 80 high
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    data = encode(image, "JPEG", exif=exif.tobytes(), quality=95)
    decoded = decode(data)
    assert decoded.size == (H, W) and not decoded.passthrough


# ---------------------------------------------------------------- decompression bombs
def test_decompression_bomb_is_skipped(monkeypatch):
    data = encode(noise(7))  # 96 x 80 = 7680 pixels
    assert decode(data).size == (W, H)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow errors above twice the limit
    assert ssl4rl.images.Image.MAX_IMAGE_PIXELS == 1000
    with pytest.raises(SkipItem) as skip:
        decode(data)
    assert skip.value.reason == "too-large"
