"""Property tests of the geometric correspondence puzzle: the recorded transform is the one in
the pixels, exactly one candidate is the marked point mapped through it, and nothing but the
geometry tells the candidates apart."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from conftest import textured_image
from ssl4rl.images import decode, encode, load
from ssl4rl.tasks import Correspondence
from ssl4rl.tasks.common import IMAGE_PLACEHOLDER, LETTERS, load_template, rng_for
from ssl4rl.tasks.correspondence import MAX_LOG_SCALE, MAX_ROTATION, MAX_SHEAR, MAX_SHIFT, apply, sample_transform, square_view, warp


def source(seed=0, width=200, height=150):
    return decode(encode(textured_image(seed, width, height)), source_id=f"img{seed}")


def pixels(image) -> np.ndarray:
    """Puzzle images as arrays, after the same encode/decode a dataset row goes through."""
    return np.asarray(load(encode(image))).astype(int)


OPTIONS = [
    {},
    {"mode": "perspective", "strength": 1.0, "candidates": 6},
    {"mode": "random", "strength": 0.8, "candidates": 8, "min_distance": 0.06, "size": 200},
]


# ---------------------------------------------------------------- the transform on pixels
def blob(size: int, x: float, y: float, sigma: float = 1.5) -> Image.Image:
    yy, xx = np.mgrid[0:size, 0:size]
    value = 255 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return Image.fromarray(np.repeat(value.round().astype(np.uint8)[..., None], 3, axis=2), "RGB")


def centroid(image: Image.Image) -> tuple[float, float]:
    """Brightness-weighted centre of the brightest spot."""
    value = np.asarray(image)[..., 0].astype(float)
    y0, x0 = np.unravel_index(np.argmax(value), value.shape)
    window = value[max(0, y0 - 6) : y0 + 7, max(0, x0 - 6) : x0 + 7]
    yy, xx = np.mgrid[max(0, y0 - 6) : max(0, y0 - 6) + window.shape[0], max(0, x0 - 6) : max(0, x0 - 6) + window.shape[1]]
    return float((xx * window).sum() / window.sum()), float((yy * window).sum() / window.sum())


@pytest.mark.parametrize("mode", ["affine", "perspective"])
def test_a_dot_lands_where_the_forward_matrix_sends_it(mode):
    """Catches an inverted or half-pixel-shifted PIL matrix: warp a lone dot, find it again."""
    size, discriminative = 160, 0
    for seed in range(12):
        rng = rng_for("dot", mode, seed)
        matrix = sample_transform(rng, size, size, mode, 1.0)
        while True:  # an integer pixel (a centred dot) that lands well inside the view
            x, y = (float(v) for v in rng.integers(12, size - 12, 2))
            if all(12 <= v <= size - 13 for v in apply(matrix, x, y)):
                break
        found = centroid(warp(blob(size, x, y), matrix, (size, size)))
        expected = apply(matrix, x, y)
        assert math.dist(found, expected) <= 1.0, (seed, found, expected)
        wrong = apply(np.linalg.inv(matrix), x, y)  # where an inverted matrix would put it
        discriminative += math.dist(wrong, expected) > 3
    assert discriminative >= 10


def test_exact_warps_match_numpy_pixel_for_pixel():
    """A 90-degree turn and an integer shift, with nearest sampling, are exact array moves."""
    image = textured_image(3, 64, 64)
    array = np.asarray(image)
    turn = [[0, -1, 63], [1, 0, 0], [0, 0, 1]]  # (x, y) -> (63 - y, x): clockwise
    turned = warp(image, turn, (64, 64), Image.Resampling.NEAREST)
    assert np.array_equal(np.asarray(turned), np.rot90(array, -1))
    shift = [[1, 0, 5], [0, 1, -3], [0, 0, 1]]
    shifted = np.asarray(warp(image, shift, (64, 64), Image.Resampling.NEAREST))
    assert np.array_equal(shifted[:61, 5:], array[3:, :59])
    assert not shifted[61:].any() and not shifted[:, :5].any()  # uncovered: black


@pytest.mark.parametrize("mode", ["affine", "perspective"])
def test_zero_strength_is_the_identity(mode):
    matrix = sample_transform(rng_for(0), 100, 100, mode, 0.0)
    assert np.allclose(matrix, np.eye(3))


# ---------------------------------------------------------------- the puzzle's geometry
@pytest.mark.parametrize("options", OPTIONS)
def test_exactly_the_answer_is_the_marked_point_mapped_through_the_transform(options):
    task = Correspondence(**options)
    for seed in range(25):
        puzzle = task.make(rng_for(seed), source(seed), [])
        p = puzzle.params
        size, k, points = p["size"], p["candidates"], np.array(p["candidate_points"])
        assert len(points) == k == task.candidates and puzzle.answer == LETTERS[p["true_index"]]
        mapped = apply(p["matrix"], *p["point"])
        assert math.dist(points[p["true_index"]], mapped) <= 1.0
        gaps = [math.dist(a, b) for i, a in enumerate(points) for b in points[i + 1 :]]
        assert min(gaps) >= task.min_distance * size * math.sqrt(2) - 1e-9  # from the truth and each other
        assert ((points >= p["radius"]) & (points <= size - 1 - p["radius"])).all()  # markers inside view 2
        back = np.stack(apply(np.linalg.inv(p["matrix"]), points[:, 0], points[:, 1]), axis=1)
        assert ((back >= 0) & (back <= size - 1)).all()  # every candidate lies on image content
        assert puzzle.images[0].size == puzzle.images[1].size == (size, size)


@pytest.mark.parametrize("options", OPTIONS[:2])
def test_the_views_are_the_image_and_its_warp_plus_identical_markers(options):
    task = Correspondence(**options)
    for seed in range(6):
        src = source(seed, 240, 180)
        puzzle = task.make(rng_for(seed), src, [])
        p = puzzle.params
        size, radius, colour = p["size"], p["radius"], tuple(p["marker_colour"])
        first, second = (pixels(im) for im in puzzle.images)
        base = square_view(src.pixels, size)
        expected_second = np.asarray(warp(base, p["matrix"], (size, size))).astype(int)
        yy, xx = np.mgrid[0:size, 0:size]

        def near(points, distance):
            return np.any([(xx - round(x)) ** 2 + (yy - round(y)) ** 2 <= distance**2 for x, y in points], axis=0)

        # Outside the marker (view 1) and the markers and labels (view 2) the pixels are untouched.
        outside = ~near([p["point"]], radius + 0.5)  # PIL fills pixels whose centres are within r + 0.5
        assert np.array_equal(first[outside], np.asarray(base).astype(int)[outside])
        away = ~near(p["candidate_points"], 5 * radius)
        assert np.array_equal(second[away], expected_second[away])

        # Every marker is the same patch of pixels, centred on its point.
        def patch(view, x, y):
            x, y = round(x), round(y)
            return view[y - radius : y + radius + 1, x - radius : x + radius + 1]

        disc = (np.mgrid[-radius : radius + 1, -radius : radius + 1] ** 2).sum(axis=0) <= radius**2  # inside PIL's disc
        reference = patch(first, *p["point"])[disc]
        assert (patch(first, *p["point"])[radius, radius] == colour).all()
        for x, y in p["candidate_points"]:
            assert np.array_equal(patch(second, x, y)[disc], reference)


def test_positions_of_the_truth_carry_no_hint():
    """The truth's letter, and its rank among the candidates by distance to the centre or by x,
    are all close to uniform."""
    task = Correspondence(candidates=4, size=128)
    letters, by_centre, by_x = Counter(), Counter(), Counter()
    runs = 600
    for seed in range(runs):
        puzzle = task.make(rng_for("balance", seed), source(seed % 7), [])
        p = puzzle.params
        points = np.array(p["candidate_points"])
        letters[puzzle.answer] += 1
        by_centre[int(np.argsort(np.argsort(np.linalg.norm(points - 63.5, axis=1)))[p["true_index"]])] += 1
        by_x[int(np.argsort(np.argsort(points[:, 0]))[p["true_index"]])] += 1
    for counts in (letters, by_centre, by_x):
        assert len(counts) == 4
        assert all(abs(c - runs / 4) < 0.2 * runs / 4 for c in counts.values()), counts


def affine_parameters(matrix, size: int) -> tuple[float, float, float, float]:
    """(rotation in degrees, log scale, shear, largest shift as a fraction of the side) of an
    affine matrix built as sample_transform builds it: shift . R . shear . scale about the centre."""
    m = np.asarray(matrix, float)
    linear = m[:2, :2]
    scale = float(np.hypot(linear[0, 0], linear[1, 0]))
    angle = math.atan2(linear[1, 0], linear[0, 0])
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    shear = float((rotation.T @ linear)[0, 1] / scale)
    centre = np.full(2, (size - 1) / 2)
    shift = m[:2, 2] + linear @ centre - centre
    return math.degrees(angle), math.log(scale), shear, float(np.abs(shift).max() / size)


@pytest.mark.parametrize("level", ["easy", "medium"])
def test_every_distractor_is_the_marked_point_under_another_transform_of_the_family(level):
    """Leak 1: distractors were spread uniformly while the true point sat near the marked coordinates."""
    task = Correspondence(**Correspondence.DIFFICULTY[level])
    s = task.strength
    for seed in range(12):
        p = task.make(rng_for(seed, "family"), source(seed), []).params
        matrices = p["candidate_matrices"]
        assert len(matrices) == task.candidates and matrices[p["true_index"]] == p["matrix"]
        for matrix, point in zip(matrices, p["candidate_points"]):
            assert math.dist(apply(matrix, *p["point"]), point) < 1e-6
            angle, log_scale, shear, shift = affine_parameters(matrix, p["size"])
            assert np.allclose(np.asarray(matrix)[2], [0, 0, 1])
            assert abs(angle) <= MAX_ROTATION * s + 1e-6 and abs(log_scale) <= MAX_LOG_SCALE * s + 1e-6
            assert abs(shear) <= MAX_SHEAR * s + 1e-6 and shift <= MAX_SHIFT * s + 1e-6


def test_hard_distractors_are_perspective_transforms_of_the_marked_point_too():
    task = Correspondence(**Correspondence.DIFFICULTY["hard"])
    for seed in range(6):
        p = task.make(rng_for(seed, "family"), source(seed), []).params
        for matrix, point in zip(p["candidate_matrices"], p["candidate_points"]):
            assert math.dist(apply(matrix, *p["point"]), point) < 1e-6
            assert not np.allclose(np.asarray(matrix)[2], [0, 0, 1])


@pytest.mark.parametrize("level", ["easy", "medium", "hard"])
def test_the_candidate_nearest_the_marked_coordinates_is_right_only_by_chance(level):
    """The old generator: 100 / 94 / 57 % right at easy / medium / hard (chance 33 / 25 / 17 %)."""
    task = Correspondence(**{**Correspondence.DIFFICULTY[level], "size": 192})
    runs, right = 240, 0
    for seed in range(runs):
        p = task.make(rng_for(seed, "nearest", level), source(seed % 5, 120, 120), []).params
        distances = [math.dist(p["point"], c) for c in p["candidate_points"]]
        right += int(np.argmin(distances)) == p["true_index"]
    chance = 1 / task.candidates
    assert abs(right / runs - chance) < 0.09, (right / runs, chance)  # about 3 standard errors


# ---------------------------------------------------------------- options, determinism, verifier
def test_same_seed_gives_identical_bytes_and_other_seeds_differ():
    task = Correspondence(mode="random", candidates=5)
    src = source(1)
    first = task.make(rng_for(7, "correspondence", "a"), src, [])
    again = task.make(rng_for(7, "correspondence", "a"), src, [])
    other = task.make(rng_for(8, "correspondence", "a"), src, [])
    assert [encode(im) for im in first.images] == [encode(im) for im in again.images]
    assert first.params == again.params and first.answer == again.answer
    assert encode(first.images[1]) != encode(other.images[1])


def test_difficulty_levels():
    for level, overrides in Correspondence.DIFFICULTY.items():
        task = Correspondence(**overrides)
        puzzle = task.make(rng_for(level), source(2), [])
        assert len(puzzle.params["candidate_points"]) == {"easy": 3, "medium": 4, "hard": 6}[level]
        last_row = np.array(puzzle.params["matrix"])[2]
        assert np.allclose(last_row, [0, 0, 1]) == (level != "hard")  # only hard is a true perspective


def test_non_square_and_small_sources_give_square_views():
    for width, height in ((64, 64), (300, 90), (90, 300)):
        puzzle = Correspondence(size=128).make(rng_for(width), source(0, width, height), [])
        assert [im.size for im in puzzle.images] == [(128, 128), (128, 128)]


def test_template_fits_the_puzzle():
    puzzle = Correspondence(candidates=6).make(rng_for(0), source(0), [])
    prompt = load_template("correspondence").format(**puzzle.prompt_vars)
    assert prompt.count(IMAGE_PLACEHOLDER) == len(puzzle.images) == 2
    assert "A, B, C, D, E, F" in prompt and "6 candidate" in prompt


@pytest.mark.parametrize(
    "options",
    [{"candidates": 1}, {"candidates": 9}, {"strength": -0.1}, {"strength": 1.5}, {"mode": "projective"},
     {"min_distance": 0.0}, {"candidates": 8, "min_distance": 0.2}, {"size": 64}],
)
def test_bad_options_are_refused(options):
    with pytest.raises(ValueError):
        Correspondence(**options)


def test_score_checks_the_letter_and_never_raises():
    score = Correspondence.score
    assert score("<think>x</think> <answer>B</answer>", "B", {"candidates": 4}) == 1.0
    assert score("<answer>(b)</answer>", "B") == 1.0
    assert score("<answer>C</answer>", "B", {"candidates": 4}) == 0.0
    assert score("<answer>F</answer>", "F", {"candidates": 4}) == 0.0  # not a letter of this puzzle
    for junk in ("", "B", "<answer></answer>", "<answer>B C</answer>", None, 3, "<answer>" * 1000):
        assert score(junk, "B", {"candidates": 4}) == 0.0
    for params in (None, {}, {"candidates": "x"}, {"candidates": None}, [], "bad"):
        assert score("<answer>B</answer>", "B", params) in (0.0, 1.0)
