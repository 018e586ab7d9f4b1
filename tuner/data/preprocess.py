"""Turning one source image into the array a model sees.

Images keep CASIA's look: uint8, one channel, light background (255) and dark ink. Models
invert and rescale in their first layer, so cached arrays stay what users recognise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Preprocessing:
    """How a source image becomes a model input. Part of every cache key."""

    height: int = 80
    width: int = 60
    # False: stretch to height x width, as the course did. True: scale to fit, keep the
    # aspect ratio, centre on paper (writers differ in how wide they write).
    keep_aspect: bool = False
    # Stretch each image's ink-to-paper range to full contrast (pens and scans differ).
    normalize_ink: bool = False
    # Crop to the ink's bounding box first: scans and exports differ in how much paper (or
    # transparent border) surrounds a character, and that margin shrinks the character.
    crop_to_ink: bool = False

    def key(self) -> dict[str, Any]:
        key = asdict(self)
        # Added later: left out while off, so caches made before it stay valid.
        if not self.crop_to_ink:
            del key["crop_to_ink"]
        return key

    @classmethod
    def from_params(cls, params: Mapping[str, Any], base: Preprocessing) -> Preprocessing:
        """The preprocessing a trial's sampled ``preprocess_*`` values ask for."""
        return replace(
            base,
            keep_aspect=bool(params.get("preprocess_keep_aspect", base.keep_aspect)),
            normalize_ink=bool(params.get("preprocess_normalize_ink", base.normalize_ink)),
            crop_to_ink=bool(params.get("preprocess_crop_ink", base.crop_to_ink)),
        )


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
    """One image as a (height, width) uint8 array: stretched to size as the course did, or
    fitted with its aspect ratio kept; optionally cropped to its ink first and with its ink
    contrast normalised."""
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    gray = to_grayscale(img)
    if pp.crop_to_ink:
        gray = crop_to_ink(gray)
    if pp.normalize_ink:
        gray = Image.fromarray(normalize_ink(np.asarray(gray, dtype=np.uint8)))
    if pp.keep_aspect:
        return _fit_on_paper(gray, pp.width, pp.height)
    if gray.size != (pp.width, pp.height):
        gray = gray.resize((pp.width, pp.height), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(gray, dtype=np.uint8)


def crop_to_ink(gray: Image.Image, margin: int = 2) -> Image.Image:
    """The image cut to the bounding box of its ink plus ``margin`` pixels of paper.

    Ink is what is clearly darker than the paper (the image's 95th percentile): at least a
    quarter of the way from paper to the darkest pixel, so faint scanner noise is not ink. A
    blank image is returned as it is.
    """
    arr = np.asarray(gray, dtype=np.uint8)
    if arr.size == 0:
        return gray
    paper = float(np.percentile(arr, 95))
    darkest = float(arr.min())
    if paper - darkest < 16:  # nothing clearly darker than the paper
        return gray
    rows, cols = np.nonzero(arr < paper - 0.25 * (paper - darkest))
    top, bottom = max(int(rows.min()) - margin, 0), min(int(rows.max()) + margin + 1, arr.shape[0])
    left, right = max(int(cols.min()) - margin, 0), min(int(cols.max()) + margin + 1, arr.shape[1])
    return gray.crop((left, top, right, bottom))


def normalize_ink(arr: np.ndarray) -> np.ndarray:
    """Darkest ink to 0, paper to 255: light pencil and heavy marker end up alike."""
    if arr.size == 0:
        return arr
    lo = float(np.percentile(arr, 1))
    hi = float(np.percentile(arr, 99))
    if hi - lo < 8:  # a blank or flat image: nothing to stretch
        return arr
    out = (arr.astype(np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _fit_on_paper(gray: Image.Image, width: int, height: int) -> np.ndarray:
    w, h = gray.size
    scale = min(width / max(w, 1), height / max(h, 1))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resized = gray.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    # Paper is the image's own light background (its 95th percentile), not pure white.
    paper = int(np.percentile(np.asarray(gray), 95)) if w and h else 255
    canvas = Image.new("L", (width, height), paper)
    canvas.paste(resized, ((width - size[0]) // 2, (height - size[1]) // 2))
    return np.asarray(canvas, dtype=np.uint8)
