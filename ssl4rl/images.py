"""Decoding source images and encoding puzzle images.

Decoding normalises every Pillow mode to 8-bit RGB and applies EXIF orientation, so a
puzzle's pixels are what a viewer shows. Encoding writes lossless PNG with a fast deflate
(ISA-L) because PNG encoding dominates the cost of building most puzzles.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ssl4rl.errors import SkipItem

try:  # ISA-L deflate: 5-6x faster than zlib at level 1, and a smaller output
    from isal import isal_zlib as _deflate
except ImportError:  # pragma: no cover - isal is a dependency; zlib keeps output valid
    _deflate = zlib

PASSTHROUGH_FORMATS = {"JPEG", "PNG"}


@dataclass
class SourceImage:
    """A decoded RGB image plus its original bytes, for puzzles that show it untouched."""

    pixels: Image.Image
    data: bytes
    passthrough: bool  # True when `data` decodes to exactly `pixels` as RGB
    source_id: str = ""
    downscaled: bool = False  # decoded straight to a smaller size (`decode(fit=...)`)

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.size

    def original(self) -> Image.Image | bytes:
        """The untouched image: its source bytes when they can be shown as they are."""
        return self.data if self.passthrough else self.pixels


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB; transparency is composited onto white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        finite = np.isfinite(array)  # a float TIFF may hold NaN or inf: they become black, not all pixels
        values = array[finite]
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        scaled = (array - low) * (255.0 / (high - low)) if high > low else np.zeros_like(array)
        scaled[~finite] = 0.0
        return Image.fromarray(scaled.round().astype(np.uint8), "L").convert("RGB")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


MAX_PIXELS = 50_000_000  # well under Pillow's bomb limit (89 MP warns, 179 MP fails): ~150 MB as RGB


def decode(data: bytes, min_side: int = 1, source_id: str = "", max_pixels: int = MAX_PIXELS, fit=None) -> SourceImage:
    """Decode `data` to RGB or raise SkipItem('unreadable' | 'truncated' | 'too-large' | 'too-small').

    No other exception escapes: one hostile file must not stop a build. An image declaring
    more than `max_pixels` is skipped from its header, before its pixels are decoded.
    `fit(upright size)` may return a smaller (width, height) to decode to: a JPEG is then
    decoded at a reduced DCT scale (Pillow's draft), and resized once (Lanczos) to exactly that.
    """
    try:
        with warnings.catch_warnings():  # Pillow's warnings on odd files (and its bomb warning: our
            warnings.simplefilter("ignore")  # limit decides) would only be noise from the workers
            return _decode(data, min_side, source_id, max_pixels, fit)
    except SkipItem:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, MemoryError):
        raise SkipItem("too-large") from None
    except UnidentifiedImageError:
        raise SkipItem("unreadable") from None
    except Exception as error:  # noqa: BLE001 - Pillow plugins raise anything on corrupt bytes
        raise SkipItem("truncated" if "truncated" in str(error).lower() else "unreadable") from None


def _decode(data: bytes, min_side: int, source_id: str, max_pixels: int, fit=None) -> SourceImage:
    image = Image.open(io.BytesIO(data))
    if image.width * image.height > max_pixels:
        raise SkipItem("too-large")
    orientation = _exif_orientation(image)
    target = None
    if fit is not None:
        upright = image.size if orientation < 5 else image.size[::-1]  # 5-8 turn the image by 90 degrees
        if min(upright) < min_side:
            raise SkipItem("too-small")
        target = fit(upright)
        if target is not None and image.format == "JPEG":
            image.draft(None, target if orientation < 5 else target[::-1])
    image.load()
    source_format, source_mode = image.format, image.mode
    rgb = to_rgb(image if orientation == 1 else ImageOps.exif_transpose(image))
    if target is not None:
        return SourceImage(rgb.resize(target, Image.Resampling.LANCZOS), data, False, source_id, downscaled=True)
    if min(rgb.size) < min_side:
        raise SkipItem("too-small")
    passthrough = source_format in PASSTHROUGH_FORMATS and source_mode == "RGB" and orientation == 1
    return SourceImage(rgb, data, passthrough, source_id)


def _exif_orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:  # malformed EXIF: treat as upright
        return 1


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def encode_png(image: Image.Image) -> bytes:
    """Lossless RGB PNG: one 'Up' filter for all rows, deflate level 1 (ISA-L)."""
    pixels = np.asarray(to_rgb(image))
    height, width = pixels.shape[:2]
    filtered = np.empty((height, width * 3 + 1), np.uint8)
    filtered[:, 0] = 2  # PNG filter type 2 ('Up'): each byte minus the byte above
    rows = pixels.reshape(height, width * 3)
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", _deflate.compress(filtered.tobytes(), 1))
        + _png_chunk(b"IEND", b"")
    )


def encode_jpeg(image: Image.Image, quality: int = 95) -> bytes:
    buffer = io.BytesIO()
    to_rgb(image).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def encode(image: Image.Image | bytes, image_format: str = "png") -> bytes:
    """Bytes pass through untouched; images are encoded in `image_format` ('png' or 'jpeg')."""
    if isinstance(image, bytes):
        return image
    return encode_png(image) if image_format == "png" else encode_jpeg(image)


def load(data: bytes) -> Image.Image:
    """Decode bytes this package wrote (or any image) to RGB, for tests and `show`."""
    return to_rgb(Image.open(io.BytesIO(data)))
