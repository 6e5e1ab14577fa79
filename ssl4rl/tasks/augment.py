"""SimCLR-style augmentations in pure PIL/NumPy, driven by an explicit numpy Generator.

The presets match the SSL4RL reference (torchvision-based) settings; each random choice is
drawn from the caller's rng, so a view is a pure function of (image, rng state).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps


@dataclass(frozen=True)
class Augmentation:
    size: int | None = 224  # random resized crop output side; None = no crop
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    jitter_p: float = 0.8
    brightness: float = 0.8
    contrast: float = 0.8
    saturation: float = 0.8
    hue: float = 0.2
    grayscale_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    solarize_p: float = 0.0
    equalize_p: float = 0.0
    flip_p: float = 0.5


PRESETS = {
    "default": Augmentation(),
    "strong": Augmentation(
        scale=(0.08, 0.3), grayscale_p=0.8, blur_p=0.8, solarize_p=0.8, equalize_p=0.8, flip_p=0.8
    ),
    # Photometric only, milder: for position crops, whose geometry is the label.
    "light": Augmentation(
        size=None, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, grayscale_p=0.2, blur_p=0.5, flip_p=0.0
    ),
}


def resized_crop_box(rng: np.random.Generator, width: int, height: int, scale, ratio) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop box sampling: 10 tries, then a centre crop."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return left, top, left + w, top + h
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        w, h = int(round(height * ratio[1])), height
    else:
        w, h = width, height
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


def shift_hue(image: Image.Image, shift: float) -> Image.Image:
    """Rotate hue by `shift` of a full turn (-0.5..0.5)."""
    if abs(shift) < 1e-9:
        return image
    hsv = np.asarray(image.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + int(round(shift * 255))) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


def color_jitter(rng: np.random.Generator, image: Image.Image, aug: Augmentation) -> Image.Image:
    """Brightness, contrast, saturation and hue in a random order, as torchvision's ColorJitter."""
    factors = {
        "brightness": rng.uniform(max(0.0, 1 - aug.brightness), 1 + aug.brightness),
        "contrast": rng.uniform(max(0.0, 1 - aug.contrast), 1 + aug.contrast),
        "saturation": rng.uniform(max(0.0, 1 - aug.saturation), 1 + aug.saturation),
        "hue": rng.uniform(-aug.hue, aug.hue),
    }
    enhancers = {"brightness": ImageEnhance.Brightness, "contrast": ImageEnhance.Contrast, "saturation": ImageEnhance.Color}
    for op in rng.permutation(list(factors)):
        if op == "hue":
            image = shift_hue(image, factors[op])
        else:
            image = enhancers[op](image).enhance(factors[op])
    return image


def augment(rng: np.random.Generator, image: Image.Image, aug: Augmentation) -> Image.Image:
    """One random view of `image`; every probability is tested in a fixed order."""
    if aug.size is not None:
        box = resized_crop_box(rng, image.width, image.height, aug.scale, aug.ratio)
        image = image.resize((aug.size, aug.size), Image.Resampling.BILINEAR, box=box, reducing_gap=2.0)
    if rng.random() < aug.flip_p:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < aug.jitter_p:
        image = color_jitter(rng, image, aug)
    if rng.random() < aug.grayscale_p:
        image = image.convert("L").convert("RGB")
    if rng.random() < aug.blur_p:
        image = image.filter(ImageFilter.GaussianBlur(radius=rng.uniform(*aug.blur_sigma)))
    if rng.random() < aug.solarize_p:
        image = ImageOps.solarize(image, threshold=128)
    if rng.random() < aug.equalize_p:
        image = ImageOps.equalize(image)
    return image
