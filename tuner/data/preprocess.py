"""Turning one source image into the array a model sees.

Images keep CASIA's look: uint8, one channel, light background (255) and dark ink. Models
invert and rescale in their first layer, so cached arrays stay what users recognise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Preprocessing:
    """How a source image becomes a model input. Part of every cache key."""

    height: int = 80
    width: int = 60

    def key(self) -> dict[str, Any]:
        return asdict(self)


_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})


def to_grayscale(img: Image.Image) -> Image.Image:
    """RGB, palette, alpha and 16-bit images to 8-bit grayscale, transparent parts as paper."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(paper, rgba)
    if img.mode in _SIXTEEN_BIT_MODES or img.mode == "I":
        arr = np.asarray(img, dtype=np.float64)
        # A 16-bit PNG always spans 0..65535, even a dark one whose values all sit below 256;
        # only 32-bit "I" images (TIFF, arrays) leave the range to be guessed.
        top = 65535.0 if img.mode in _SIXTEEN_BIT_MODES or arr.max() > 255 else 255.0
        return Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if img.mode != "L":
        img = img.convert("L")
    return img


def prepare(img: Image.Image | np.ndarray, pp: Preprocessing) -> np.ndarray:
    """One image as a (height, width) uint8 array, stretched to size as the course did."""
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    gray = to_grayscale(img)
    if gray.size != (pp.width, pp.height):
        gray = gray.resize((pp.width, pp.height), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(gray, dtype=np.uint8)
