"""Property tests of SSL-R1's inpainting and similarity puzzles: the answer is recoverable from the pixels."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from PIL import Image

from conftest import textured_image
from ssl4rl.errors import SkipItem
from ssl4rl.images import SourceImage, decode, encode, load
from ssl4rl.tasks import Inpainting, Similarity
from ssl4rl.tasks.common import IMAGE_PLACEHOLDER, LETTERS, load_template, rng_for
from ssl4rl.tasks.inpainting import HIDDEN_GREY, HOLE_GREY, MAX_OVERLAP, MIN_DIFFERENCE, NEARBY, overlap, visible_difference


def source(seed=0, width=200, height=150) -> SourceImage:
    return decode(encode(textured_image(seed, width, height)), source_id=f"img{seed}")


def flat(colour, width=120, height=100, source_id="flat") -> SourceImage:
    return decode(encode(Image.new("RGB", (width, height), colour)), source_id=source_id)


def pixels(image) -> np.ndarray:
    """Puzzle images as arrays, after the same encode/decode a dataset row goes through."""
    return np.asarray(load(encode(image))).astype(int)


def same_bytes(a, b) -> bool:
    return (a.answer, a.params, a.prompt_vars) == (b.answer, b.params, b.prompt_vars) and [
        encode(x) for x in a.images
    ] == [encode(y) for y in b.images]


def balanced(counts: Counter, letters: str, total: int) -> bool:
    expected = total / len(letters)
    return set(counts) == set(letters) and all(abs(counts[c] - expected) < 0.35 * expected for c in letters)


# ---------------------------------------------------------------- inpainting
def found_in(patch: np.ndarray, image: np.ndarray) -> bool:
    """Whether `patch` appears pixel-exactly anywhere in `image` (any offset)."""
    side = patch.shape[1]
    rows = np.lib.stride_tricks.sliding_window_view(image, (side, 3), axis=(1, 2))[:, :, 0]  # (H, W-side+1, side, 3)
    for y, x in zip(*np.nonzero((rows == patch[0]).all(axis=(2, 3)))):
        if y + patch.shape[0] <= image.shape[0] and np.array_equal(image[y : y + patch.shape[0], x : x + side], patch):
            return True
    return False


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("level", ["easy", "medium", "hard"])
def test_answered_patch_is_exactly_the_hole_and_every_candidates_place_is_hidden(seed, level):
    """Leak 2: a visible same-image distractor marked itself as wrong (hard: 100 %), and patches
    from other images were the only ones not sharing the shown image's palette (easy, medium)."""
    task = Inpainting(**Inpainting.DIFFICULTY[level])
    src = source(seed, 240, 200)
    assert task.partners == 0  # every level: distractors from the same image
    puzzle = task.make(rng_for(seed, level), src, [])
    original = np.asarray(src.pixels).astype(int)
    holed, *candidates = (pixels(image) for image in puzzle.images)
    assert len(candidates) == task.candidates and puzzle.answer in LETTERS[: task.candidates]
    x0, y0, x1, y1 = puzzle.params["hole"]
    side = x1 - x0
    assert y1 - y0 == side >= 28
    assert set(puzzle.params["sources"]) == {src.source_id}
    # Image 1: flat grey in the hole, dark grey in every distractor's box, the original elsewhere.
    boxes = [tuple(box) for box in puzzle.params["boxes"]]
    hidden = np.zeros(original.shape[:2], bool)
    for bx0, by0, bx1, by1 in boxes:
        fill = HOLE_GREY if (bx0, by0, bx1, by1) == (x0, y0, x1, y1) else HIDDEN_GREY
        assert (holed[by0:by1, bx0:bx1] == fill).all()
        hidden[by0:by1, bx0:bx1] = True
    assert np.array_equal(holed[~hidden], original[~hidden])
    # Candidates: all the hole's size; the answered one is the hole's pixels; none is visible in image 1.
    assert {c.shape for c in candidates} == {(side, side, 3)}
    truth = LETTERS.index(puzzle.answer)
    assert np.array_equal(candidates[truth], original[y0:y1, x0:x1])
    for i, candidate in enumerate(candidates):
        assert not found_in(candidate, holed)
        for other in candidates[:i]:
            assert visible_difference(candidate.astype(np.uint8), other.astype(np.uint8)) >= MIN_DIFFERENCE
    # Boxes keep apart and sit on the 16-px block grid (one JPEG block phase for all candidates).
    for i, a in enumerate(boxes):
        assert a[0] % 16 == 0 and a[1] % 16 == 0
        for b in boxes[i + 1 :]:
            assert overlap(a, b) == 0


@pytest.mark.parametrize("seed", range(6))
def test_distractor_boxes_name_their_pixels_and_keep_off_the_hole(seed):
    src = source(seed, 260, 220)
    others = [source(50 + i, 150 + 10 * i, 140) for i in range(3)]
    by_id = {s.source_id: s for s in [src, *others]}
    puzzle = Inpainting(candidates=6, cross_image=0.4, hole=0.2).make(rng_for(seed), src, others)
    candidates = [pixels(image) for image in puzzle.images[1:]]
    hole = tuple(puzzle.params["hole"])
    same_image_boxes = []
    for candidate, box, source_id in zip(candidates, puzzle.params["boxes"], puzzle.params["sources"]):
        x0, y0, x1, y1 = box
        assert np.array_equal(candidate, np.asarray(by_id[source_id].pixels)[y0:y1, x0:x1])
        if source_id == src.source_id:
            same_image_boxes.append(tuple(box))
    assert Counter(puzzle.params["sources"])[src.source_id] == 6 - 2  # round(0.4 * 5) = 2 from other images
    assert same_image_boxes.count(hole) == 1
    for i, a in enumerate(same_image_boxes):
        for b in same_image_boxes[i + 1 :]:
            assert overlap(a, b) <= MAX_OVERLAP


def test_fewer_other_images_mean_more_same_image_distractors():
    src = source(1, 240, 200)
    task = Inpainting(candidates=4, cross_image=1.0)
    assert task.partners == 3
    for count in range(4):
        others = [source(10 + i) for i in range(count)]
        sources = Inpainting(candidates=4, cross_image=1.0).make(rng_for(count), src, others).params["sources"]
        assert Counter(sources)[src.source_id] == 4 - count
        assert len(set(sources) - {src.source_id}) == count  # each other image gives one distractor
    assert Inpainting(cross_image=0.0).partners == 0


def test_nearby_distractors_come_from_around_the_hole():
    src = source(3, 400, 400)
    far = Counter()
    for seed in range(40):
        for nearby in (True, False):
            task = Inpainting(candidates=6, hole=0.1, cross_image=0.0, nearby=nearby)
            params = task.make(rng_for(seed), src, []).params
            hx, hy, reach = params["hole"][0], params["hole"][1], NEARBY * 40
            far[nearby] += sum(abs(box[0] - hx) > reach or abs(box[1] - hy) > reach for box in params["boxes"])
    assert far[True] <= 4 and far[False] > 150  # of 200 distractors (a full neighbourhood falls back to anywhere)


def test_inpainting_answer_letters_are_balanced():
    src, others = source(7, 160, 128), [source(8, 160, 128), source(9, 160, 128), source(10, 160, 128)]
    counts = Counter(Inpainting().make(rng_for(seed, "balance"), src, others).answer for seed in range(400))
    assert balanced(counts, "ABCD", 400), counts


def test_inpainting_same_seed_same_bytes():
    src, others = source(2, 220, 180), [source(3), source(4), source(5)]
    a, b = (Inpainting().make(rng_for(0, "inpainting", "x"), src, others) for _ in range(2))
    assert same_bytes(a, b)
    c = Inpainting().make(rng_for(0, "inpainting", "y"), src, others)
    assert c.params != a.params


def test_flat_image_is_skipped_as_ambiguous_and_a_small_one_as_too_small():
    with pytest.raises(SkipItem) as skip:
        Inpainting(cross_image=0.0).make(rng_for(0), flat((90, 90, 90), 200, 200), [])
    assert skip.value.reason == "ambiguous"
    # A flat partner image cannot supply a distractor for a flat hole either; the rest is textured.
    half = np.asarray(textured_image(0, 200, 200)).copy()
    half[:, :100] = 90
    src = decode(encode(Image.fromarray(half)), source_id="half")
    for seed in range(10):
        puzzle = Inpainting(candidates=3, hole=0.2, cross_image=1.0).make(rng_for(seed), src, [flat((90, 90, 90))] * 2)
        truth = pixels(puzzle.images[1 + LETTERS.index(puzzle.answer)])
        for i, image in enumerate(puzzle.images[1:]):
            if i != LETTERS.index(puzzle.answer):
                assert np.abs(pixels(image) - truth).mean() >= MIN_DIFFERENCE
    with pytest.raises(SkipItem) as skip:
        Inpainting().make(rng_for(0), source(0, 200, 55), [])
    assert skip.value.reason == "too-small"


@pytest.mark.parametrize(
    "options", [dict(candidates=1), dict(candidates=9), dict(hole=0.0), dict(hole=0.6), dict(cross_image=1.5)]
)
def test_inpainting_rejects_bad_options(options):
    with pytest.raises(ValueError):
        Inpainting(**options)


# ---------------------------------------------------------------- similarity
COLOURS = [(20, 200, 40), (30, 60, 220), (230, 210, 30), (200, 40, 200), (40, 200, 210), (120, 60, 10), (250, 250, 250)]


def flat_others(count: int) -> list[SourceImage]:
    return [flat(COLOURS[i], 120 + 10 * i, 100, f"flat{i}") for i in range(count)]


@pytest.mark.parametrize("level", ["easy", "medium", "hard"])
def test_only_the_answered_candidate_shows_the_anchor_image(level):
    """The anchor is textured and every other image flat: any augmentation keeps a flat image
    exactly flat and a textured one textured, so the pixels say which view is whose."""
    task = Similarity(**Similarity.DIFFICULTY[level], size=64)
    for seed in range(8):
        src = source(seed, 180, 150)
        puzzle = task.make(rng_for(seed, level), src, flat_others(task.partners))
        anchor, *views = (pixels(image) for image in puzzle.images)
        assert len(views) == task.candidates
        assert {v.shape for v in [anchor, *views]} == {(64, 64, 3)}
        textured = [i for i, view in enumerate(views) if view.reshape(-1, 3).std(axis=0).max() > 0.5]
        assert anchor.reshape(-1, 3).std(axis=0).max() > 0.5
        assert textured == [LETTERS.index(puzzle.answer)]
        assert all(view.reshape(-1, 3).std(axis=0).max() == 0 for i, view in enumerate(views) if i not in textured)


def test_similarity_params_name_one_anchor_and_distinct_others():
    src, others = source(0), [source(i) for i in range(1, 9)]
    for seed in range(20):
        puzzle = Similarity(candidates=5, size=32).make(rng_for(seed), src, others)
        sources = puzzle.params["sources"]
        assert puzzle.params["anchor"] == src.source_id and len(sources) == 5
        assert [i for i, s in enumerate(sources) if s == src.source_id] == [LETTERS.index(puzzle.answer)]
        assert len(set(sources)) == 5 and set(sources) - {src.source_id} <= {o.source_id for o in others}


def test_similarity_answer_letters_are_balanced():
    src, others = source(1, 64, 64), [source(i, 64, 64) for i in range(2, 5)]
    counts = Counter(Similarity(size=28).make(rng_for(seed, "balance"), src, others).answer for seed in range(400))
    assert balanced(counts, "ABCD", 400), counts


def test_similarity_same_seed_same_bytes():
    src, others = source(2), [source(3), source(4), source(5)]
    a, b = (Similarity(preset="strong", size=96).make(rng_for(0, "similarity", "x"), src, others) for _ in range(2))
    assert same_bytes(a, b)
    c = Similarity(preset="strong", size=96).make(rng_for(0, "similarity", "y"), src, others)
    assert not same_bytes(a, c)


def test_similarity_skips_images_without_enough_partners():
    src = source(0)
    for count in range(3):
        with pytest.raises(SkipItem) as skip:
            Similarity().make(rng_for(0), src, flat_others(count))
        assert skip.value.reason == "no-partners"
    assert Similarity(candidates=3).make(rng_for(0), src, flat_others(2)).answer in "ABC"
    assert Similarity(candidates=6).partners == 5


@pytest.mark.parametrize("options", [dict(candidates=1), dict(candidates=9), dict(preset="light"), dict(size=20)])
def test_similarity_rejects_bad_options(options):
    with pytest.raises(ValueError):
        Similarity(**options)


# ---------------------------------------------------------------- shared
@pytest.mark.parametrize("task", [Inpainting(), Inpainting(candidates=8), Similarity(candidates=2), Similarity()])
def test_prompt_has_one_placeholder_per_image_and_lists_the_letters(task):
    others = [source(i, 300, 300) for i in range(1, 1 + task.partners)]
    puzzle = task.make(rng_for(0), source(0, 300, 300), others)
    prompt = load_template(task.name).format(**puzzle.prompt_vars)
    assert prompt.count(IMAGE_PLACEHOLDER) == len(puzzle.images) == task.candidates + 1
    for letter in LETTERS[: task.candidates]:
        assert f"Candidate {letter}: {IMAGE_PLACEHOLDER}" in prompt
    assert f"Candidate {LETTERS[task.candidates]}" not in prompt
    assert "<think>" in prompt and "<answer>" in prompt


@pytest.mark.parametrize("task", [Inpainting, Similarity])
def test_score_checks_the_letter_within_the_puzzles_candidates_and_never_raises(task):
    params = {"candidates": 3}
    assert task.score("<think>x</think> <answer>B</answer>", "B", params) == 1.0
    assert task.score("<answer> (b) </answer>", "B", params) == 1.0
    assert task.score("<answer>A</answer>", "B", params) == 0.0
    assert task.score("<answer>D</answer>", "D", params) == 0.0  # D is not a candidate of a 3-way puzzle
    assert task.score("<answer>D</answer>", "D") == 1.0  # without params: any of A..H
    assert task.score("B", "B", params) == 0.0  # no answer tags
    for junk in (None, b"<answer>B</answer>", "", "<answer></answer>", "<answer>" * 1000, "\x00" * 50, 12):
        for junk_params in (None, {}, {"candidates": "x"}, {"candidates": float("inf")}, [], "p"):
            assert task.score(junk, "B", junk_params) == 0.0
