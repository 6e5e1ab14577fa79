"""Contact sheets a researcher reads at a glance."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ssl4rl.build import BuildConfig, build
from ssl4rl.show import RIGHT, caption_of, contact_sheet, image_labels, sample_rows


def test_sheet_shows_distinct_images_labels_the_candidates_and_frames_the_right_one(tmp_path, photo_folder):
    data = tmp_path / "inpainting"
    build(BuildConfig(task="inpainting", source=str(photo_folder), out=str(data), per_image=4, test_fraction=0.0, difficulty=["hard"]), progress_bar=False)
    rows = sample_rows(data, 5, "train")
    # Four puzzles per photo come first in the file; the sheet still shows five photos.
    assert len({r["extra_info"]["source_hash"] for r in rows}) == 5
    first = rows[0]
    labels = image_labels(first["prompt"][0]["content"], len(first["images"]))
    assert labels == ["Image"] + [f"Candidate {letter}" for letter in "ABCDEF"]
    assert caption_of(first) == f"inpainting (hard) train #0: answer {first['reward_model']['ground_truth']}"
    sheet = np.asarray(Image.open(contact_sheet(data, tmp_path / "sheet.png", n=5, split="train")).convert("RGB"))
    green = np.all(sheet == RIGHT, axis=-1)
    assert green.sum() > 5 * 4 * 100  # a 3-px frame around one candidate of each of the five puzzles


def test_a_split_with_few_images_fills_up_with_more_puzzles_of_them(tmp_path, photo_folder):
    data = tmp_path / "rotation"
    build(BuildConfig(task="rotation", source=str(photo_folder), out=str(data), per_image=3, test_fraction=0.0, limit=6), progress_bar=False)
    rows = sample_rows(data, 6, "train")
    assert len(rows) == 6 and len({r["extra_info"]["source_hash"] for r in rows}) == 2
