"""Stroke medians of about 9,500 characters, from Make Me a Hanzi via hanzi-writer-data.

A median is the centre line of one stroke in writing order, as the pen would travel. The
vendored file ``medians.bin.gz`` (built by tools/build_medians.py, Arphic Public License, see
LICENSE-ARPHIC.txt) stores them quantised to 1/256 of the character box, in screen
coordinates, with a flag for the strokes that form the character's radical (so that the
renderer can move components against each other). Layout, all little-endian::

    MAGIC
    uint32 n_chars, n_strokes, n_points
    uint32[n_chars]   code points, ascending
    uint8[n_chars]    strokes per character
    uint8[n_strokes]  points per stroke
    uint8[n_strokes]  1 if the stroke belongs to the radical, else 0
    uint8[n_points]   x, then uint8[n_points] y  (level q is (q + 0.5) / 256 of the box)
"""

from __future__ import annotations

import functools
import gzip
import zlib
from collections.abc import Sequence
from importlib import resources

import numpy as np

from tuner.errors import DataError

MEDIANS_FILE = "medians.bin.gz"
MAGIC = b"HZMEDIANS2\n"
LEVELS = 256

Strokes = list[np.ndarray]


def load_medians() -> dict[str, Strokes]:
    """Every character's strokes in writing order: (k, 2) float arrays of (x, y) in [0, 1],
    y pointing down. Read once per process; treat the arrays as read-only."""
    return _load()[0]


def load_components() -> dict[str, np.ndarray]:
    """Every character's strokes' component: (n_strokes,) int, 1 for the radical's strokes and
    0 for the rest (all 0 where the data names no radical)."""
    return _load()[1]


@functools.cache
def _load() -> tuple[dict[str, Strokes], dict[str, np.ndarray]]:
    try:
        payload = gzip.decompress(
            resources.files("tuner.synth").joinpath(MEDIANS_FILE).read_bytes()
        )
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"the stroke data tuner/synth/{MEDIANS_FILE} is missing or damaged ({exc}): "
            "reinstall tuner, or rebuild it with tools/build_medians.py"
        ) from exc
    if not payload.startswith(MAGIC):
        raise DataError(
            f"tuner/synth/{MEDIANS_FILE} is not a stroke-median file: "
            "rebuild it with tools/build_medians.py"
        )
    pos = len(MAGIC)
    n_chars, n_strokes, n_points = (int(v) for v in np.frombuffer(payload, "<u4", 3, pos))
    pos += 12
    if len(payload) != pos + 5 * n_chars + 2 * n_strokes + 2 * n_points:
        raise DataError(
            f"tuner/synth/{MEDIANS_FILE} is truncated or damaged: reinstall tuner, or rebuild it "
            "with tools/build_medians.py"
        )

    def take(dtype: str, count: int) -> np.ndarray:
        nonlocal pos
        arr = np.frombuffer(payload, dtype, count, pos)
        pos += arr.nbytes
        return arr

    codepoints = take("<u4", n_chars)
    strokes_per_char = take("u1", n_chars).astype(np.int64)
    points_per_stroke = take("u1", n_strokes).astype(np.int64)
    in_radical = take("u1", n_strokes).astype(np.int64)
    xs = take("u1", n_points)
    ys = take("u1", n_points)
    points = (np.stack([xs, ys], axis=1).astype(np.float64) + 0.5) / LEVELS
    points.setflags(write=False)
    strokes = np.split(points, np.cumsum(points_per_stroke)[:-1])
    bounds = np.concatenate([[0], np.cumsum(strokes_per_char)])
    chars = [chr(int(cp)) for cp in codepoints]
    medians = {ch: strokes[bounds[i] : bounds[i + 1]] for i, ch in enumerate(chars)}
    components = {ch: in_radical[bounds[i] : bounds[i + 1]] for i, ch in enumerate(chars)}
    return medians, components


def split_available(chars: Sequence[str]) -> tuple[list[str], list[str]]:
    """The characters that have stroke data (drawable) and those that do not (missing), each in
    the given order."""
    medians = load_medians()
    drawable = [ch for ch in chars if ch in medians]
    missing = [ch for ch in chars if ch not in medians]
    return drawable, missing


def require_available(chars: Sequence[str]) -> None:
    """Raise DataError naming the characters without stroke data, if any."""
    _, missing = split_available(chars)
    if missing:
        shown = " ".join(missing[:20]) + (
            f" (and {len(missing) - 20} more)" if len(missing) > 20 else ""
        )
        raise DataError(
            f"no stroke data for {len(missing)} character(s): {shown}; "
            "leave them out of the character set (the stroke set covers about 9,500 common "
            "characters)"
        )
