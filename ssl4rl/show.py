"""A contact sheet of built puzzles with their answers: look at what the model will see.

Puzzles come from distinct source images (a build with --per-image 8 would otherwise show one
photo eight times); every image carries the label the prompt gives it (Candidate B, Tile 3,
Image 1), the right candidate is framed in green, and each caption names the task, the
difficulty level and the answer.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image, ImageDraw, ImageFont

from ssl4rl.errors import UserError
from ssl4rl.images import load
from ssl4rl.schema import difficulty_of, split_files
from ssl4rl.tasks.common import IMAGE_PLACEHOLDER

THUMB_HEIGHT = 112
SHEET_WIDTH = 1100
MARGIN = 8
CAPTION_HEIGHT = 22
LABEL_HEIGHT = 18


def sample_rows(folder: Path, n: int, split: str) -> list[dict]:
    """n rows of a split, each from another source image while there are enough (streamed, so
    a large dataset is not loaded)."""
    files = split_files(folder, split)
    if not files:
        raise UserError(f"{folder}: no {split}-*.parquet files (is it an ssl4rl build folder?)")
    rows: list[dict] = []
    spare: list[dict] = []  # rows of images already shown, used only if the split runs out
    seen: set[str] = set()
    for file in files:
        for batch in pq.ParquetFile(file).iter_batches(batch_size=max(1, n)):
            for row in batch.to_pylist():
                info = row["extra_info"]
                image = info.get("source_hash") or str(info.get("source_id", "")).split("#")[0]
                if image in seen:
                    if len(spare) < n:
                        spare.append(row)
                    continue
                seen.add(image)
                rows.append(row)
                if len(rows) >= n:
                    return rows
    return rows + spare[: n - len(rows)]


def image_labels(prompt: str, count: int) -> list[str]:
    r"""The prompt's name for each image: the text before its <image> marker on the same line.

    >>> image_labels("Anchor: <image>\nCandidate A: <image>\nCandidate B: <image>", 3)
    ['Anchor', 'Candidate A', 'Candidate B']
    """
    labels = []
    for line in prompt.splitlines():
        for part in line.split(IMAGE_PLACEHOLDER)[:-1]:
            labels.append(part.strip().rstrip(":").strip() or f"image {len(labels) + 1}")
    labels += [f"image {i + 1}" for i in range(len(labels), count)]
    return labels[:count]


def _thumbnails(row: dict) -> list[Image.Image]:
    thumbs = []
    for image in row["images"]:
        picture = load(image["bytes"])
        width = max(1, round(picture.width * THUMB_HEIGHT / picture.height))
        thumbs.append(picture.resize((width, THUMB_HEIGHT), Image.Resampling.BILINEAR))
    return thumbs


def caption_of(row: dict) -> str:
    """'inpainting (hard) train #12: answer A'."""
    info = row["extra_info"]
    return f"{info['task']} ({difficulty_of(info)}) {info['split']} #{info['index']}: answer {row['reward_model']['ground_truth']}"


RIGHT = (0, 160, 0)  # the frame around the right candidate


TEXT_LINES, TEXT_CHARS = 36, 80  # a text-only puzzle (graphs): its prompt, cut to this


def _text_panel(row: dict, font) -> Image.Image:
    """A puzzle without images (graph puzzles): the caption, then the prompt's text up to the
    answer-format paragraph; the right option's line ('B. ...') in green."""
    truth = str(row["reward_model"]["ground_truth"])
    body = row["prompt"][0]["content"].rsplit("\n\n", 1)[0]
    lines = [line if len(line) <= TEXT_CHARS else line[: TEXT_CHARS - 3] + "..." for line in body.splitlines()]
    if len(lines) > TEXT_LINES:
        lines = lines[: TEXT_LINES - 1] + [f"... ({len(lines) - TEXT_LINES + 1} more lines)"]
    caption = caption_of(row)
    width = max(int(font.getlength(text)) for text in [caption, *lines]) + 2 * MARGIN
    panel = Image.new("RGB", (min(width, SHEET_WIDTH), CAPTION_HEIGHT + len(lines) * LABEL_HEIGHT + MARGIN), "white")
    draw = ImageDraw.Draw(panel)
    draw.text((MARGIN, 3), caption, fill="black", font=font)
    for i, line in enumerate(lines):
        right = len(truth) == 1 and line.startswith(f"{truth}. ")
        draw.text((MARGIN, CAPTION_HEIGHT + i * LABEL_HEIGHT), line, fill=RIGHT if right else "black", font=font)
    return panel


def _panel(row: dict, font) -> Image.Image:
    """One puzzle: a caption line, then its labelled images left to right, wrapped to the sheet
    width; the right candidate of a lettered puzzle is framed in green."""
    if not row["images"]:
        return _text_panel(row, font)
    truth = str(row["reward_model"]["ground_truth"])
    thumbs = _thumbnails(row)
    labels = image_labels(row["prompt"][0]["content"], len(thumbs))
    lines: list[list[tuple[Image.Image, str]]] = [[]]
    used = 0
    for thumb, label in zip(thumbs, labels):
        if lines[-1] and used + thumb.width > SHEET_WIDTH - 2 * MARGIN:
            lines.append([])
            used = 0
        lines[-1].append((thumb, label))
        used += max(thumb.width, int(font.getlength(label))) + MARGIN
    caption = caption_of(row)
    caption_width = int(font.getlength(caption)) + 2 * MARGIN
    width = max(caption_width, max(sum(max(t.width, int(font.getlength(lb))) + MARGIN for t, lb in line) + MARGIN for line in lines))
    row_height = THUMB_HEIGHT + LABEL_HEIGHT + MARGIN
    panel = Image.new("RGB", (min(width, SHEET_WIDTH), CAPTION_HEIGHT + len(lines) * row_height), "white")
    draw = ImageDraw.Draw(panel)
    draw.text((MARGIN, 3), caption, fill="black", font=font)
    y = CAPTION_HEIGHT
    for line in lines:
        x = MARGIN
        for thumb, label in line:
            right = label.split()[-1:] == [truth] and len(truth) == 1  # 'Candidate B' when the answer is B
            panel.paste(thumb, (x, y))
            if right:
                draw.rectangle((x - 3, y - 3, x + thumb.width + 2, y + THUMB_HEIGHT + 2), outline=RIGHT, width=3)
            draw.text((x, y + THUMB_HEIGHT + 2), label + (" = answer" if right else ""), fill=(0, 130, 0) if right else "black", font=font)
            x += max(thumb.width, int(font.getlength(label))) + MARGIN
        y += row_height
    return panel


def contact_sheet(folder: Path, out: Path, n: int = 16, split: str = "test") -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder")
    if split == "test" and not split_files(folder, "test"):
        split = "train"  # a build with --test-fraction 0 has only a train split
    rows = sample_rows(folder, n, split)
    font = ImageFont.load_default(size=14)
    panels = [_panel(row, font) for row in rows]
    # Shelf packing: panels left to right, a new shelf when the next one does not fit.
    places, x, y, shelf_height = [], 0, 0, 0
    for panel in panels:
        if x and x + panel.width > SHEET_WIDTH:
            x, y, shelf_height = 0, y + shelf_height + 2, 0
        places.append((x, y))
        x += panel.width + 2
        shelf_height = max(shelf_height, panel.height)
    width = max(px + p.width for p, (px, _) in zip(panels, places))
    sheet = Image.new("RGB", (width, y + shelf_height), (200, 200, 200))
    for panel, place in zip(panels, places):
        sheet.paste(panel, place)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out
