"""A contact sheet of built puzzles with their answers: look at what the model will see."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image, ImageDraw, ImageFont

from ssl4rl.errors import UserError
from ssl4rl.images import load

THUMB_HEIGHT = 112
SHEET_WIDTH = 1100
MARGIN = 8
CAPTION_HEIGHT = 22


def read_rows(folder: Path, n: int, split: str) -> list[dict]:
    """The first n rows of a split (streamed, so a large dataset is not loaded)."""
    files = sorted(folder.glob(f"{split}-*.parquet"))
    if not files:
        raise UserError(f"{folder}: no {split}-*.parquet files (is it an ssl4rl build folder?)")
    rows: list[dict] = []
    for file in files:
        for batch in pq.ParquetFile(file).iter_batches(batch_size=max(1, n)):
            rows.extend(batch.to_pylist()[: n - len(rows)])
            if len(rows) >= n:
                return rows
    return rows


def _thumbnails(row: dict) -> list[Image.Image]:
    thumbs = []
    for image in row["images"]:
        picture = load(image["bytes"])
        width = max(1, round(picture.width * THUMB_HEIGHT / picture.height))
        thumbs.append(picture.resize((width, THUMB_HEIGHT), Image.Resampling.BILINEAR))
    return thumbs


def _panel(row: dict, font) -> Image.Image:
    """One puzzle: a caption line, then its images left to right, wrapped to the sheet width."""
    lines: list[list[Image.Image]] = [[]]
    used = 0
    for thumb in _thumbnails(row):
        if lines[-1] and used + thumb.width > SHEET_WIDTH - 2 * MARGIN:
            lines.append([])
            used = 0
        lines[-1].append(thumb)
        used += thumb.width + MARGIN
    info = row["extra_info"]
    caption = f"{info['split']} #{info['index']} {info['task']}: {row['reward_model']['ground_truth']}"
    caption_width = int(font.getlength(caption)) + 2 * MARGIN
    width = max(caption_width, max(sum(t.width + MARGIN for t in line) + MARGIN for line in lines))
    height = CAPTION_HEIGHT + len(lines) * (THUMB_HEIGHT + MARGIN)
    panel = Image.new("RGB", (min(width, SHEET_WIDTH), height), "white")
    ImageDraw.Draw(panel).text((MARGIN, 3), caption, fill="black", font=font)
    y = CAPTION_HEIGHT
    for line in lines:
        x = MARGIN
        for thumb in line:
            panel.paste(thumb, (x, y))
            x += thumb.width + MARGIN
        y += THUMB_HEIGHT + MARGIN
    return panel


def contact_sheet(folder: Path, out: Path, n: int = 16, split: str = "test") -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder")
    if split == "test" and not any(folder.glob("test-*.parquet")):
        split = "train"  # a build with --test-fraction 0 has only a train split
    rows = read_rows(folder, n, split)
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
