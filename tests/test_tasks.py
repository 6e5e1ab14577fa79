"""Property tests of the four puzzles: the answer is recoverable from the pixels."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from conftest import textured_image
from ssl4rl.audit import sharpness
from ssl4rl.images import SourceImage, decode, encode, load
from ssl4rl.tasks import Contrastive, Jigsaw, Position, Rotation
from ssl4rl.tasks.common import IMAGE_PLACEHOLDER, block_floor, derive_seed, load_template, rng_for
from ssl4rl.tasks.jigsaw import assemble, cut_tiles, tile_boxes
from ssl4rl.tasks.position import cell_box, cell_names
from ssl4rl.tasks.rotation import block_square, centre_crop, rotate_ccw


def source(seed=0, width=200, height=150) -> SourceImage:
    return decode(encode(textured_image(seed, width, height)), source_id=f"img{seed}")


def pixels(image) -> np.ndarray:
    """Puzzle images as arrays, after the same encode/decode a dataset row goes through."""
    return np.asarray(load(encode(image)))


# ---------------------------------------------------------------- rotation
@pytest.mark.parametrize("seed", range(12))
def test_undoing_the_answered_rotation_recovers_the_original_exactly(seed):
    src = source(seed)
    puzzle = Rotation().make(rng_for(seed), src, [])
    original, rotated = (load(encode(im)) for im in puzzle.images)
    assert original.width == original.height == 144  # square mode: block-aligned centre crop of 200x150
    assert np.array_equal(np.asarray(rotate_ccw(rotated, -int(puzzle.answer))), np.asarray(original))
    wrong = (int(puzzle.answer) + 90) % 360
    assert not np.array_equal(np.asarray(rotate_ccw(rotated, -wrong)), np.asarray(original))


def test_square_mode_hides_the_angle_in_the_image_size():
    sizes = Counter()
    for seed in range(40):
        puzzle = Rotation().make(rng_for(seed), source(seed, 240, 120), [])
        sizes[(puzzle.answer, puzzle.images[1].size)] += 1
    assert {size for _, size in sizes} == {(112, 112)}  # the largest block-aligned square
    sizes = {Rotation(square=False).make(rng_for(s), source(s, 240, 120), []).images[1].size for s in range(40)}
    assert sizes == {(240, 120), (120, 240)}  # the leak square mode removes


def test_fine_granularity_has_no_black_corners_and_one_crop_size():
    task = Rotation(granularity=45)
    seen = {}
    for seed in range(60):
        src = decode(encode(Image.new("RGB", (160, 160), (200, 180, 160))))
        puzzle = task.make(rng_for(seed), src, [])
        rotated = np.asarray(puzzle.images[1]).astype(int)
        seen[puzzle.answer] = rotated.shape
        assert np.abs(rotated - (200, 180, 160)).max() <= 1, f"black corner at {puzzle.answer} degrees"
    assert set(seen) == {str(a) for a in range(0, 360, 45)}
    assert len(set(seen.values())) == 1  # the same crop for every angle: size reveals nothing


def test_fine_granularity_rotation_is_undone_by_the_answered_angle():
    task = Rotation(granularity=30)
    for seed in range(8):
        src = decode(encode(_smooth(seed)))
        puzzle = task.make(rng_for(seed), src, [])
        rotated = puzzle.images[1]
        side = rotated.width

        def error(angle):
            back = rotate_ccw(rotated, -angle)
            return np.abs(np.asarray(centre_crop(back, side // 2, side // 2), float)
                          - np.asarray(centre_crop(src.pixels, side // 2, side // 2), float)).mean()

        errors = {a: error(a) for a in task.angles}
        assert min(errors, key=errors.get) == int(puzzle.answer)


def test_in_a_45_degree_set_every_angle_is_resampled_so_sharpness_cannot_split_them():
    """Leak 4: exact transposes (0, 90, ...) were sharper than resampled odd multiples of 45."""
    task = Rotation(granularity=45)
    ratios = {True: [], False: []}
    for seed in range(48):
        src = source(seed, 160, 160)
        puzzle = task.make(rng_for(seed, "sharp"), src, [])
        shown, rotated = puzzle.images
        side = rotated.width
        if int(puzzle.answer) == 0:  # not a plain crop of the original: resampled like the rest
            assert not np.array_equal(np.asarray(rotated), np.asarray(centre_crop(src.pixels, side, side)))
        ratio = sharpness(np.asarray(rotated)) / sharpness(np.asarray(centre_crop(src.pixels, side, side)))
        ratios[int(puzzle.answer) % 90 == 0].append(ratio)
    exact, odd = np.mean(ratios[True]), np.mean(ratios[False])
    assert len(ratios[True]) >= 12 and len(ratios[False]) >= 12
    assert abs(exact - odd) < 0.1 * odd, (exact, odd)  # was about 2x apart: transposes kept every edge
    # and the groups overlap: no threshold on the ratio sorts 80 % right (the old code: 100 %)
    values = sorted(ratios[True] + ratios[False])
    best = max(
        max(np.mean([r > t for r in ratios[True]] + [r <= t for r in ratios[False]]),
            np.mean([r <= t for r in ratios[True]] + [r > t for r in ratios[False]]))
        for t in values
    )  # fmt: skip
    assert best < 0.8


@pytest.mark.parametrize("size", [(200, 150), (150, 200), (333, 333), (64, 64)])
def test_the_square_crop_sits_on_the_16_px_block_grid(size):
    """A JPEG source's block grid then has the same phase in both images, whatever the angle."""
    left, top, right, bottom = block_square(*size)
    assert left % 16 == top % 16 == (right - left) % 16 == 0 and right - left == bottom - top
    assert min(size) - 16 < right - left <= min(size) and right <= size[0] and bottom <= size[1]


def _smooth(seed):
    """Low-frequency texture: interpolation error stays far below a wrong angle's error."""
    from PIL import ImageFilter

    return textured_image(seed, 180, 180).resize((45, 45)).resize((180, 180)).filter(ImageFilter.GaussianBlur(1))


@pytest.mark.parametrize("bad", [0, 7, 360, -90])
def test_rotation_rejects_granularities_that_do_not_divide_360(bad):
    with pytest.raises(ValueError):
        Rotation(granularity=bad)


# ---------------------------------------------------------------- jigsaw
@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
def test_reassembling_tiles_in_the_answered_order_recovers_the_trimmed_original(k):
    src = source(k, 200 + k, 190 + k)  # not multiples of k: trimming matters
    puzzle = Jigsaw(grid=k).make(rng_for(k), src, [])
    shown = [load(encode(tile)) for tile in puzzle.images]
    answer = [int(n) for n in puzzle.answer.split(",")]
    assert sorted(answer) == list(range(1, k * k + 1))
    restored = assemble([shown[i - 1] for i in answer], k)
    width, height = block_floor(src.size[0] // k) * k, block_floor(src.size[1] // k) * k
    assert np.array_equal(np.asarray(restored), np.asarray(src.pixels.crop((0, 0, width, height))))
    assert Jigsaw.score(f"<answer>{puzzle.answer}</answer>", puzzle.answer) == 1.0


@pytest.mark.parametrize("k, gap", [(2, 0.0), (3, 0.0), (4, 0.1), (6, 0.2)])
def test_tile_cuts_sit_on_the_16_px_block_grid(k, gap):
    """Leak 3: cuts at c * (W // K) kept a JPEG source's block phase, which told each tile's column and row."""
    for width, height in ((203, 171), (517, 389), (1000, 750)):
        boxes = tile_boxes(width, height, k, gap)
        x0, y0 = boxes[0][:2]
        assert all((x - x0) % 16 == 0 and (y - y0) % 16 == 0 for x, y, _, _ in boxes)  # one phase for all tiles
        if gap == 0:
            assert all(v % 16 == 0 for box in boxes for v in box)
        assert boxes[-1][2] <= width and boxes[-1][3] <= height


def test_jigsaw_gap_removes_the_border_of_each_cell():
    src = source(3, 200, 200)
    tiles = cut_tiles(src.pixels, 2, gap=0.2)
    assert tiles[0].size == (76, 76)  # 96-px cells (block-aligned) minus 10 px on each side
    assert np.array_equal(np.asarray(tiles[3]), np.asarray(src.pixels.crop((106, 106, 182, 182))))


def test_jigsaw_skips_images_whose_tiles_would_be_under_28_px():
    from ssl4rl.errors import SkipItem

    with pytest.raises(SkipItem, match="too-small"):
        Jigsaw(grid=4).make(rng_for(0), source(0, 100, 100), [])


def test_jigsaw_partial_credit_needs_a_valid_permutation():
    assert Jigsaw.score("<answer>3,1,2,4</answer>", "3,1,4,2") == 0.5
    assert Jigsaw.score("<answer>3,3,4,2</answer>", "3,1,4,2") == 0.0
    assert Jigsaw.score("<answer>3,1,4</answer>", "3,1,4,2") == 0.0


# ---------------------------------------------------------------- position
def find_exactly(needle: np.ndarray, haystack: np.ndarray) -> list[tuple[int, int]]:
    windows = sliding_window_view(haystack, needle.shape)[:, :, 0]
    hits = np.argwhere(np.all(windows == needle, axis=(2, 3, 4)))
    return [(int(x), int(y)) for y, x in hits]


@pytest.mark.parametrize("grid", [2, 3])
def test_unaugmented_crop_is_found_pixel_exactly_inside_the_named_cell(grid):
    for seed in range(6):
        src = source(seed, 180, 168)
        puzzle = Position(grid=grid).make(rng_for(seed), src, [])
        full, crop = pixels(src.pixels), pixels(puzzle.images[1])
        assert np.array_equal(np.asarray(load(encode(puzzle.images[0]))), full)
        hits = find_exactly(crop, full)
        assert len(hits) == 1
        (x, y), (h, w) = hits[0], crop.shape[:2]
        cell = cell_names(grid).index(puzzle.answer)
        left, top, right, bottom = cell_box(180, 168, grid, cell)
        assert left <= x and x + w <= right and top <= y and y + h <= bottom
        assert Position.score(f"<answer>{puzzle.answer.replace('-', ' ')}</answer>", puzzle.answer) == 1.0


def test_position_crop_side_stays_within_the_requested_range():
    task = Position(min_crop=0.5, max_crop=0.6)
    for seed in range(20):
        crop = task.make(rng_for(seed), source(seed, 400, 400), []).images[1]
        assert 100 <= crop.width <= 120 and 100 <= crop.height <= 120


def test_augmented_position_crop_keeps_its_place_but_not_its_pixels():
    differs = []  # the light preset leaves a crop untouched with p = 0.2 * 0.8 * 0.5 = 0.08
    for seed in range(10):
        plain = Position().make(rng_for(seed), source(5, 300, 300), [])
        augmented = Position(augment=True).make(rng_for(seed), source(5, 300, 300), [])
        assert augmented.params["box"] == plain.params["box"] and augmented.answer == plain.answer
        assert augmented.images[1].size == plain.images[1].size
        differs.append(not np.array_equal(pixels(plain.images[1]), pixels(augmented.images[1])))
    assert sum(differs) >= 7


# ---------------------------------------------------------------- contrastive
def test_contrastive_views_come_from_the_named_images():
    anchor, other = source(1, 300, 300), source(2, 300, 300)
    labels = Counter()
    for seed in range(40):
        puzzle = Contrastive().make(rng_for(seed), anchor, [other])
        labels[puzzle.answer] += 1
        assert [im.size for im in puzzle.images] == [(224, 224), (224, 224)]
        assert puzzle.params["partner_id"] == (None if puzzle.answer == "positive" else "img2")
    assert 10 <= labels["positive"] <= 30


def test_contrastive_without_a_partner_is_positive():
    assert {Contrastive().make(rng_for(s), source(1), []).answer for s in range(10)} == {"positive"}


def test_strong_preset_differs_from_default():
    default = Contrastive().make(rng_for(3), source(1, 300, 300), []).images[0]
    strong = Contrastive(preset="strong").make(rng_for(3), source(1, 300, 300), []).images[0]
    assert not np.array_equal(pixels(default), pixels(strong))


# ---------------------------------------------------------------- shared
@pytest.mark.parametrize(
    "task", [Rotation(), Rotation(granularity=45), Jigsaw(grid=2), Jigsaw(grid=5), Position(), Position(grid=3), Contrastive()]
)
def test_prompt_has_one_placeholder_per_image_and_asks_for_tags(task):
    puzzle = task.make(rng_for(0), source(0, 400, 400), [source(1, 400, 400)])
    prompt = load_template(task.name).format(**puzzle.prompt_vars)
    assert prompt.count(IMAGE_PLACEHOLDER) == len(puzzle.images)
    assert "<think>" in prompt and "<answer>" in prompt


def test_same_seed_same_puzzle_and_different_seed_different_puzzle():
    src = source(4, 300, 300)
    a, b = (Jigsaw(grid=3).make(rng_for(0, "jigsaw", "x"), src, []) for _ in range(2))
    assert a.answer == b.answer and all(np.array_equal(pixels(x), pixels(y)) for x, y in zip(a.images, b.images))
    answers = {Jigsaw(grid=3).make(rng_for(0, "jigsaw", f"x{i}"), src, []).answer for i in range(10)}
    assert len(answers) > 5
    assert derive_seed(0, "jigsaw", "x") != derive_seed(1, "jigsaw", "x")


@pytest.mark.parametrize(
    "task, response, expected",
    [
        (Rotation, "<think>hmm</think><answer>90°</answer>", 1.0),
        (Rotation, "<answer>-270</answer>", 0.0),  # the same turn, but not one of the listed angles
        (Rotation, "<answer>450 degrees</answer>", 0.0),
        (Rotation, "<answer>27090</answer>", 0.0),  # digit soup that is 90 modulo 360
        (Rotation, "<answer>090</answer>", 0.0),
        (Rotation, "<answer>180</answer>", 0.0),
        (Rotation, "90", 0.0),
        (Position, "<answer>Top_Right</answer>", 0.0),
        (Contrastive, "<ANSWER> Negative </ANSWER>", 0.0),
    ],
)
def test_verifiers_normalise_answers(task, response, expected):
    truth = {Rotation: "90", Position: "top-left", Contrastive: "positive"}[task]
    assert task.score(response, truth) == expected


@pytest.mark.parametrize("truth", ["0", "90", "180", "270"])
def test_rotation_rewards_exactly_the_true_angle_among_all_integers(truth):
    """No integer but the truth itself scores: angles read modulo 360 paid digit soup such as
    `27090` for 90, which a GRPO policy found and learned instead of the puzzle."""
    paid = [n for n in range(-1000, 100_000) if Rotation.score(f"<answer>{n}</answer>", truth)]
    assert paid == [int(truth)]
