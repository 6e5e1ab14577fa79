"""Property tests of patch ordering and flip recognition: the answer is recoverable from the pixels."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from PIL import Image

from conftest import textured_image
from ssl4rl.errors import SkipItem
from ssl4rl.images import SourceImage, decode, encode, load
from ssl4rl.tasks import Flip, Ordering
from ssl4rl.tasks.common import IMAGE_PLACEHOLDER, LETTERS, block_floor, load_template, rng_for
from ssl4rl.tasks.flip import asymmetry
from ssl4rl.tasks.jigsaw import assemble
from ssl4rl.tasks.ordering import label_layout, slot_origin


def source(seed=0, width=200, height=150) -> SourceImage:
    return decode(encode(textured_image(seed, width, height)), source_id=f"img{seed}")


def pixels(image) -> np.ndarray:
    """Puzzle images as arrays, after the same encode/decode a dataset row goes through."""
    return np.asarray(load(encode(image)))


def same_bytes(a, b) -> bool:
    same_images = [encode(x) for x in a.images] == [encode(y) for y in b.images]
    return a.answer == b.answer and a.params == b.params and same_images


# ---------------------------------------------------------------- ordering
@pytest.mark.parametrize("k, separator", [(2, 0), (2, 2), (3, 2), (4, 1), (5, 3)])
def test_placing_numbered_tiles_at_the_answered_positions_restores_the_image_outside_the_labels(k, separator):
    src = source(k, 203 + k, 171 + 2 * k)  # not multiples of k: trimming matters
    puzzle = Ordering(grid=k, separator=separator).make(rng_for(k, separator), src, [])
    assert len(puzzle.images) == 1
    shown = pixels(puzzle.images[0])
    tile_w, tile_h = block_floor(src.size[0] // k), block_floor(src.size[1] // k)  # 16-px block-aligned cells
    assert shown.shape == (k * tile_h + (k - 1) * separator, k * tile_w + (k - 1) * separator, 3)
    assert puzzle.params["tile"] == [tile_w, tile_h]
    answer = [int(n) for n in puzzle.answer.split(",")]
    assert sorted(answer) == list(range(1, k * k + 1))
    # Cut the composed image back into its numbered tiles (number n = n-th slot, row-major).
    numbered = {}
    for slot in range(k * k):
        x, y = slot_origin(tile_w, tile_h, separator, slot, k)
        numbered[slot + 1] = shown[y : y + tile_h, x : x + tile_w]
    restored = np.asarray(assemble([Image.fromarray(numbered[n]) for n in answer], k))
    original = np.asarray(src.pixels.crop((0, 0, tile_w * k, tile_h * k)))
    x0, y0, x1, y1 = puzzle.params["label_box"]
    assert (x0, y0, x1, y1) == label_layout(tile_w, tile_h, k * k)[0]
    assert 0 < x1 - x0 < tile_w and 0 < y1 - y0 < tile_h
    outside = np.ones((tile_h, tile_w), bool)
    outside[y0:y1, x0:x1] = False
    mask = np.tile(outside, (k, k))
    assert np.array_equal(restored[mask], original[mask])
    # The labels are there: every label box differs from the original tile it covers.
    for position, n in enumerate(answer):
        row, col = divmod(position, k)
        cell = original[row * tile_h : (row + 1) * tile_h, col * tile_w : (col + 1) * tile_w]
        assert not np.array_equal(numbered[n][y0:y1, x0:x1], cell[y0:y1, x0:x1])
    # Separator lines are plain lines between the tiles.
    if separator:
        assert (shown[:, tile_w : tile_w + separator] == 255).all()
        assert (shown[tile_h : tile_h + separator, :] == 255).all()
    assert Ordering.score(f"<think>x</think><answer>{puzzle.answer}</answer>", puzzle.answer, puzzle.params) == 1.0


def test_ordering_labels_differ_between_tiles_and_are_drawn_dark_on_a_light_box():
    src = decode(encode(Image.new("RGB", (150, 150), (40, 90, 160))))  # 48-px cells
    puzzle = Ordering(grid=3).make(rng_for(0), src, [])
    shown = pixels(puzzle.images[0])
    x0, y0, x1, y1 = puzzle.params["label_box"]
    labels = []
    for slot in range(9):
        x, y = slot_origin(48, 48, 2, slot, 3)
        box = shown[y + y0 : y + y1, x + x0 : x + x1].astype(int)
        assert (box.min(axis=2) < 60).sum() > 5 and (box.min(axis=2) > 200).sum() > box.shape[0] * box.shape[1] / 3
        labels.append(box.tobytes())
    assert len(set(labels)) == 9  # each tile carries its own number


def test_ordering_is_deterministic_and_varies_with_the_seed():
    src = source(4, 300, 300)
    a, b = (Ordering(grid=3).make(rng_for(0, "ordering", "x"), src, []) for _ in range(2))
    assert same_bytes(a, b)
    answers = {Ordering(grid=3).make(rng_for(0, "ordering", f"x{i}"), src, []).answer for i in range(12)}
    assert len(answers) > 8


def test_ordering_needs_tiles_of_at_least_28_px_and_validates_options():
    with pytest.raises(SkipItem, match="too-small"):
        Ordering(grid=4).make(rng_for(0), source(0, 127, 200), [])
    Ordering(grid=4).make(rng_for(0), source(0, 128, 128), [])
    assert Ordering(grid=4).min_side == 128  # 32-px cells: the smallest 16-px multiple >= 28
    for bad in (dict(grid=1), dict(grid=6), dict(separator=-1)):
        with pytest.raises(ValueError):
            Ordering(**bad)
    assert Ordering(separator=True).separator == 1


def test_ordering_partial_credit_needs_a_valid_permutation():
    assert Ordering.score("<answer>3,1,2,4</answer>", "3,1,4,2") == 0.5
    assert Ordering.score("<answer>[3, 1, 4, 2]</answer>", "3,1,4,2") == 1.0
    assert Ordering.score("<answer>3,3,4,2</answer>", "3,1,4,2") == 0.0
    assert Ordering.score("<answer>3,1,4</answer>", "3,1,4,2") == 0.0
    for junk in ("", "3,1,4,2", "<answer></answer>", "<answer>a,b,c,d</answer>", "<answer>" + "9" * 500 + "</answer>"):
        assert Ordering.score(junk, "3,1,4,2") == 0.0


# ---------------------------------------------------------------- flip
@pytest.mark.parametrize("axis", ["horizontal", "vertical", "random"])
def test_the_answered_patch_is_the_exact_mirror_of_its_crop_and_the_others_are_untouched(axis):
    src = source(7, 260, 200)
    original = np.asarray(src.pixels)
    axes = Counter()
    for seed in range(12):
        task = Flip(axis=axis)
        puzzle = task.make(rng_for(seed), src, [])
        params = puzzle.params
        assert puzzle.answer == LETTERS[params["flipped"]]
        axes[params["axis"]] += 1
        boxes = params["boxes"]
        assert len(puzzle.images) == len(boxes) == task.candidates
        assert len({tuple(b) for b in boxes}) == task.candidates
        for i, (x0, y0, x1, y1) in enumerate(boxes):
            for j, (u0, v0, u1, v1) in enumerate(boxes[:i]):
                assert x1 <= u0 or u1 <= x0 or y1 <= v0 or v1 <= y0, "patches overlap"
            shown, crop = pixels(puzzle.images[i]), original[y0:y1, x0:x1]
            assert shown.shape == crop.shape == (x1 - x0, x1 - x0, 3)  # square, all the same size
            if i == params["flipped"]:
                flipped = crop[:, ::-1] if params["axis"] == "horizontal" else crop[::-1]
                assert np.array_equal(shown, flipped) and not np.array_equal(shown, crop)
            else:
                assert np.array_equal(shown, crop)
        assert Flip.score(f"<answer>{puzzle.answer.lower()}</answer>", puzzle.answer, params) == 1.0
    if axis == "random":
        assert set(axes) == {"horizontal", "vertical"}
    else:
        assert set(axes) == {axis}


@pytest.mark.parametrize("k", [2, 4, 6])
def test_flip_answers_are_balanced_across_letters(k):
    task = Flip(candidates=k, patch=0.25)
    counts = Counter(task.make(rng_for(seed, "flip"), source(seed % 5, 240, 240), []).answer for seed in range(60 * k))
    assert set(counts) == set(LETTERS[:k])
    assert min(counts.values()) >= 60 * 0.55 and max(counts.values()) <= 60 * 1.5


def test_flip_patch_side_follows_the_option():
    for task, side in ((Flip(), 96), (Flip(candidates=2, patch=0.5), 112), (Flip(candidates=6, patch=0.25), 48)):
        puzzle = task.make(rng_for(1), source(1, 300, 240), [])
        assert {im.size for im in puzzle.images} == {(side, side)}


def test_flip_skips_patches_that_look_the_same_mirrored():
    row = np.random.default_rng(0).integers(0, 256, (1, 200, 3), dtype=np.uint8)
    stripes = decode(encode(Image.fromarray(np.repeat(row, 200, axis=0))))  # constant down each column
    with pytest.raises(SkipItem, match="symmetric"):
        Flip(axis="vertical").make(rng_for(0), stripes, [])
    puzzle = Flip(axis="horizontal").make(rng_for(0), stripes, [])  # left-right mirror is visible
    assert puzzle.answer in LETTERS[:4]
    with pytest.raises(SkipItem, match="symmetric"):
        Flip().make(rng_for(0), decode(encode(Image.new("RGB", (200, 200), (90, 90, 90)))), [])


def half_flat_image(seed: int, size: int = 384) -> SourceImage:
    """Texture below, a flat grey band on top: flat patches are ones a mirror leaves unchanged."""
    pixels = np.asarray(textured_image(seed, size, size)).copy()
    pixels[: size // 4] = 120
    return decode(encode(Image.fromarray(pixels)), source_id=f"half{seed}")


@pytest.mark.parametrize("level", ["easy", "medium", "hard"])
def test_every_flip_patch_is_asymmetric_so_flatness_does_not_point_away_from_the_answer(level):
    """Leak 5: when only the mirrored patch had to pass min_asymmetry, flat patches were never the answer."""
    task = Flip(**Flip.DIFFICULTY[level])
    made = 0
    for seed in range(40):
        try:
            puzzle = task.make(rng_for(seed, "flat"), half_flat_image(seed % 4), [])
        except SkipItem:
            continue
        made += 1
        for i, image in enumerate(puzzle.images):
            shown = image if i != puzzle.params["flipped"] else image.transpose(
                Image.Transpose.FLIP_LEFT_RIGHT if puzzle.params["axis"] == "horizontal" else Image.Transpose.FLIP_TOP_BOTTOM
            )
            assert asymmetry(shown, puzzle.params["axis"]) >= task.min_asymmetry
    assert made >= 5


@pytest.mark.parametrize("level", ["easy", "medium", "hard"])
def test_flip_patches_start_and_end_on_the_16_px_block_grid(level):
    """A mirrored patch of a JPEG source shows its block grid where an unmirrored one would."""
    task = Flip(**Flip.DIFFICULTY[level], axis="random")
    for seed in range(10):
        puzzle = task.make(rng_for(seed, "grid"), source(seed, 301 + seed, 263), [])
        assert all(v % 16 == 0 for box in puzzle.params["boxes"] for v in box)


def test_flip_is_deterministic_and_varies_with_the_seed():
    src = source(2, 300, 260)
    a, b = (Flip(axis="random").make(rng_for(0, "flip", "x"), src, []) for _ in range(2))
    assert same_bytes(a, b)
    layouts = {str(Flip().make(rng_for(0, "flip", f"x{i}"), src, []).params) for i in range(10)}
    assert len(layouts) == 10


def test_flip_size_checks_and_option_validation():
    assert Flip().min_side == 80 and Flip(patch=0.25).min_side == 128  # 32-px patches at least
    with pytest.raises(SkipItem, match="too-small"):
        Flip().make(rng_for(0), source(0, 300, 79), [])
    Flip().make(rng_for(0), source(0, 80, 80), [])
    bad_options = (
        dict(candidates=1), dict(candidates=5, patch=0.4), dict(patch=0.6), dict(axis="up"), dict(min_asymmetry=-1)
    )
    for bad in bad_options:
        with pytest.raises(ValueError):
            Flip(**bad)


def test_flip_verifier_is_strict_about_letters_but_never_raises():
    params = {"boxes": [[0, 0, 1, 1]] * 4}
    assert Flip.score("<answer>(B)</answer>", "B", params) == 1.0
    assert Flip.score("<answer>E</answer>", "E", params) == 0.0  # no patch E among four
    for junk in ("", "B", "<answer></answer>", "<answer>patch B</answer>", "<answer>AB</answer>"):
        assert Flip.score(junk, "B", params) == 0.0
    assert Flip.score("<answer>B</answer>", "B", {"boxes": "junk"}) == 1.0


# ---------------------------------------------------------------- shared
@pytest.mark.parametrize(
    "task", [Ordering(), Ordering(grid=2, separator=0), Flip(), Flip(axis="random"), Flip(candidates=6, patch=0.25)]
)
def test_prompt_has_one_placeholder_per_image_and_asks_for_tags(task):
    puzzle = task.make(rng_for(0), source(0, 400, 400), [])
    prompt = load_template(task.name).format(**puzzle.prompt_vars)
    assert prompt.count(IMAGE_PLACEHOLDER) == len(puzzle.images)
    assert "<think>" in prompt and "<answer>" in prompt


@pytest.mark.parametrize("task_class", [Ordering, Flip])
def test_difficulty_levels_build_puzzles(task_class):
    assert set(task_class.DIFFICULTY) == {"easy", "medium", "hard"}
    sizes = []
    for level in ("easy", "medium", "hard"):
        task = task_class(**task_class.DIFFICULTY[level])
        puzzle = task.make(rng_for(0, level), source(3, 320, 240), [])
        sizes.append(len(puzzle.answer.split(",")) if task_class is Ordering else len(puzzle.images))
    assert sizes[0] < sizes[1] < sizes[2]
