"""Rebuild tuner/synth/medians.bin.gz from the npm package ``hanzi-writer-data``.

The package holds one JSON file per character with Make Me a Hanzi's stroke ``medians``: per
stroke, the pen's centre line as [x, y] points in a 1024 box with the y axis pointing up and
offset so that screen y is ``900 - y``; and ``radStrokes``, the indices of the strokes that
form the character's radical. This script keeps only those two, flips the medians to screen
coordinates, quantises them to 1/256 of the box (finer than the jitter the renderer adds
anyway) and writes them in a packed binary form (see tuner.synth.strokes)::

    cd /tmp && npm pack hanzi-writer-data && tar xzf hanzi-writer-data-*.tgz
    python tools/build_medians.py /tmp/package

The data is under the Arphic Public License (tuner/synth/LICENSE-ARPHIC.txt).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import numpy as np

# Kept in step with tuner.synth.strokes, which reads the file; importing it here would make
# the tool depend on an installed package.
MAGIC = b"HZMEDIANS2\n"
BOX = 1024.0
SCREEN_Y_OFFSET = 900.0
LEVELS = 256

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "tuner" / "synth" / "medians.bin.gz"


def quantise(values: np.ndarray) -> np.ndarray:
    """Coordinates in the 1024 box to 0..255, one level per 4 units."""
    return np.clip(np.rint(values / BOX * LEVELS - 0.5), 0, LEVELS - 1).astype(np.uint8)


Medians = dict[str, tuple[list[list[list[float]]], list[int]]]


def read_package(package_dir: Path) -> Medians:
    """Each character's medians and the indices of its radical's strokes, in code-point order,
    from the unpacked npm package."""
    medians: Medians = {}
    for path in sorted(package_dir.glob("*.json"), key=lambda p: p.stem):
        if len(path.stem) != 1:  # package.json and anything else that is not a character
            continue
        data = json.loads(path.read_text("utf-8"))
        strokes = data.get("medians")
        if not strokes or any(len(stroke) < 1 for stroke in strokes):
            continue
        medians[path.stem] = (strokes, list(data.get("radStrokes") or []))
    return dict(sorted(medians.items()))


def pack(medians: Medians) -> bytes:
    """The packed binary form: counts, then one array per field so that gzip finds the runs."""
    codepoints = np.array([ord(ch) for ch in medians], dtype="<u4")
    strokes_per_char = np.array([len(strokes) for strokes, _ in medians.values()], dtype=np.uint8)
    stroke_list = [
        np.asarray(s, dtype=np.float64) for strokes, _ in medians.values() for s in strokes
    ]
    in_radical = np.array(
        [i in set(radical) for strokes, radical in medians.values() for i in range(len(strokes))],
        dtype=np.uint8,
    )
    points_per_stroke = np.array([len(s) for s in stroke_list], dtype=np.uint8)
    if max(len(s) for s, _ in medians.values()) > 255 or max(len(s) for s in stroke_list) > 255:
        raise ValueError("a character has more than 255 strokes or a stroke more than 255 points")
    points = np.concatenate(stroke_list)
    xs = quantise(points[:, 0])
    ys = quantise(SCREEN_Y_OFFSET - points[:, 1])
    header = np.array([len(codepoints), len(stroke_list), len(points)], dtype="<u4")
    return b"".join(
        [
            MAGIC,
            header.tobytes(),
            codepoints.tobytes(),
            strokes_per_char.tobytes(),
            points_per_stroke.tobytes(),
            in_radical.tobytes(),
            xs.tobytes(),
            ys.tobytes(),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package_dir", type=Path, help="unpacked npm package (the 'package' dir)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not args.package_dir.is_dir():
        print(f"error: {args.package_dir} is not a directory", file=sys.stderr)
        return 2
    medians = read_package(args.package_dir)
    if not medians:
        print(f"error: no character JSON files with medians in {args.package_dir}", file=sys.stderr)
        return 2
    payload = pack(medians)
    # mtime=0 keeps the file byte-identical between rebuilds of the same data.
    args.out.write_bytes(gzip.compress(payload, compresslevel=9, mtime=0))
    n_strokes = sum(len(s) for s, _ in medians.values())
    print(
        f"{args.out}: {len(medians)} characters, {n_strokes} strokes, "
        f"{args.out.stat().st_size / 1e6:.2f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
