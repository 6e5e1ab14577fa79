"""Codec and parsing: the fast PNG writer is lossless; answer parsing never raises."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from ssl4rl.images import decode, encode_png
from ssl4rl.tasks import TASKS
from ssl4rl.tasks.common import extract_answer


@settings(max_examples=60, deadline=None)
@given(width=st.integers(1, 70), height=st.integers(1, 70), seed=st.integers(0, 2**32 - 1))
def test_png_writer_is_lossless(width, height, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    data = encode_png(Image.fromarray(pixels))
    decoded = Image.open(io.BytesIO(data))
    assert decoded.format == "PNG" and decoded.mode == "RGB"
    assert np.array_equal(np.asarray(decoded), pixels)


def test_exif_orientation_is_applied_and_disables_passthrough():
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: the viewer rotates 90 degrees clockwise
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", exif=exif, quality=100)
    source = decode(buffer.getvalue())
    assert source.size == (20, 40) and not source.passthrough
    assert np.asarray(source.pixels)[:10].mean() > 200  # the white half is now on top


@settings(max_examples=300, deadline=None)
@given(st.text() | st.binary().map(lambda b: b.decode("latin-1")))
def test_parsing_and_scoring_never_raise(text):
    extract_answer(text)
    for response in (text, f"<answer>{text}</answer>"):
        for task, truth in (("rotation", "90"), ("jigsaw", "3,1,4,2"), ("position", "top-left"), ("contrastive", "positive")):
            assert TASKS[task].score(response, truth) in (0.0, 0.25, 0.5, 0.75, 1.0)


def test_parsing_a_huge_response_is_linear():
    response = "<answer>" * 200_000 + "x" * 1_000_000 + "<answer>90</answer>"
    assert extract_answer(response) == "90"


# ---------------------------------------------------------------- byte-exact PNG
def _determinism_images() -> list[Image.Image]:
    """Noise, smooth gradients and photos, in odd sizes: the encoder's match finder sees long,
    short and no repeats."""
    from ssl4rl.sources import SamplesSource

    rng = np.random.default_rng(5)
    images = [Image.fromarray(rng.integers(0, 256, (37 + 11 * k, 53 + 7 * k, 3), dtype=np.uint8)) for k in range(3)]
    y, x = np.mgrid[0:300, 0:257]
    images.append(Image.fromarray(np.stack([x % 256, y % 256, (x + y) % 256], -1).astype(np.uint8)))
    images += [decode(raw.data).pixels for raw in list(SamplesSource())[:6]]
    return images


def _png_digests(order: list[int] | None = None) -> list[str]:
    """md5 of each image's PNG, encoding in `order` and encoding other images in between."""
    import hashlib

    images = _determinism_images()
    noise = np.random.default_rng(len(order or [])).integers(0, 256, (64, 999, 3), dtype=np.uint8)
    digests = {}
    for i in order or range(len(images)):
        encode_png(Image.fromarray(noise))  # something else first: buffers are reused with other contents
        digests[i] = hashlib.md5(encode_png(images[i])).hexdigest()
    return [digests[i] for i in sorted(digests)]


def test_png_bytes_are_the_same_in_any_process_buffer_and_order():
    """docs/building.md promises byte-identical builds: the same pixels must encode to the same bytes in
    a fresh interpreter, in pool workers, in another order, after other images, and from input
    buffers at any alignment."""
    import hashlib
    import multiprocessing
    import subprocess
    import sys

    from ssl4rl.images import _deflate

    reference = _png_digests()
    count = len(reference)
    code = "import json, test_images; print(json.dumps(test_images._png_digests()))"
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parent, check=True)
    assert json.loads(fresh.stdout) == reference
    orders = [list(range(count))[::-1], list(np.random.default_rng(1).permutation(count)), list(range(1, count, 2)) + list(range(0, count, 2))]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        for result in pool.map(_png_digests, [[int(i) for i in order] for order in orders]):
            assert result == reference
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_png_digests) == reference
    for image in _determinism_images()[:4]:
        pixels = np.asarray(image)
        expected = encode_png(image)
        raw = pixels.tobytes()
        for offset in range(1, 8):  # the same pixels, and the same deflate input, at every alignment
            padded = np.zeros(pixels.size + offset, np.uint8)
            padded[offset:] = pixels.ravel()
            shifted = padded[offset:].reshape(pixels.shape)
            assert encode_png(Image.fromarray(shifted)) == expected
            buffer = bytearray(offset) + raw + bytes(np.random.default_rng(offset).integers(0, 256, 64, dtype=np.uint8))
            view = memoryview(buffer)[offset : offset + len(raw)]
            assert hashlib.md5(_deflate.compress(view, 1)).digest() == hashlib.md5(_deflate.compress(raw, 1)).digest()
