"""Codec and parsing: the fast PNG writer is lossless; answer parsing never raises."""

from __future__ import annotations

import io

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
