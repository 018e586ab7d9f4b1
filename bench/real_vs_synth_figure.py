"""docs/real_vs_synth.png: real CASIA handwriting beside synthetic handwriting, same characters.

    .venv/bin/python bench/real_vs_synth_figure.py [--real DIR] [--out docs/real_vs_synth.png]

One row per character. Left: real images from the CASIA-HWDB sample's Train folder, picked at
random with a fixed seed (not chosen by hand); right: the first synthetic writers of seed 0.
Each image is shown at its own size (scaled to fit the cell) as it is stored, except that the
transparent border some real files have is cropped away. The row label is the character itself,
drawn by the stroke renderer (no CJK font needed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parent.parent
DEFAULT_REAL = REPO.parent / "shared" / "data" / "casia-hwdb-sample"
DEFAULT_CHARS = "安完宙审害容宿宴"
CELL_W, CELL_H = 84, 104
LABEL_W = 96
GAP = 24
HEADER_H = 34


def _fit(img: Image.Image) -> Image.Image:
    """Scaled down (never up) to fit a cell, keeping its aspect."""
    scale = min((CELL_W - 8) / img.width, (CELL_H - 8) / img.height, 1.0)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS) if scale < 1.0 else img


def _real_images(root: Path, char: str, count: int, rng: np.random.Generator) -> list[Image.Image]:
    from tuner.data.preprocess import to_grayscale

    paths = sorted((root / "Train" / char).glob("*.png"), key=lambda p: int(p.stem))
    chosen = rng.choice(len(paths), size=min(count, len(paths)), replace=False)
    images = []
    for i in sorted(chosen.tolist()):
        with Image.open(paths[i]) as file:
            img = file.copy()
        if img.mode == "RGBA":
            box = img.getchannel("A").getbbox()
            img = img.crop(box) if box else img
        images.append(to_grayscale(img))
    return images


def _label(char: str) -> Image.Image:
    """The character, written by the renderer's typical (variety 0) writer, neatly."""
    from dataclasses import replace

    from tuner.synth.render import WriterStyle, render_character
    from tuner.synth.strokes import load_components, load_medians

    style = replace(WriterStyle(), careful=1.0, cursive=0.0, height=64.0, pen_width=4.0)
    rng = np.random.default_rng(0)
    img = render_character(load_medians()[char], style, rng, load_components()[char])
    return Image.fromarray(img)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", type=Path, default=DEFAULT_REAL)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "real_vs_synth.png")
    parser.add_argument("--chars", default=DEFAULT_CHARS)
    parser.add_argument("--per-side", type=int, default=6, help="images per side per row")
    args = parser.parse_args(argv)

    from tuner.synth.generate import synth_images

    chars = list(args.chars)
    n = args.per_side
    synthetic, _, _ = synth_images(chars, list(range(n)), seed=0, workers=1)
    rng = np.random.default_rng(0)

    width = LABEL_W + 2 * n * CELL_W + GAP
    height = HEADER_H + len(chars) * CELL_H
    canvas = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=18)
    left = LABEL_W
    right = LABEL_W + n * CELL_W + GAP
    draw.text((left + 4, 8), "real (CASIA-HWDB 1.1 sample)", fill=0, font=font)
    draw.text((right + 4, 8), "synthetic (tuner.synth)", fill=0, font=font)
    for row, char in enumerate(chars):
        top = HEADER_H + row * CELL_H
        label = _fit(_label(char))
        canvas.paste(label, ((LABEL_W - label.width) // 2, top + (CELL_H - label.height) // 2))
        cells = [(left, img) for img in _real_images(args.real, char, n, rng)]
        cells += [(right, Image.fromarray(a)) for a in synthetic[row * n : (row + 1) * n]]
        for k, (x0, img) in enumerate(cells):
            x = x0 + (k % n) * CELL_W
            draw.rectangle((x, top, x + CELL_W - 1, top + CELL_H - 1), outline=200)
            img = _fit(img)
            canvas.paste(img, (x + (CELL_W - img.width) // 2, top + (CELL_H - img.height) // 2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
