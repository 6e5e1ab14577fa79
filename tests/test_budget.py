"""The token budget: every row fits, counted the way a Qwen-VL processor counts it, and the
puzzles made from downscaled sources are still true."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import textured_image, write_folder
from PIL import Image

from ssl4rl.budget import TokenBudget
from ssl4rl.build import BuildConfig, build
from ssl4rl.build_jobs import Worker
from ssl4rl.cli import main
from ssl4rl.errors import UserError
from ssl4rl.images import decode, encode, load
from ssl4rl.modalities.image import make_within_budget
from ssl4rl.tasks import IMAGE_TASKS as TASKS
from ssl4rl.tasks.common import IMAGE_PLACEHOLDER, block_floor, load_template
from ssl4rl.tasks.jigsaw import assemble
from ssl4rl.tasks.rotation import rotate_ccw

ALL_HARD = {name: 1.0 for name in TASKS}


@pytest.fixture(scope="module")
def qwen_counter(tmp_path_factory):
    """A Qwen2.5-VL processor with Qwen's default pixel limits (the tiny model's tokenizer)."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    from ssl4rl.tiny_vlm import CHAT_TEMPLATE, train_tokenizer

    folder = tmp_path_factory.mktemp("processor")
    image_processor = Qwen2VLImageProcessor(min_pixels=3136, max_pixels=12845056)
    Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=train_tokenizer(), video_processor=Qwen2VLVideoProcessor(), chat_template=CHAT_TEMPLATE).save_pretrained(folder)
    return folder


def processor_length(processor, row: dict) -> int:
    """The row's prompt length as the processor makes it: chat template, image pads, specials."""
    parts, chunks = [], row["prompt"][0]["content"].split(IMAGE_PLACEHOLDER)
    for i, chunk in enumerate(chunks):
        parts += [{"type": "image"}] if i else []
        parts += [{"type": "text", "text": chunk}] if chunk else []
    text = processor.apply_chat_template([{"role": "user", "content": parts}], add_generation_prompt=True, tokenize=False)
    images = [Image.open(io.BytesIO(image["bytes"])).convert("RGB") for image in row["images"]]
    return len(processor(text=[text], images=images)["input_ids"][0])


def rows_of(out) -> list[dict]:
    return [row for path in sorted(out.glob("*-*.parquet")) for row in pq.read_table(path).to_pylist()]


@pytest.fixture(scope="module")
def large_photos(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("large"), 24, size=(640, 520), fmt="JPEG")


@pytest.mark.parametrize("exact", [False, True], ids=["upper-bound", "processor"])
def test_every_row_of_every_task_fits_the_budget_as_the_processor_counts_it(large_photos, qwen_counter, tmp_path, exact):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(qwen_counter)
    levels = [(name, "hard") for name in TASKS] + [("jigsaw", "medium")]  # 16 and 9 tiles, 6-candidate puzzles...
    downscaled, cap = 0, 700 if exact else 1024  # the byte bound leaves little room under 1024 for 16 tiles
    for name, level in levels:
        out = tmp_path / f"{name}-{level}"
        cfg = BuildConfig(
            task=name, source=str(large_photos), out=str(out), difficulty=[level], limit=6, test_fraction=0.0,
            max_prompt_tokens=cap, processor=str(qwen_counter) if exact else None,
        )  # fmt: skip
        manifest = build(cfg, progress_bar=False)
        lengths = [processor_length(processor, row) for row in rows_of(out)]
        reported = manifest["prompt_tokens"]["train"]
        assert lengths and max(lengths) <= cap, name
        assert reported["max"] >= max(lengths), name  # never under-counted
        if exact:
            assert (reported["min"], reported["max"]) == (min(lengths), max(lengths)), name
        downscaled += reported["downscaled_images"]
    assert downscaled > 0  # the cap did work


def test_without_a_cap_lengths_are_still_reported_and_nothing_is_downscaled(large_photos, tmp_path):
    manifest = build(BuildConfig(task="rotation", source=str(large_photos), out=str(tmp_path / "o"), max_prompt_tokens=0), progress_bar=False)
    train = manifest["prompt_tokens"]["train"]
    assert train["downscaled_images"] == 0 and train["min"] <= train["median"] <= train["p99"] <= train["max"]
    assert train["max"] > 1024  # 520-px squares at full size: over what the default cap allows
    capped = build(BuildConfig(task="rotation", source=str(large_photos), out=str(tmp_path / "c")), progress_bar=False)
    assert capped["prompt_tokens"]["train"]["max"] <= 1024 and capped["prompt_tokens"]["train"]["downscaled_images"] > 0


def test_a_puzzle_that_cannot_fit_is_skipped_and_a_build_of_no_rows_is_an_error(large_photos, tmp_path):
    out = tmp_path / "o"
    with pytest.raises(UserError, match=r"no puzzles were made \(skipped: over-token-budget \d+\)"):
        build(BuildConfig(task="jigsaw", source=str(large_photos), out=str(out), options={"grid": 4}, max_prompt_tokens=400), progress_bar=False)
    assert sorted(p.name for p in out.iterdir()) == []  # no manifest, no progress, no lock, no shard


def test_the_cli_exits_non_zero_with_the_skip_reasons_when_no_puzzle_fits(large_photos, tmp_path, capsys):
    code = main(["build", "jigsaw", "--source", str(large_photos), "--out", str(tmp_path / "o"), "--grid", "4", "--max-prompt-tokens", "400", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "no puzzles were made" in err[0] and "over-token-budget" in err[0]


# ---------------------------------------------------------------- truth after downscaling
def _made(task_name: str, options: dict, budget: int, width=900, height=760, partners=0):
    task = TASKS[task_name](**options)
    worker = Worker({}, {task_name: load_template(task_name)}, 0, "test", TokenBudget(budget), None)
    source = decode(encode(textured_image(7, width, height)), source_id="big")
    others = [decode(encode(textured_image(50 + i, 400, 360)), source_id=f"o{i}") for i in range(partners)]
    puzzle, prompt, shown, tokens = make_within_budget(task, "big/0", source, others, worker)
    assert shown is not source and shown.size[0] < width and tokens <= budget  # it was downscaled to fit
    return task, puzzle, shown


def test_rotation_from_a_downscaled_source_is_undone_exactly():
    _, puzzle, shown = _made("rotation", {"granularity": 90}, 700)
    original, rotated = (load(encode(image)) for image in puzzle.images)
    assert np.array_equal(np.asarray(rotate_ccw(rotated, -int(puzzle.answer))), np.asarray(original))


def test_jigsaw_from_a_downscaled_source_reassembles_exactly():
    _, puzzle, shown = _made("jigsaw", {"grid": 3}, 900)
    tiles = [load(encode(tile)) for tile in puzzle.images]
    restored = assemble([tiles[int(i) - 1] for i in puzzle.answer.split(",")], 3)
    width, height = block_floor(shown.size[0] // 3) * 3, block_floor(shown.size[1] // 3) * 3  # cells on the 16-px grid
    assert np.array_equal(np.asarray(restored), np.asarray(shown.pixels.crop((0, 0, width, height))))


def test_position_crop_from_a_downscaled_source_lies_in_its_cell():
    from test_tasks import find_exactly

    from ssl4rl.tasks.position import cell_box, cell_names

    _, puzzle, shown = _made("position", {"grid": 2}, 600, width=640, height=560)
    full, crop = np.asarray(load(encode(puzzle.images[0]))), np.asarray(load(encode(puzzle.images[1])))
    assert full.shape[1::-1] == shown.size
    (x, y), (h, w) = find_exactly(crop, full)[0], crop.shape[:2]
    left, top, right, bottom = cell_box(shown.size[0], shown.size[1], 2, cell_names(2).index(puzzle.answer))
    assert left <= x and x + w <= right and top <= y and y + h <= bottom


def test_inpainting_patch_from_a_downscaled_source_is_the_hole():
    from ssl4rl.tasks.common import LETTERS

    task, puzzle, shown = _made("inpainting", {}, 900, partners=TASKS["inpainting"]().partners)
    x0, y0, x1, y1 = puzzle.params["hole"]
    truth = np.asarray(load(encode(puzzle.images[1 + LETTERS.index(puzzle.answer)])))
    assert np.array_equal(truth, np.asarray(shown.pixels)[y0:y1, x0:x1])


# ---------------------------------------------------------------- bad input
def test_bad_budget_options_are_one_line_and_exit_2(tmp_path, capsys):
    photos = write_folder(tmp_path / "p", 2)
    for flags, message in ((["--processor", str(tmp_path / "none")], "no such processor folder"), (["--max-prompt-tokens", "-1"], "--max-prompt-tokens")):
        assert main(["build", "rotation", "--source", str(photos), "--out", str(tmp_path / "o"), *flags]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "o").exists()


def test_manifest_records_the_budget(tmp_path):
    photos = write_folder(tmp_path / "p", 4)
    manifest = build(BuildConfig(task="rotation", source=str(photos), out=str(tmp_path / "o"), max_prompt_tokens=800, patch_size=32), progress_bar=False)
    assert manifest["token_budget"]["max_prompt_tokens"] == 800 and manifest["token_budget"]["patch_factor"] == 32
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["prompt_tokens"]["train"]["max"] <= 800
