"""Drawing one handwritten character from stroke medians, the way a person with a pencil would.

A :class:`WriterStyle` holds what stays the same for one writer across characters (size,
proportions, slant, pen, pressure, how cursive and how careful). :func:`render_character`
then varies every stroke and point around the medians, smooths the pen path, joins strokes
the way fast writers do, draws with a pressure-dependent width at 3x and downsamples, and
adds pencil grain, blur and paper. The output looks like a CASIA-HWDB image: uint8, light
background, gray-to-black ink, cropped tightly to the ink, variable size.

All geometry is in the unit character box (y down) until the last step, so the per-point
work is a handful of numpy operations per stroke and the drawing is Pillow's C code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

# Drawing happens at this multiple of the output size; downsampling gives anti-aliasing.
SUPERSAMPLE = 3

# Median bounding-box extent of the stroke medians of typical characters (in the unit box).
# Real writers fill a roughly fixed cell whatever the character's extent, so a character's
# pixel size grows only with the square root of its extent relative to these.
TYPICAL_EXTENT_Y = 0.83
TYPICAL_EXTENT_X = 0.72
EXTENT_EXPONENT = 0.5


@dataclass(frozen=True)
class WriterStyle:
    """One writer's habits. Lengths in output pixels, angles in radians, the rest unitless."""

    height: float = 82.0  # ink height of a typical character
    aspect: float = 0.76  # ink width / height of a typical character
    slant: float = 0.0  # horizontal shear: x += slant * (y - centre); positive leans right
    rise: float = 0.06  # vertical shear: horizontal strokes climb to the right by this slope
    rotation: float = 0.0  # baseline tilt
    pen_width: float = 4.0  # stroke width at normal pressure
    ink: float = 0.93  # darkness of a stroke's core, 0 (paper) .. 1 (black)
    grain: float = 0.2  # pencil texture: how much the ink varies from pixel to pixel
    blur: float = 0.6  # softness of the stroke edges (scanner and paper)
    paper_noise: float = 1.0  # gray levels of noise in the background
    cursive: float = 0.3  # 0 = separate, sharp-cornered strokes; 1 = rounded, joined strokes
    careful: float = 0.6  # 0 = sloppy (large jitter), 1 = neat
    top_weight: float = 1.0  # > 1 makes the upper part of a character taller
    centre_weight: float = 1.0  # > 1 spreads strokes away from the vertical centre line
    stroke_length: float = 1.0  # habitual lengthening (> 1) or shortening of strokes
    taper: float = 0.5  # how much stroke ends thin out as the pen lifts
    press_start: float = 0.25  # extra width where the pen lands


def sample_writer(rng: np.random.Generator, variety: float = 1.0) -> WriterStyle:
    """A random writer. ``variety`` scales how far writers stray from the typical one
    (0 gives the same writer every time; 1 matches the spread of CASIA's writers)."""
    v = max(0.0, float(variety))

    def lognormal(median: float, sigma: float) -> float:
        return median * math.exp(sigma * v * rng.standard_normal())

    def normal(mean: float, sigma: float, low: float, high: float) -> float:
        return float(np.clip(mean + sigma * v * rng.standard_normal(), low, high))

    def beta(mean: float, a: float, b: float) -> float:
        # A beta draw pulled towards the mean as variety shrinks.
        return float(mean + v * (rng.beta(a, b) - mean)) if v <= 1 else float(rng.beta(a, b))

    return WriterStyle(
        height=lognormal(82.0, 0.15),
        aspect=lognormal(0.76, 0.09),
        slant=normal(0.0, 0.12, -0.4, 0.4),
        rise=normal(0.06, 0.05, -0.1, 0.25),
        rotation=normal(0.0, 0.05, -0.2, 0.2),
        pen_width=lognormal(4.0, 0.25),
        ink=normal(0.93, 0.08, 0.5, 1.0),
        grain=normal(0.2, 0.1, 0.0, 0.5),
        blur=normal(0.6, 0.35, 0.05, 1.6),
        paper_noise=abs(normal(0.0, 1.5, -4.0, 4.0)),
        cursive=beta(0.35, 1.6, 3.0),
        careful=beta(0.6, 3.0, 2.0),
        top_weight=lognormal(1.0, 0.12),
        centre_weight=lognormal(1.0, 0.12),
        stroke_length=lognormal(1.0, 0.08),
        taper=normal(0.5, 0.2, 0.0, 0.95),
        press_start=normal(0.25, 0.15, 0.0, 0.7),
    )


def _chaikin(points: np.ndarray, ratio: float, iterations: int) -> np.ndarray:
    """Corner cutting: rounds a polyline's corners, keeps its end points."""
    for _ in range(iterations):
        if len(points) < 3:
            return points
        a, b = points[:-1], points[1:]
        cut = np.empty((2 * len(a), 2))
        cut[0::2] = a + ratio * (b - a)
        cut[1::2] = b - ratio * (b - a)
        points = np.concatenate([points[:1], cut[1:-1], points[-1:]])
    return points


def _densify(points: np.ndarray, step: float) -> np.ndarray:
    """Extra points on long segments so that later warps bend them rather than move them."""
    if len(points) < 2:
        return points
    seg = np.diff(points, axis=0)
    lengths = np.hypot(seg[:, 0], seg[:, 1])
    pieces = np.maximum(1, np.ceil(lengths / step)).astype(int)
    if pieces.max() == 1:
        return points
    # One t value per new point within each segment, then the last point.
    starts = np.repeat(points[:-1], pieces, axis=0)
    deltas = np.repeat(seg, pieces, axis=0)
    t = np.concatenate([np.arange(n) / n for n in pieces])
    return np.concatenate([starts + t[:, None] * deltas, points[-1:]])


def _warp(points: np.ndarray, style: WriterStyle, rng: np.random.Generator) -> np.ndarray:
    """Whole-character deformation: proportions, a smooth random displacement field, slant
    and tilt. Coordinates stay roughly in the unit box."""
    x = points[:, 0]
    y = points[:, 1]
    # Proportions: a power curve on y moves the line between top and bottom components;
    # a symmetric one on x pulls strokes towards or away from the centre line.
    gamma_y = style.top_weight * math.exp(0.1 * rng.standard_normal())
    y = np.clip(y, 0.0, 1.0) ** (1.0 / gamma_y)
    gamma_x = style.centre_weight * math.exp(0.1 * rng.standard_normal())
    dx = np.clip(x - 0.5, -0.5, 0.5) * 2.0
    x = 0.5 + 0.5 * np.sign(dx) * np.abs(dx) ** (1.0 / gamma_x)
    # Smooth displacement: a few low-frequency waves, larger for sloppier writers.
    amplitude = 0.01 + 0.02 * (1.0 - style.careful)
    for _ in range(3):
        freq = rng.uniform(0.4, 1.2, size=2) * rng.choice([-1.0, 1.0], size=2)
        phase = rng.uniform(0.0, 2.0 * math.pi)
        wave = np.sin(2.0 * math.pi * (freq[0] * x + freq[1] * y) + phase)
        direction = rng.standard_normal(2) * amplitude
        x = x + direction[0] * wave
        y = y + direction[1] * wave
    # Slant, rising horizontals and tilt about the centre, varying a little between characters.
    slant = style.slant + 0.04 * rng.standard_normal()
    rise = style.rise + 0.03 * rng.standard_normal()
    angle = style.rotation + 0.025 * rng.standard_normal()
    x, y = x + slant * (0.5 - y), y - rise * (x - 0.5)
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    xc, yc = x - 0.5, y - 0.5
    return np.stack([0.5 + cos_a * xc - sin_a * yc, 0.5 + sin_a * xc + cos_a * yc], axis=1)


def _vary_stroke(
    stroke: np.ndarray, style: WriterStyle, rng: np.random.Generator, sloppiness: float
) -> np.ndarray:
    """One stroke as this writer draws it this time: moved, scaled, turned, lengthened or
    shortened, bowed, its points jittered."""
    pts = np.array(stroke, dtype=np.float64)
    if len(pts) == 1:
        pts = np.concatenate([pts, pts + [0.01, 0.02]])
    # Length: extend or shorten both ends along the stroke's end directions.
    change = style.stroke_length * math.exp(0.12 * sloppiness * rng.standard_normal()) - 1.0
    for end, inner in ((0, 1), (-1, -2)):
        direction = pts[end] - pts[inner]
        pts[end] = pts[end] + direction * np.clip(change + 0.1 * rng.standard_normal(), -0.4, 0.5)
    centre = pts.mean(axis=0)
    scale = math.exp(0.07 * sloppiness * rng.standard_normal())
    angle = 0.08 * sloppiness * rng.standard_normal()
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    rot = np.array([[cos_a, -sin_a], [sin_a, cos_a]]) * scale
    shift = 0.022 * sloppiness * rng.standard_normal(2)
    pts = (pts - centre) @ rot.T + centre + shift
    # Point jitter: bends the stroke between its control points.
    pts += 0.006 * sloppiness * rng.standard_normal(pts.shape)
    pts = _densify(pts, 0.08)
    # Bow: a straight stroke drawn by a hand pivoting at the wrist comes out slightly curved.
    chord = pts[-1] - pts[0]
    seg = np.hypot(*np.diff(pts, axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    if arc[-1] > 0:
        t = arc / arc[-1]
        normal = np.array([-chord[1], chord[0]])
        pts += np.outer(np.sin(np.pi * t), normal) * (0.07 * sloppiness * rng.standard_normal())
    return pts


def _move_components(
    paths: list[np.ndarray],
    components: np.ndarray,
    rng: np.random.Generator,
    sloppiness: float,
) -> list[np.ndarray]:
    """Components (radical and the rest) scaled and moved against each other, as writers
    place them differently from the model glyph."""
    ids = np.unique(components)
    if len(ids) < 2:
        return paths
    out = list(paths)
    for component in ids.tolist():
        members = np.flatnonzero(components == component)
        pts = np.concatenate([paths[i] for i in members])
        centre = (pts.min(axis=0) + pts.max(axis=0)) / 2.0
        scale = np.exp(0.07 * sloppiness * rng.standard_normal(2) + 0.05 * rng.standard_normal())
        shift = 0.025 * sloppiness * rng.standard_normal(2)
        for i in members.tolist():
            out[i] = (paths[i] - centre) * scale + centre + shift
    return out


def _ligature(start: np.ndarray, end: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The pen's path from one stroke's end to the next stroke's start, when the writer does
    not lift it: a shallow curve."""
    mid = (start + end) / 2.0
    normal = np.array([start[1] - end[1], end[0] - start[0]])
    control = mid + normal * rng.uniform(-0.3, 0.3)
    t = np.linspace(0.0, 1.0, 6)[:, None]
    return (1 - t) ** 2 * start + 2 * (1 - t) * t * control + t**2 * end


def _widths(points: np.ndarray, style: WriterStyle, rng: np.random.Generator) -> np.ndarray:
    """Pen width along a stroke, relative to the writer's: pressed where the pen lands,
    thinning where it lifts."""
    seg = np.hypot(*np.diff(points, axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    t = arc / arc[-1] if arc[-1] > 0 else np.zeros(len(points))
    press = style.press_start * rng.uniform(0.5, 1.5)
    taper = np.clip(style.taper * rng.uniform(0.5, 1.3), 0.0, 0.9)
    profile = (1.0 + press * np.exp(-t / 0.12)) * (1.0 - taper * np.clip((t - 0.6) / 0.4, 0, 1) ** 2)
    return profile * math.exp(0.12 * rng.standard_normal())


def _draw_path(draw: ImageDraw.ImageDraw, points: np.ndarray, widths: np.ndarray, fill: int) -> None:
    """A polyline whose width changes along it: runs of equal integer width as Pillow
    polylines, round caps and joins as discs."""
    w_seg = np.maximum(1, np.rint((widths[:-1] + widths[1:]) / 2.0)).astype(int)
    flat = points.tolist()
    start = 0
    n_seg = len(w_seg)
    for i in range(1, n_seg + 1):
        if i == n_seg or w_seg[i] != w_seg[start]:
            draw.line([tuple(p) for p in flat[start : i + 1]], fill=fill, width=int(w_seg[start]))
            start = i
    for (px, py), w in zip(flat, widths.tolist(), strict=True):
        r = max(0.5, w / 2.0)
        draw.ellipse((px - r, py - r, px + r, py + r), fill=fill)


def _box_blur3(img: np.ndarray, amount: float) -> np.ndarray:
    """Mixes each pixel with its 3x3 neighbourhood by ``amount`` (one full pass per unit)."""
    while amount > 1.0:
        img = _box_blur3(img, 1.0)
        amount -= 1.0
    if amount <= 0:
        return img
    padded = np.pad(img, 1, mode="edge")
    rows = padded[:-2] + padded[1:-1] + padded[2:]
    neighbourhood = (rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]) / 9.0
    return (1.0 - amount) * img + amount * neighbourhood


def render_character(
    strokes: Sequence[np.ndarray],
    style: WriterStyle,
    rng: np.random.Generator,
    components: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """One handwritten character: (H, W) uint8, light background, dark ink, tightly cropped.

    ``strokes`` are the character's medians in writing order, (k, 2) arrays in the unit box
    with y down (as :func:`tuner.synth.strokes.load_medians` gives them). ``components``
    optionally gives each stroke's component (as :func:`tuner.synth.strokes.load_components`
    does), so that components can shift against each other.
    """
    if not strokes:
        raise ValueError("a character needs at least one stroke")
    sloppiness = 1.3 - style.careful
    # 1. Each stroke as drawn this time, then the whole character deformed.
    varied = [_vary_stroke(s, style, rng, sloppiness) for s in strokes]
    if components is not None:
        varied = _move_components(varied, np.asarray(components), rng, sloppiness)
    lengths = [len(s) for s in varied]
    warped = _warp(np.concatenate(varied), style, rng)
    paths = np.split(warped, np.cumsum(lengths)[:-1])
    # 2. Rounder corners for faster writers.
    cut = 0.12 + 0.16 * style.cursive
    iterations = 2 if style.cursive > 0.45 else 1
    paths = [_chaikin(p, cut, iterations) for p in paths]
    # 3. Pen paths between strokes that a fluent writer does not lift for.
    ligatures: list[np.ndarray] = []
    for prev, nxt in zip(paths[:-1], paths[1:], strict=True):
        gap = float(np.hypot(*(nxt[0] - prev[-1])))
        if gap < 0.45 and rng.random() < style.cursive * (1.0 - gap / 0.45) * 1.2:
            ligatures.append(_ligature(prev[-1], nxt[0], rng))
    # 4. Unit box to pixels: each axis scaled to the writer's cell, softened by the extent.
    everything = np.concatenate(paths + ligatures)
    low = everything.min(axis=0)
    extent = np.maximum(everything.max(axis=0) - low, 0.04)
    size_noise = np.exp(0.06 * rng.standard_normal(2))
    typical = np.array([style.height * style.aspect, style.height])
    relative = extent / np.array([TYPICAL_EXTENT_X, TYPICAL_EXTENT_Y])
    target = typical * relative**EXTENT_EXPONENT * size_noise
    pen = style.pen_width * math.exp(0.08 * rng.standard_normal())
    scale = np.maximum(target - pen, 2.0) / extent
    pad = pen * 1.5 + 2.0
    canvas = np.ceil((extent * scale + 2.0 * pad) * SUPERSAMPLE).astype(int)
    img = Image.new("L", (int(canvas[0]), int(canvas[1])), 0)
    draw = ImageDraw.Draw(img)
    to_px = scale * SUPERSAMPLE
    offset = pad * SUPERSAMPLE - low * to_px
    pen_px = pen * SUPERSAMPLE
    # 5. Coverage: strokes at full pressure-dependent width, ligatures thin and lighter.
    for path in paths:
        fill = int(255 * np.clip(rng.normal(1.0, 0.06), 0.75, 1.0))
        _draw_path(draw, path * to_px + offset, pen_px * _widths(path, style, rng), fill)
    for path in ligatures:
        widths = np.full(len(path), pen_px * rng.uniform(0.35, 0.7))
        _draw_path(draw, path * to_px + offset, widths, int(255 * rng.uniform(0.55, 0.9)))
    coverage = np.asarray(img.reduce(SUPERSAMPLE), dtype=np.float32) / 255.0
    # 6. Pencil: a dark core, grainy texture, soft edges.
    coverage = _box_blur3(coverage, style.blur)
    grain = 1.0 - style.grain * rng.random(coverage.shape, dtype=np.float32)
    darkness = np.clip(style.ink * math.exp(0.05 * rng.standard_normal()), 0.3, 1.0)
    ink = np.clip(coverage * 1.25, 0.0, 1.0) ** 1.3 * grain * darkness
    # 7. Tight crop to the ink, then paper.
    rows = np.flatnonzero(ink.max(axis=1) > 0.06)
    cols = np.flatnonzero(ink.max(axis=0) > 0.06)
    if len(rows) and len(cols):
        ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    paper = 255.0
    if style.paper_noise > 0:
        paper = 255.0 - style.paper_noise * rng.random(ink.shape, dtype=np.float32)
    out = paper * (1.0 - ink)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
