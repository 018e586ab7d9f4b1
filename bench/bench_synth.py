"""Synthetic handwriting speed: images per second, in one process and over all cores.

    .venv/bin/python bench/bench_synth.py [--writers 100] [--workers N] [--repeats 3]

Renders the course's 55 characters for ``--writers`` writers (in memory, then as a PNG layout
in a temporary directory) and prints images/s. Best of ``--repeats`` runs, since other work
on the machine only ever makes a run slower.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=100, help="writers per character")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to write the layout (default: the cache)"
    )
    args = parser.parse_args(argv)

    from tuner.data.charsets import course55
    from tuner.paths import cache_dir
    from tuner.synth.generate import synth_images, write_layout

    load = os.getloadavg()[0]
    chars = course55()
    writers = list(range(args.writers))
    n = len(chars) * len(writers)
    synth_images(chars[:1], [0], workers=1)  # load the stroke data before timing

    def best(fn: object) -> float:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fn()  # type: ignore[operator]
            times.append(time.perf_counter() - start)
        return min(times)

    one = best(lambda: synth_images(chars, writers, workers=1))
    # CPU time of one process: unlike wall time, hardly affected by other programs waiting
    # for the same cores, so it shows what a free core does.
    cpu_start = time.process_time()
    synth_images(chars, writers, workers=1)
    cpu_per_image = (time.process_time() - cpu_start) / n
    many = best(lambda: synth_images(chars, writers, workers=args.workers))
    # In the cache directory by default: that is where the default dataset is written, and
    # file creation costs differ a lot between file systems.
    parent = args.dir or cache_dir()
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-synth-", dir=parent))
    try:
        train = max(1, args.writers * 3 // 4)
        test = max(1, args.writers - train)
        layout = best(
            lambda: write_layout(
                tmp / "out",
                chars,
                train_writers=train,
                test_writers=test,
                workers=args.workers,
                overwrite=True,
            )
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"{len(chars)} characters x {len(writers)} writers = {n} images, best of {args.repeats}")
    print(f"load average at the start: {load:.1f} on {os.cpu_count()} CPUs")
    print("| what | workers | seconds | images/s |")
    print("|---|---:|---:|---:|")
    cpu_s = cpu_per_image * n
    print(f"| synth_images (arrays), CPU time | 1 | {cpu_s:.2f} | {1 / cpu_per_image:,.0f} |")
    print(f"| synth_images (arrays) | 1 | {one:.2f} | {n / one:,.0f} |")
    print(f"| synth_images (arrays) | {args.workers} | {many:.2f} | {n / many:,.0f} |")
    rate = n / layout
    print(f"| write_layout (PNG files in {parent}) | {args.workers} | {layout:.2f} | {rate:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
