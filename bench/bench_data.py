"""Data-layer benchmark: PNG ingest rate and cached reload time.

Writes N small variable-size PNGs (CASIA-like: about 60 wide, 80 high, dark strokes on light
paper) into a temporary dataset, then measures

* ingest: decode + resize to 80x60 of every image, cache off, one worker and all workers
  (target: at least 3,000 images/s on a 2-core machine);
* cached reload: the same split from the decoded-array cache (target: 40,000 images in < 1 s);

and prints a Markdown table with the machine. ``--real [PATH]`` repeats both on a real dataset
(default: the CASIA sample beside the project, if present).

    .venv/bin/python bench/bench_data.py --n 40000 --real
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from machine import cpu_model  # bench/machine.py
from PIL import Image, ImageDraw

from tuner.data import cache as array_cache
from tuner.data.layout import load_dataset, load_split, read_class_order
from tuner.data.preprocess import Preprocessing

DEFAULT_REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "casia-hwdb-sample"


def _draw(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    width = int(np.clip(rng.normal(61, 12), 31, 132))
    height = int(np.clip(rng.normal(83, 15), 28, 162))
    image = Image.new("L", (width, height), 255)
    pen = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 9))):
        x0, x1 = rng.integers(0, width, 2)
        y0, y1 = rng.integers(0, height, 2)
        pen.line(
            [(int(x0), int(y0)), (int(x1), int(y1))],
            fill=int(rng.integers(0, 80)),
            width=int(rng.integers(2, 5)),
        )
    return image


def _write_chunk(job: tuple[str, list[tuple[str, int]]]) -> None:
    root, items = job
    for rel, seed in items:
        _draw(seed).save(os.path.join(root, rel))


def make_dataset(root: Path, count: int, classes: int, workers: int) -> None:
    """``count`` PNGs spread over ``classes`` folders of root/Train."""
    items = []
    for i in range(count):
        cls = f"c{i % classes:03d}"
        (root / "Train" / cls).mkdir(parents=True, exist_ok=True)
        items.append((f"Train/{cls}/{i // classes + 1}.png", i))
    chunks = [(str(root), items[i : i + 2000]) for i in range(0, len(items), 2000)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.map(_write_chunk, chunks)


def timed(work: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best wall time of ``repeat`` runs, and the last result."""
    best = float("inf")
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return best, result


def bench_split(
    name: str, split_dir: Path, cache_dir: Path, workers: int, rows: list[tuple[str, str, str]]
) -> None:
    classes = read_class_order(split_dir.parent, cache_dir=cache_dir)
    pp = Preprocessing()

    def ingest(w: int) -> Any:
        return load_split(split_dir, classes, pp, workers=w, use_cache=False)

    seconds, split = timed(lambda: ingest(1))
    count = len(split)
    rows.append((name, f"ingest {count} PNGs, 1 worker", f"{count / seconds:,.0f} images/s"))
    if workers > 1:
        seconds, _ = timed(lambda: ingest(workers))
        rows.append(
            (name, f"ingest {count} PNGs, {workers} workers", f"{count / seconds:,.0f} images/s")
        )
    build, _ = timed(lambda: load_split(split_dir, classes, pp, cache_dir=cache_dir))
    rows.append((name, "first cached load (decode + write cache)", f"{build:.2f} s"))
    before = array_cache.STATS.hits
    reload, split = timed(lambda: load_split(split_dir, classes, pp, cache_dir=cache_dir), 3)
    assert array_cache.STATS.hits == before + 3, "expected cache hits"
    rows.append(
        (name, f"cached reload of {count} {pp.height}x{pp.width} images", f"{reload:.3f} s")
    )
    reload, _ = timed(
        lambda: load_dataset(split_dir.parent, cache_dir=cache_dir, use_cache=True), 3
    )
    rows.append((name, "cached load_dataset (incl. Test and val split)", f"{reload:.3f} s"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40_000, help="synthetic PNGs to write")
    parser.add_argument("--classes", type=int, default=100, help="class folders to use")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--real",
        nargs="?",
        const=DEFAULT_REAL,
        type=Path,
        default=None,
        help=f"also measure a real dataset (default {DEFAULT_REAL})",
    )
    args = parser.parse_args()

    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="tuner-bench-") as tmp:
        root = Path(tmp) / "synthetic"
        cache_dir = Path(tmp) / "cache"
        seconds, _ = timed(lambda: make_dataset(root, args.n, args.classes, args.workers))
        print(f"wrote {args.n} PNGs in {seconds:.1f} s", file=sys.stderr)
        bench_split(f"synthetic ({args.n})", root / "Train", cache_dir, args.workers, rows)
        if args.real is not None:
            if (args.real / "Train").is_dir():
                bench_split(
                    f"real: {args.real.name}", args.real / "Train", cache_dir, args.workers, rows
                )
            else:
                print(f"no dataset at {args.real}; skipping --real", file=sys.stderr)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"Machine: {os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}, "
        f"load average {load:.2f} at the end; page cache warm.\n"
    )
    print("| data | measurement | result |")
    print("|---|---|---|")
    for row in rows:
        print(f"| {' | '.join(row)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
