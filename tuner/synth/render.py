"""Drawing one handwritten character from stroke medians, the way a person with a pencil would.

A :class:`WriterStyle` holds what stays the same for one writer across characters (size,
proportions, slant, pen, pressure, how cursive and how careful). :func:`render_character`
then varies every stroke and point around the medians, moves the character's components
against each other, smooths the pen path, joins strokes the way fast writers do, draws with a
pressure-dependent width at 3x and downsamples, and adds pencil grain, blur and paper. The
output looks like a CASIA-HWDB image: uint8, light background, gray-to-black ink, cropped
tightly to the ink, variable size.

All geometry is done on the character's strokes concatenated into one (N, 2) array in the
unit box (y down), with an offsets array marking where each stroke starts, so the per-point
work is a fixed number of numpy operations per character, and the drawing is Pillow's.
"""

from __future__ import annotations

import functools
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

# Longest straight piece of a median before extra points are put in (unit box), so that warps
# bend long strokes instead of only moving their ends.
DENSIFY_STEP = 0.08
# Coverage is multiplied by this before clipping to 1, so that a blurred stroke keeps a fully
# dark core (real pencil strokes nearly always reach black) and only its edges go gray.
INK_GAIN = 1.4
# Ink coverage (0..1) below which a pixel counts as paper for the tight crop.
CROP_THRESHOLD = 0.06
# Pen widths (at the drawing scale) are rounded to multiples of this, so that a stroke is a
# few long polylines rather than many short ones.
WIDTH_STEP = 2
# Side of the precomputed noise tile that pencil grain and paper noise are cut from.
NOISE_TILE = 320
# Turning angle (cosine) above which a joint gets a round disc, so thick lines do not notch.
SHARP_TURN_COS = 0.9


@dataclass(frozen=True)
class WriterStyle:
    """One writer's habits. Lengths in output pixels, angles in radians, the rest unitless.
    The defaults are the typical writer, around whom :func:`sample_writer` draws others."""

    height: float = 70.0  # ink height of a typical character
    aspect: float = 0.76  # ink width / height of a typical character
    slant: float = 0.0  # horizontal shear: x += slant * (centre - y); positive leans right
    rise: float = 0.06  # vertical shear: horizontal strokes climb to the right by this slope
    rotation: float = 0.0  # baseline tilt
    pen_width: float = 3.3  # stroke width at normal pressure
    ink: float = 0.95  # darkness of a stroke's core, 0 (paper) .. 1 (black)
    grain: float = 0.3  # pencil texture: how much the ink varies from pixel to pixel
    blur: float = 0.8  # softness of the stroke edges (scanner and paper); 1 = one 3x3 pass
    paper_noise: float = 1.0  # gray levels of noise in the background
    cursive: float = 0.5  # 0 = separate, sharp-cornered strokes; 1 = rounded, joined strokes
    careful: float = 0.6  # 0 = sloppy (large jitter), 1 = neat
    top_weight: float = 1.0  # > 1 makes the upper part of a character taller
    centre_weight: float = 1.0  # > 1 spreads strokes away from the vertical centre line
    stroke_length: float = 1.0  # habitual lengthening (> 1) or shortening of strokes
    taper: float = 0.5  # how much stroke ends thin out as the pen lifts
    press_start: float = 0.25  # extra width where the pen lands


TYPICAL_WRITER = WriterStyle()


def sample_writer(rng: np.random.Generator, variety: float = 1.0) -> WriterStyle:
    """A random writer. ``variety`` scales how far writers stray from the typical one
    (0 gives the typical writer every time; 1 is the spread that the realism benchmark,
    bench/synth_realism.py, was tuned with)."""
    v = max(0.0, float(variety))
    t = TYPICAL_WRITER

    def lognormal(median: float, sigma: float, low: float = 0.0, high: float = math.inf) -> float:
        return float(np.clip(median * math.exp(sigma * v * rng.standard_normal()), low, high))

    def normal(mean: float, sigma: float, low: float, high: float) -> float:
        return float(np.clip(mean + sigma * v * rng.standard_normal(), low, high))

    def unit(mean: float, concentration: float) -> float:
        # A beta draw with this mean, pulled towards the mean as variety shrinks.
        draw = rng.beta(mean * concentration, (1.0 - mean) * concentration)
        return float(np.clip(mean + v * (draw - mean), 0.0, 1.0))

    return WriterStyle(
        height=lognormal(t.height, 0.15),
        aspect=lognormal(t.aspect, 0.11),
        slant=normal(t.slant, 0.12, -0.4, 0.4),
        rise=normal(t.rise, 0.05, -0.1, 0.25),
        rotation=normal(t.rotation, 0.05, -0.2, 0.2),
        pen_width=lognormal(t.pen_width, 0.2, 2.0, 4.8),
        ink=normal(t.ink, 0.05, 0.8, 1.0),
        grain=normal(t.grain, 0.12, 0.0, 0.6),
        blur=normal(t.blur, 0.35, 0.1, 1.8),
        paper_noise=lognormal(t.paper_noise, 0.8, 0.0, 4.0),
        cursive=unit(t.cursive, 5.0),
        careful=unit(t.careful, 5.0),
        top_weight=lognormal(t.top_weight, 0.12),
        centre_weight=lognormal(t.centre_weight, 0.12),
        stroke_length=lognormal(t.stroke_length, 0.08),
        taper=normal(t.taper, 0.2, 0.0, 0.95),
        press_start=normal(t.press_start, 0.15, 0.0, 0.7),
    )


# --- ragged arrays: all strokes' points in one (N, 2) array, ``offsets`` (S + 1,) ------------


def _stroke_ids(offsets: np.ndarray) -> np.ndarray:
    """The stroke each point belongs to."""
    return np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))


def _within(offsets: np.ndarray, n_points: int) -> np.ndarray:
    """(N - 1,) bool: segment i (point i to i + 1) lies within one stroke."""
    inside = np.ones(max(n_points - 1, 0), dtype=bool)
    inside[offsets[1:-1] - 1] = False
    return inside


def _arc_fraction(pts: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Each point's distance along its stroke, as a fraction of the stroke's length."""
    seg = np.hypot(*np.diff(pts, axis=0).T) * _within(offsets, len(pts))
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    start = arc[offsets[:-1]]
    total = arc[offsets[1:] - 1] - start
    ids = _stroke_ids(offsets)
    return (arc - start[ids]) / np.maximum(total, 1e-9)[ids]


def _densify(pts: np.ndarray, offsets: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Extra points on segments longer than ``step``."""
    seg = np.diff(pts, axis=0)
    inside = _within(offsets, len(pts))
    pieces = np.where(inside, np.maximum(1, np.ceil(np.hypot(*seg.T) / step)), 1).astype(int)
    if pieces.max(initial=1) == 1:
        return pts, offsets
    t = np.arange(pieces.sum()) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    t = t / np.repeat(pieces, pieces)
    new = np.concatenate(
        [
            np.repeat(pts[:-1], pieces, axis=0) + t[:, None] * np.repeat(seg, pieces, axis=0),
            pts[-1:],
        ]
    )
    counts = np.add.reduceat(np.append(pieces, 1), offsets[:-1])
    # reduceat over segment counts: a stroke's new count is the sum of its segments' pieces
    # plus one for its last point; the cross-stroke segment's single piece is that last point.
    return new, np.concatenate([[0], np.cumsum(counts)])


def _chaikin(pts: np.ndarray, offsets: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """One round of corner cutting on every stroke, keeping each stroke's end points."""
    inside = _within(offsets, len(pts))
    first = offsets[:-1]
    last = offsets[1:] - 1
    a = pts[:-1][inside]
    b = pts[1:][inside]
    q = a + ratio * (b - a)
    r = b - ratio * (b - a)
    # Segment k (in ``inside`` order) starts at point seg_start[k]; a stroke's first segment
    # keeps its first point instead of the first cut, its last segment its last point.
    seg_start = np.flatnonzero(inside)
    starts_stroke = np.zeros(len(pts), dtype=bool)
    starts_stroke[first] = True
    ends_stroke = np.zeros(len(pts), dtype=bool)
    ends_stroke[last] = True
    is_first = starts_stroke[seg_start]
    is_last = ends_stroke[seg_start + 1]
    q[is_first] = a[is_first]
    r[is_last] = b[is_last]
    new = np.stack([q, r], axis=1).reshape(-1, 2)
    counts = 2 * (last - first)
    return new, np.concatenate([[0], np.cumsum(counts)])


# --- geometry ------------------------------------------------------------------------------


def _vary_strokes(
    pts: np.ndarray,
    offsets: np.ndarray,
    style: WriterStyle,
    rng: np.random.Generator,
    sloppiness: float,
) -> np.ndarray:
    """Each stroke as this writer draws it this time: lengthened or shortened at both ends,
    moved, scaled and turned about its centre, its points jittered."""
    n_strokes = len(offsets) - 1
    first = offsets[:-1]
    last = offsets[1:] - 1
    pts = pts.copy()
    change = style.stroke_length * np.exp(0.18 * sloppiness * rng.standard_normal(n_strokes)) - 1
    ends = np.clip(change[:, None] + 0.1 * rng.standard_normal((n_strokes, 2)), -0.4, 0.5)
    start_dir = pts[first] - pts[first + 1]
    end_dir = pts[last] - pts[last - 1]
    pts[first] += start_dir * ends[:, :1]
    pts[last] += end_dir * ends[:, 1:]
    ids = _stroke_ids(offsets)
    centre = np.add.reduceat(pts, first) / np.diff(offsets)[:, None]
    scale = np.exp(0.105 * sloppiness * rng.standard_normal(n_strokes))
    angle = 0.12 * sloppiness * rng.standard_normal(n_strokes)
    cos_a = (np.cos(angle) * scale)[ids]
    sin_a = (np.sin(angle) * scale)[ids]
    shift = 0.033 * sloppiness * rng.standard_normal((n_strokes, 2))
    rel = pts - centre[ids]
    moved = np.stack(
        [cos_a * rel[:, 0] - sin_a * rel[:, 1], sin_a * rel[:, 0] + cos_a * rel[:, 1]], 1
    )
    moved += centre[ids] + shift[ids]
    # Point jitter bends a stroke between its control points.
    moved += 0.009 * sloppiness * rng.standard_normal(moved.shape)
    return moved


def _bow(
    pts: np.ndarray, offsets: np.ndarray, rng: np.random.Generator, sloppiness: float
) -> np.ndarray:
    """Straight strokes come out slightly curved from a hand pivoting at the wrist."""
    n_strokes = len(offsets) - 1
    ids = _stroke_ids(offsets)
    chord = pts[offsets[1:] - 1] - pts[offsets[:-1]]
    normal = np.stack([-chord[:, 1], chord[:, 0]], axis=1)
    amount = 0.07 * sloppiness * rng.standard_normal(n_strokes)
    t = _arc_fraction(pts, offsets)
    return pts + np.sin(np.pi * t)[:, None] * (normal * amount[:, None])[ids]


def _move_components(
    pts: np.ndarray,
    offsets: np.ndarray,
    components: np.ndarray,
    rng: np.random.Generator,
    sloppiness: float,
) -> np.ndarray:
    """Components (radical and the rest) scaled and moved against each other, as writers
    place them differently from the model glyph."""
    ids = np.unique(components)
    if len(ids) < 2:
        return pts
    of_point = components[_stroke_ids(offsets)]
    out = pts.copy()
    for component in ids.tolist():
        mine = of_point == component
        part = pts[mine]
        centre = (part.min(axis=0) + part.max(axis=0)) / 2.0
        scale = np.exp(0.09 * sloppiness * rng.standard_normal(2) + 0.065 * rng.standard_normal())
        shift = 0.0325 * sloppiness * rng.standard_normal(2)
        out[mine] = (part - centre) * scale + centre + shift
    return out


def _warp(pts: np.ndarray, style: WriterStyle, rng: np.random.Generator) -> np.ndarray:
    """Whole-character deformation: proportions, a smooth random displacement field, slant,
    rising horizontals and tilt. Coordinates stay roughly in the unit box."""
    x = pts[:, 0]
    y = pts[:, 1]
    low = pts.min(axis=0)
    size = np.maximum(pts.max(axis=0) - low, 1e-6)
    # Proportions: a power curve on y moves the line between top and bottom components;
    # a symmetric one on x pulls strokes towards or away from the centre line. Both keep the
    # character's bounding box.
    gamma_y = style.top_weight * math.exp(0.1 * rng.standard_normal())
    y = low[1] + size[1] * ((y - low[1]) / size[1]) ** (1.0 / gamma_y)
    gamma_x = style.centre_weight * math.exp(0.1 * rng.standard_normal())
    dx = np.clip((x - low[0]) / size[0] * 2.0 - 1.0, -1.0, 1.0)
    x = low[0] + size[0] * 0.5 * (1.0 + np.sign(dx) * np.abs(dx) ** (1.0 / gamma_x))
    # Smooth displacement: a few low-frequency waves, larger for sloppier writers.
    amplitude = 0.01 + 0.02 * (1.0 - style.careful)
    freq = rng.uniform(0.4, 1.2, size=(3, 2)) * np.sign(rng.standard_normal((3, 2)))
    phase = rng.uniform(0.0, 2.0 * math.pi, size=3)
    direction = rng.standard_normal((3, 2)) * amplitude
    waves = np.sin(2.0 * math.pi * (np.outer(x, freq[:, 0]) + np.outer(y, freq[:, 1])) + phase)
    x = x + waves @ direction[:, 0]
    y = y + waves @ direction[:, 1]
    # Slant, rising horizontals and tilt about the centre, varying a little between characters.
    slant = style.slant + 0.04 * rng.standard_normal()
    rise = style.rise + 0.03 * rng.standard_normal()
    angle = style.rotation + 0.025 * rng.standard_normal()
    x, y = x + slant * (0.5 - y), y - rise * (x - 0.5)
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    xc, yc = x - 0.5, y - 0.5
    return np.stack([0.5 + cos_a * xc - sin_a * yc, 0.5 + sin_a * xc + cos_a * yc], axis=1)


def _ligatures(
    pts: np.ndarray, offsets: np.ndarray, style: WriterStyle, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The pen's path from a stroke's end to the next stroke's start where a fluent writer
    does not lift it: shallow curves, as a ragged array (possibly empty)."""
    ends = pts[offsets[1:-1] - 1]
    starts = pts[offsets[1:-1]]
    gap = np.hypot(*(starts - ends).T)
    chance = style.cursive * 1.2 * np.clip(1.0 - gap / 0.45, 0.0, 1.0)
    joined = np.flatnonzero(rng.random(len(gap)) < chance)
    if len(joined) == 0:
        return np.empty((0, 2)), np.zeros(1, dtype=int)
    a, b = ends[joined], starts[joined]
    normal = np.stack([a[:, 1] - b[:, 1], b[:, 0] - a[:, 0]], axis=1)
    control = (a + b) / 2.0 + normal * rng.uniform(-0.3, 0.3, size=(len(joined), 1))
    t = np.linspace(0.0, 1.0, 6)[None, :, None]
    curves = (1 - t) ** 2 * a[:, None] + 2 * (1 - t) * t * control[:, None] + t**2 * b[:, None]
    return curves.reshape(-1, 2), np.arange(len(joined) + 1) * 6


def _pressure(
    pts: np.ndarray, offsets: np.ndarray, style: WriterStyle, rng: np.random.Generator
) -> np.ndarray:
    """Pen width along each stroke, relative to the writer's: pressed where the pen lands,
    thinning where it lifts, each stroke a little different."""
    n_strokes = len(offsets) - 1
    ids = _stroke_ids(offsets)
    t = _arc_fraction(pts, offsets)
    press = (style.press_start * rng.uniform(0.5, 1.5, n_strokes))[ids]
    taper = np.clip(style.taper * rng.uniform(0.5, 1.3, n_strokes), 0.0, 0.9)[ids]
    overall = np.exp(0.12 * rng.standard_normal(n_strokes))[ids]
    lift = np.clip((t - 0.6) / 0.4, 0.0, 1.0) ** 2
    return (1.0 + press * np.exp(-t / 0.12)) * (1.0 - taper * lift) * overall


# --- drawing -------------------------------------------------------------------------------


def _draw(
    draw: ImageDraw.ImageDraw,
    pts: np.ndarray,
    offsets: np.ndarray,
    widths: np.ndarray,
    fills: np.ndarray,
) -> None:
    """Polylines whose width changes along them: runs of equal width (in steps of
    WIDTH_STEP pixels) as Pillow polylines; discs at the ends and at sharp turns (round caps
    and joins)."""
    n = len(pts)
    if n == 0:
        return
    inside = _within(offsets, n)
    w_seg = np.maximum(1, np.rint((widths[:-1] + widths[1:]) / (2.0 * WIDTH_STEP)) * WIDTH_STEP)
    w_seg = w_seg.astype(int)
    # A run ends where the width changes and at a stroke's end (the segments joining two
    # strokes are runs of their own, not drawn).
    next_differs = np.append((w_seg[1:] != w_seg[:-1]) | ~inside[1:], True)
    run_end = ~inside | next_differs
    ends = np.flatnonzero(run_end)  # segment index of each run's last segment
    starts = np.concatenate([[0], ends[:-1] + 1])
    ids = _stroke_ids(offsets)
    flat = pts.tolist()
    fill_list = fills.tolist()
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        if e < s or not inside[s]:
            continue  # the segment joining two strokes
        draw.line(
            [c for p in flat[s : e + 2] for c in p], fill=fill_list[ids[s]], width=int(w_seg[s])
        )
    # Discs: stroke ends, run boundaries, and joints that turn sharply.
    seg = np.diff(pts, axis=0)
    norm = np.hypot(*seg.T) + 1e-9
    cos_turn = np.einsum("ij,ij->i", seg[:-1], seg[1:]) / (norm[:-1] * norm[1:])
    disc = np.zeros(n, dtype=bool)
    disc[offsets[:-1]] = True
    disc[offsets[1:] - 1] = True
    disc[1:-1] |= cos_turn < SHARP_TURN_COS
    for i in np.flatnonzero(disc).tolist():
        px, py = flat[i]
        r = max(0.5, widths[i] / 2.0)
        draw.ellipse((px - r, py - r, px + r, py + r), fill=fill_list[ids[i]])


@functools.cache
def _noise_tile() -> np.ndarray:
    """A fixed tile of uniform noise in [0, 1); images take random windows of it, which is
    much cheaper than fresh noise per image and just as random to the eye."""
    tile = np.random.default_rng(20240611).random((NOISE_TILE, NOISE_TILE), dtype=np.float32)
    tile.setflags(write=False)
    return tile


def _uniform_noise(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """(H, W) uniform noise in [0, 1): a random window of the noise tile."""
    h, w = shape
    if h > NOISE_TILE or w > NOISE_TILE:
        return rng.random((h, w), dtype=np.float32)
    y = int(rng.integers(0, NOISE_TILE - h + 1))
    x = int(rng.integers(0, NOISE_TILE - w + 1))
    transpose = bool(rng.integers(0, 2))
    tile = _noise_tile().T if transpose else _noise_tile()
    return tile[y : y + h, x : x + w]


def _box_blur3(img: np.ndarray, amount: float) -> np.ndarray:
    """Mixes each pixel with its 3x3 neighbourhood by ``amount`` (one full pass per unit).
    The outermost pixels stay as they are: the canvas has a paper margin there."""
    while amount > 0:
        step = min(amount, 1.0)
        rows = img[:-2] + img[1:-1] + img[2:]
        neighbourhood = (rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]) * (1.0 / 9.0)
        blurred = img.copy()
        blurred[1:-1, 1:-1] = (1.0 - step) * img[1:-1, 1:-1] + step * neighbourhood
        img = blurred
        amount -= step
    return img


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
    does), so that components can move against each other.
    """
    if len(strokes) == 0:
        raise ValueError("a character needs at least one stroke")
    # A one-point stroke (a dot) becomes a tiny dash, so every stroke has a direction.
    parts = [s if len(s) > 1 else np.concatenate([s, s + np.array([0.01, 0.02])]) for s in strokes]
    pts = np.concatenate(parts).astype(np.float64)
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])])
    sloppiness = 1.3 - style.careful

    # 1. Strokes and components as drawn this time, then the whole character deformed.
    pts = _vary_strokes(pts, offsets, style, rng, sloppiness)
    pts, offsets = _densify(pts, offsets, DENSIFY_STEP)
    pts = _bow(pts, offsets, rng, sloppiness)
    if components is not None:
        pts = _move_components(pts, offsets, np.asarray(components), rng, sloppiness)
    pts = _warp(pts, style, rng)
    # 2. Rounder corners for faster writers.
    cut = 0.12 + 0.16 * style.cursive
    for _ in range(2 if style.cursive > 0.45 else 1):
        pts, offsets = _chaikin(pts, offsets, cut)
    # 3. Pen paths between strokes that a fluent writer does not lift for.
    lig_pts, lig_offsets = _ligatures(pts, offsets, style, rng)

    # 4. Unit box to pixels: each axis scaled to the writer's cell, softened by the extent.
    everything = np.concatenate([pts, lig_pts])
    low = everything.min(axis=0)
    extent = np.maximum(everything.max(axis=0) - low, 0.04)
    typical = np.array([style.height * style.aspect, style.height])
    relative = extent / np.array([TYPICAL_EXTENT_X, TYPICAL_EXTENT_Y])
    target = typical * relative**EXTENT_EXPONENT * np.exp(0.08 * rng.standard_normal(2))
    pen = style.pen_width * math.exp(0.08 * rng.standard_normal())
    scale = np.maximum(target - pen, 2.0) / extent
    pad = pen * 1.5 + 2.0
    canvas = np.ceil((extent * scale + 2.0 * pad) * SUPERSAMPLE).astype(int)
    to_px = scale * SUPERSAMPLE
    offset_px = pad * SUPERSAMPLE - low * to_px
    pen_px = pen * SUPERSAMPLE

    # 5. Coverage: strokes at pressure-dependent width, ligatures thin and lighter.
    img = Image.new("L", (int(canvas[0]), int(canvas[1])), 0)
    draw = ImageDraw.Draw(img)
    n_strokes = len(offsets) - 1
    fills = (255 * np.clip(rng.normal(1.0, 0.06, n_strokes), 0.75, 1.0)).astype(int)
    widths = pen_px * _pressure(pts, offsets, style, rng)
    _draw(draw, pts * to_px + offset_px, offsets, widths, fills)
    n_lig = len(lig_offsets) - 1
    if n_lig:
        lig_widths = np.repeat(pen_px * rng.uniform(0.35, 0.7, n_lig), 6)
        lig_fills = (255 * rng.uniform(0.55, 0.9, n_lig)).astype(int)
        _draw(draw, lig_pts * to_px + offset_px, lig_offsets, lig_widths, lig_fills)
    coverage = np.asarray(img.reduce(SUPERSAMPLE), dtype=np.float32) / 255.0

    # 6. Pencil: a dark core, grainy texture, soft edges.
    coverage = _box_blur3(coverage, style.blur)
    grain = 1.0 - style.grain * _uniform_noise(coverage.shape, rng)
    darkness = min(1.0, max(0.3, style.ink * math.exp(0.05 * rng.standard_normal())))
    ink = np.clip(coverage * INK_GAIN, 0.0, 1.0) * grain * darkness

    # 7. Tight crop to the ink, then paper.
    rows = np.flatnonzero(ink.max(axis=1) > CROP_THRESHOLD)
    cols = np.flatnonzero(ink.max(axis=0) > CROP_THRESHOLD)
    if len(rows) and len(cols):
        ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    paper: float | np.ndarray = 255.0
    if style.paper_noise > 0:
        paper = 255.0 - style.paper_noise * _uniform_noise(ink.shape, rng)
    out = paper * (1.0 - ink)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
