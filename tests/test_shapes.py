"""The synthetic `shapes` source: deterministic, with an up and a left, every image task builds
from it, and its builds carry no shortcut the audit finds."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ssl4rl.audit import audit
from ssl4rl.build import BuildConfig, build
from ssl4rl.errors import UserError
from ssl4rl.sources import open_source
from ssl4rl.sources.shapes import SIZE, draw_picture, parse_count
from ssl4rl.tasks import TASKS

IMAGE_TASKS = [name for name, task in TASKS.items() if getattr(task, "modality", "image") == "image"]


def pixels(raw) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(raw.data)).convert("RGB"), np.float64)


def test_count_is_read_from_the_name_and_bad_counts_are_one_line():
    assert len(open_source("shapes")) == 1000
    assert len(open_source("shapes:7")) == 7
    for bad in ("shapes:0", "shapes:x", "shapes:-3", "shapes:1.5"):
        with pytest.raises(UserError, match="shapes:N"):
            parse_count(bad)


def test_picture_is_a_function_of_its_index_alone():
    small, large = list(open_source("shapes:5")), list(open_source("shapes:9"))
    assert [r.source_id for r in small] == [f"shape-{i:06d}" for i in range(5)]
    assert [r.data for r in small] == [r.data for r in large[:5]]
    assert len({r.data for r in large}) == 9  # no two alike
    assert pixels(small[0]).shape == (SIZE, SIZE, 3)


def test_pictures_have_an_up_and_a_left():
    """What makes orientation learnable: on average the top is brighter than the bottom and the
    left redder than the right, in every picture, by a margin a patch can see."""
    for index in range(40):
        p = np.asarray(draw_picture(index), np.float64)
        top, bottom = p[: SIZE // 4].mean(), p[-SIZE // 4 :].mean()
        left, right = p[:, : SIZE // 4], p[:, -SIZE // 4 :]
        assert top - bottom > 20, index
        assert (left[..., 0] - left[..., 2]).mean() - (right[..., 0] - right[..., 2]).mean() > 20, index


@pytest.mark.parametrize("task", IMAGE_TASKS)
def test_every_image_task_builds_from_shapes(tmp_path, task):
    manifest = build(BuildConfig(task=task, source="shapes:12", out=str(tmp_path / task), seed=0), workers=1, progress_bar=False)
    assert manifest["source"]["name"] == "shapes" and manifest["source"]["images"] == 12
    assert manifest["rows"]["train"] + manifest["rows"]["test"] >= 6, manifest["skipped"]  # similarity: the first images have no partners yet


@pytest.mark.parametrize("task", ["rotation", "position", "jigsaw", "flip"])
def test_shapes_builds_pass_the_audit(tmp_path, task):
    """A synthetic source is where a generator leaks a rule: the learnable tasks' builds must show
    no flagged probe (400 pictures: enough items for the flag rule to bite)."""
    out = tmp_path / task
    build(BuildConfig(task=task, source="shapes:400", out=str(out), seed=0, test_fraction=0.0), workers=2, progress_bar=False)
    report = audit(out)
    flagged = [(g["task"], p["probe"], p["accuracy"]) for g in report["groups"] for p in g["probes"] if p["flagged"]]
    assert not flagged
