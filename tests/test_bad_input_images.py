"""Bad input at the image layer: whatever the bytes, decoding returns RGB or raises SkipItem with
a reason; huge images are refused from their header; float images with NaN keep their picture."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from ssl4rl.errors import SkipItem
from ssl4rl.images import MAX_PIXELS, decode

REASONS = {"unreadable", "truncated", "too-large", "too-small"}


def photo(size: int = 48) -> Image.Image:
    """A small natural-looking image (gradients and edges), so every codec uses its real paths."""
    y, x = np.mgrid[0:size, 0:size]
    pixels = np.stack([x * 255 // size, y * 255 // size, ((x // 8 + y // 8) % 2) * 200], axis=-1).astype(np.uint8)
    return Image.fromarray(pixels)


def encoded(fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image = photo()
    if fmt == "GIF":
        image = image.convert("P")
    exif = Image.Exif()
    exif[0x0112] = 6  # an orientation tag, so mutations reach the EXIF transpose
    if fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        params["exif"] = exif
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def mutate(rng: np.random.Generator, data: bytes) -> bytes:
    """One to four random edits: flip bytes, overwrite with extreme values, cut, duplicate, insert."""
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 5))):
        if not out:
            break
        at = int(rng.integers(0, max(1, len(out))))
        kind = int(rng.integers(0, 6))
        if kind == 0:
            out[at] = int(rng.integers(0, 256))
        elif kind == 1:
            out[at : at + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00"])
        elif kind == 2:
            del out[at : at + int(rng.integers(1, 64))]
        elif kind == 3:
            out[at:at] = out[at : at + int(rng.integers(1, 64))]
        elif kind == 4:
            out[at:at] = rng.integers(0, 256, int(rng.integers(1, 16)), dtype=np.uint8).tobytes()
        else:
            out = out[:at]
    return bytes(out)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP"])
def test_no_exception_but_skip_escapes_decoding_mutated_files(fmt):
    original = encoded(fmt)
    rng = np.random.default_rng(10)
    for attempt in range(400):
        data = mutate(rng, original)
        try:
            source = decode(data)
        except SkipItem as skip:
            assert skip.reason in REASONS
            continue
        except Exception as error:  # pragma: no cover - the failure this test exists for
            pytest.fail(f"{fmt} mutation {attempt}: {type(error).__name__}: {error}")
        assert source.pixels.mode == "RGB" and min(source.size) >= 1


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_an_image_over_the_pixel_limit_is_skipped_from_its_header():
    """A 100-byte PNG may declare 100 megapixels: refused before any pixel is allocated."""
    data = _png_header_only(20_000, 5_000)
    assert 20_000 * 5_000 > MAX_PIXELS >= 20_000_000
    tracemalloc.start()
    try:
        with pytest.raises(SkipItem) as skip:
            decode(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert skip.value.reason == "too-large" and peak < 20 * 2**20


def test_the_pixel_limit_is_a_parameter():
    data = io.BytesIO()
    photo(100).save(data, "PNG")
    assert decode(data.getvalue()).size == (100, 100)
    with pytest.raises(SkipItem) as skip:
        decode(data.getvalue(), max_pixels=100 * 100 - 1)
    assert skip.value.reason == "too-large"
    with pytest.raises(SkipItem) as skip:  # above the default limit, the header-only file reaches the decoder
        decode(_png_header_only(20_000, 5_000), max_pixels=10**9)
    assert skip.value.reason in ("truncated", "unreadable")


def test_a_float_tiff_with_nan_keeps_its_picture():
    ramp = np.tile(np.linspace(0.0, 1.0, 64, dtype=np.float32), (32, 1))
    ramp[5, 7], ramp[6, 8], ramp[7, 9] = np.nan, np.inf, -np.inf
    buffer = io.BytesIO()
    Image.fromarray(ramp, "F").save(buffer, "TIFF")
    gray = np.asarray(decode(buffer.getvalue()).pixels)[..., 0].astype(int)
    assert gray[0, 0] == 0 and gray[0, -1] == 255 and 120 <= gray[20, 32] <= 135
    assert gray[5, 7] == gray[6, 8] == gray[7, 9] == 0


def test_corrupt_exif_and_foreign_formats_are_skipped_not_raised():
    """Bytes Pillow identifies as another format (a truncated DDS named .png) and an EXIF block
    whose orientation tag has the wrong type both end as a skip."""
    dds = b"DDS " + struct.pack("<7I", 124, 0x1007, 64, 64, 0, 0, 0) + b"\0" * 44 + struct.pack("<2I", 32, 4) + b"DXT9" + b"\0" * 40
    with pytest.raises(SkipItem):
        decode(dds)
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    photo().save(buffer, "JPEG", exif=exif.tobytes().replace(b"\x12\x01\x03\x00", b"\x12\x01\x07\x00"))
    try:
        source = decode(buffer.getvalue())
    except SkipItem:
        return
    assert source.pixels.mode == "RGB"
