"""`ssl4rl audit`: its probes find planted shortcuts, and every task's default and hard builds,
from the bundled photos and from JPEG photos, have none."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image, ImageFilter

from conftest import textured_image
from ssl4rl.audit import MIN_ITEMS, audit, block_phase, format_report, lookup_accuracy, pick_credit, wilson_lower
from ssl4rl.build import BuildConfig, build
from ssl4rl.cli import main
from ssl4rl.tasks import IMAGE_TASKS as TASKS


def jpeg_round_trip(image: Image.Image, quality: int = 75) -> np.ndarray:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def smooth_image(seed: int, size: int = 192) -> Image.Image:
    return textured_image(seed, size, size).resize((size // 8, size // 8)).resize((size, size), Image.Resampling.BICUBIC)


# ---------------------------------------------------------------- the statistics
def test_block_phase_finds_where_a_jpeg_grid_crosses_a_crop_and_nothing_in_lossless_pixels():
    decoded = jpeg_round_trip(smooth_image(0))
    right = 0
    for x, y in [(0, 0), (3, 5), (8, 1), (13, 22), (30, 7), (45, 60)]:
        crop = decoded[y : y + 64, x : x + 64]
        right += block_phase(crop) == ((-x) % 8, (-y) % 8)
    assert right >= 5
    assert block_phase(np.asarray(smooth_image(1))[:64, :64]) == (-1, -1)  # never compressed
    assert block_phase(np.full((64, 64, 3), 90, np.uint8)) == (-1, -1)


def test_lookups_are_scored_on_the_half_they_did_not_learn_from():
    rng = np.random.default_rng(0)
    labels = list(rng.integers(0, 4, 400))
    folds = [i % 2 for i in range(400)]
    assert lookup_accuracy(labels, labels, folds) == 1.0  # a feature that is the label
    unique = list(range(400))  # a feature that names each row: memorising it must not help
    assert lookup_accuracy(unique, labels, folds) < 0.35


def test_ties_share_the_credit_and_the_flag_needs_confidence():
    assert pick_credit([1, 3, 3], 1, True) == 0.5 and pick_credit([1, 3, 3], 0, False) == 1.0
    assert wilson_lower(0.6, 40) < 0.45 < wilson_lower(0.6, 2000)


# ---------------------------------------------------------------- a planted shortcut is flagged
@pytest.fixture(scope="module")
def photo_jpegs(tmp_path_factory):
    """JPEG photos (the bundled ones, cropped at random offsets and sizes, quality 75): their
    8x8 block grids are what the phase probes look for."""
    from ssl4rl.sources.samples import PHOTOS, samples_dir

    root = tmp_path_factory.mktemp("jpegs")
    rng = np.random.default_rng(0)
    for name in PHOTOS:
        photo = Image.open(samples_dir() / name).convert("RGB")
        for copy in range(2):
            width, height = (int(v) for v in rng.integers(200, 257, 2))
            scale = max(width / photo.width, height / photo.height, 0.5)
            small = photo.resize((max(width, round(photo.width * scale)), max(height, round(photo.height * scale))))
            x, y = int(rng.integers(0, small.width - width + 1)), int(rng.integers(0, small.height - height + 1))
            small.crop((x, y, x + width, y + height)).save(root / f"{name.split('.')[0]}_{copy}.jpg", quality=75)
    return root


def test_a_blurred_answer_is_flagged_and_the_command_exits_1(tmp_path, monkeypatch, capsys, photo_jpegs):
    from ssl4rl.tasks.flip import Flip

    make = Flip.make

    def leaky(self, rng, source, others=()):
        puzzle = make(self, rng, source, others)
        answer = "ABCDEFGH".index(puzzle.answer)
        puzzle.images[answer] = puzzle.images[answer].filter(ImageFilter.GaussianBlur(1.5))
        return puzzle

    monkeypatch.setattr(Flip, "make", leaky)
    out = tmp_path / "leaky"
    build(BuildConfig(task="flip", source=str(photo_jpegs), out=str(out), per_image=2, test_fraction=0.0), workers=1, progress_bar=False)
    assert main(["audit", str(out)]) == 1
    text = capsys.readouterr().out
    assert any(line.startswith("  FLAG lowest sharpness") for line in text.splitlines()), text
    assert main(["audit", str(out), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    flagged = {p["probe"] for g in report["groups"] for p in g["probes"] if p["flagged"]}
    assert "lowest sharpness" in flagged and report["flagged"] == len(flagged)


def test_inpainting_distractors_from_other_images_are_flagged_by_their_colours(tmp_path, photo_jpegs):
    """The old default (cross-image distractors): the one patch sharing the shown image's palette."""
    out = tmp_path / "cross"
    build(BuildConfig(task="inpainting", source=str(photo_jpegs), out=str(out), options={"cross_image": 1.0}, per_image=2, test_fraction=0.0),
          workers=2, progress_bar=False)  # fmt: skip
    report = audit(out)
    flagged = {p["probe"] for g in report["groups"] for p in g["probes"] if p["flagged"]}
    assert "closest colours" in flagged, format_report(report)


def test_a_folder_that_is_not_a_build_is_a_user_error(tmp_path, capsys):
    assert main(["audit", str(tmp_path / "missing")]) == 2
    assert main(["audit", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("ssl4rl: error:")


# ---------------------------------------------------------------- CI: no build has a shortcut
LEVELS = ["default", "hard"]


@pytest.mark.parametrize("source", ["samples", "jpegs"])
def test_every_tasks_default_and_hard_builds_have_no_shortcut(tmp_path, source, photo_jpegs):
    """Every task at its default and hard level, from the bundled photos and from JPEG photos:
    the audit flags nothing, and every flaggable probe was judged on enough items."""
    location = "samples" if source == "samples" else str(photo_jpegs)
    per_image = 3 if source == "samples" else 2
    reports = []
    for task in TASKS:
        for level in LEVELS:
            out = tmp_path / f"{task}-{level}"
            cfg = BuildConfig(task=task, source=location, out=str(out), per_image=per_image, test_fraction=0.0,
                              difficulty=None if level == "default" else [level], seed=11)  # fmt: skip
            build(cfg, workers=2, progress_bar=False)
            reports.append(audit(out))
    text = "\n".join(format_report(r) for r in reports)
    assert sum(r["flagged"] for r in reports) == 0, text
    for report in reports:
        (group,) = report["groups"]
        assert group["rows"] >= 40, text
        for probe in group["probes"]:
            assert not probe["flaggable"] or probe["items"] >= MIN_ITEMS, (group["task"], group["level"], probe["probe"])
            assert probe["description"] and "\n" not in probe["description"]
    # The task itself is reported, never flagged: continuing the hole's edges finds the patch.
    seams = [p for r in reports for g in r["groups"] for p in g["probes"] if p["probe"] == "seam"]
    assert len(seams) == 2 and all(p["accuracy"] > p["chance"] + 0.3 and not p["flagged"] for p in seams)
