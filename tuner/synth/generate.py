"""Many synthetic writers writing many characters, in parallel, and the course's folder layout.

Every image is a pure function of (seed, writer id, character): the writer's style comes from
``SeedSequence([seed, writer_id, 0])`` and the image's own randomness from
``SeedSequence([seed, writer_id, 1, code point])``. So an image never changes with the other
characters or writers in a run, nor with the number of worker processes.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import multiprocessing
import os
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from multiprocessing.context import BaseContext
from pathlib import Path

import numpy as np
from PIL import Image

from tuner.errors import DataError
from tuner.synth.render import WriterStyle, render_character, sample_writer
from tuner.synth.strokes import load_components, load_medians, require_available

logger = logging.getLogger(__name__)

# Test writers get ids from here on, so no Train writer (ids from 0) is ever a Test writer.
TEST_WRITER_BASE = 1_000_000
# Below this many images a pool costs more (starting processes) than it saves.
MIN_PARALLEL_IMAGES = 600
CHUNK_IMAGES = 250
WRITERS_HEADER = ("split", "class", "file", "writer")


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`write_layout` wrote."""

    root: Path
    classes: int
    train_writers: int
    test_writers: int
    train_images: int
    test_images: int
    seconds: float

    @property
    def images(self) -> int:
        return self.train_images + self.test_images


def writer_style(seed: int, writer_id: int, variety: float = 1.0) -> WriterStyle:
    """The style of writer ``writer_id`` in the run with this seed."""
    return sample_writer(
        np.random.default_rng(np.random.SeedSequence([seed, writer_id, 0])), variety
    )


def render_one(char: str, writer_id: int, style: WriterStyle, seed: int) -> np.ndarray:
    """The image of ``char`` by this writer: deterministic in (seed, writer_id, char)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, writer_id, 1, ord(char)]))
    return render_character(load_medians()[char], style, rng, load_components()[char])


@dataclass(frozen=True)
class _Job:
    """One chunk of work for a worker: (character, writer id) pairs, optionally saved."""

    pairs: tuple[tuple[str, int], ...]
    seed: int
    variety: float
    # Where to save each image instead of returning it (one path per pair), or None.
    paths: tuple[str, ...] | None = None


def _run_job(job: _Job) -> list[np.ndarray]:
    styles: dict[int, WriterStyle] = {}
    images: list[np.ndarray] = []
    for i, (char, writer_id) in enumerate(job.pairs):
        style = styles.get(writer_id)
        if style is None:
            style = styles[writer_id] = writer_style(job.seed, writer_id, job.variety)
        img = render_one(char, writer_id, style, job.seed)
        if job.paths is None:
            images.append(img)
        else:
            Image.fromarray(img).save(job.paths[i], compress_level=1)
    return images


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def _worker_count(workers: int | None, n_images: int) -> int:
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise DataError(f"workers must be at least 1, not {workers}: pass a positive number")
    if n_images < MIN_PARALLEL_IMAGES:
        return 1
    return min(workers, -(-n_images // CHUNK_IMAGES))


# Libraries that run their own thread pools once imported; forking under them can deadlock.
_THREADED_LIBRARIES = ("tensorflow", "torch", "jax")


def _process_context() -> BaseContext:
    """fork where it is safe (Linux, no Python threads, no TensorFlow loaded): workers start at
    once, share the loaded stroke data and work from unguarded scripts. Elsewhere workers come
    from a fresh server process, since forking a process whose threads hold locks can deadlock
    the child. (The same policy as tuner.data.layout.)"""
    methods = multiprocessing.get_all_start_methods()
    if (
        sys.platform.startswith("linux")
        and "fork" in methods
        and threading.active_count() == 1
        and not any(name in sys.modules for name in _THREADED_LIBRARIES)
    ):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _run_jobs(jobs: list[_Job], workers: int) -> list[np.ndarray]:
    """All jobs' images in job order, in a pool of ``workers`` processes when that helps."""
    if workers <= 1 or len(jobs) <= 1:
        return [img for job in jobs for img in _run_job(job)]
    try:
        with ProcessPoolExecutor(workers, mp_context=_process_context()) as pool:
            return [img for images in pool.map(_run_job, jobs) for img in images]
    except (OSError, BrokenProcessPool) as exc:
        logger.warning("parallel rendering failed (%s); rendering in this process instead", exc)
        return [img for job in jobs for img in _run_job(job)]


def _pairs(chars: Sequence[str], writer_ids: Sequence[int]) -> list[tuple[str, int]]:
    """Character-major order: every writer's image of the first character, then the next."""
    return [(char, int(w)) for char in chars for w in writer_ids]


def _check(chars: Sequence[str], writer_ids: Sequence[int], seed: int) -> None:
    if not chars:
        raise DataError("no characters to draw: give at least one character")
    if len(set(chars)) != len(chars):
        dup = sorted({c for c in chars if list(chars).count(c) > 1})
        raise DataError(f"characters listed twice: {' '.join(dup)}; list each character once")
    if seed < 0:
        raise DataError(f"seed must be 0 or more, not {seed}: pass a non-negative seed")
    if any(int(w) < 0 for w in writer_ids):
        raise DataError("writer ids must be 0 or more: pass non-negative writer ids")
    require_available(chars)


def synth_images(
    chars: Sequence[str],
    writer_ids: Sequence[int],
    *,
    seed: int = 0,
    variety: float = 1.0,
    workers: int | None = None,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Every writer's image of every character, character-major.

    Returns the images ((H, W) uint8, sizes vary), their labels (index into ``chars``) and
    their writer ids. Raises DataError naming characters without stroke data; use
    :func:`tuner.synth.strokes.split_available` first to leave them out.
    """
    _check(chars, writer_ids, seed)
    pairs = _pairs(chars, writer_ids)
    jobs = [_Job(tuple(pairs[s]), seed, variety) for s in _chunks(len(pairs), CHUNK_IMAGES)]
    images = _run_jobs(jobs, _worker_count(workers, len(pairs)))
    labels = np.repeat(np.arange(len(chars), dtype=np.int64), len(writer_ids))
    writers = np.tile(np.asarray(writer_ids, dtype=np.int64), len(chars))
    return images, labels, writers


def _is_nonempty_dir(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def write_layout(
    out: Path,
    chars: Sequence[str],
    *,
    train_writers: int,
    test_writers: int,
    seed: int = 0,
    variety: float = 1.0,
    workers: int | None = None,
    overwrite: bool = False,
) -> SynthSummary:
    """Synthetic handwriting in the course layout::

        out/Train/<char>/<n>.png   n = 1 .. train_writers (writer ids 0 ..)
        out/Test/<char>/<n>.png    n = 1 .. test_writers  (writer ids 1_000_000 ..)
        out/classes.txt            the characters, one per line, in the given order
        out/writers.csv            split,class,file,writer

    Train and Test writers are different people. Everything is written to a temporary sibling
    directory that is renamed into place at the end, so an interrupted run never leaves a
    complete-looking ``out``. A non-empty ``out`` is an error unless ``overwrite``.
    """
    return _write_layout(
        Path(out),
        chars,
        train_writers=train_writers,
        test_writers=test_writers,
        seed=seed,
        variety=variety,
        workers=workers,
        if_exists="replace" if overwrite else "error",
    )


def _write_layout(
    out: Path,
    chars: Sequence[str],
    *,
    train_writers: int,
    test_writers: int,
    seed: int,
    variety: float,
    workers: int | None,
    if_exists: str,
) -> SynthSummary:
    """write_layout, with what to do when ``out`` exists: "error", "replace", or "keep" (leave
    it as it is: for a cache that another process may be filling at the same time)."""
    start = time.perf_counter()
    if train_writers < 1 or test_writers < 1:
        raise DataError(
            f"need at least 1 train and 1 test writer, not {train_writers} and {test_writers}: "
            "raise --train-writers / --test-writers"
        )
    train_ids = list(range(train_writers))
    test_ids = [TEST_WRITER_BASE + i for i in range(test_writers)]
    _check(chars, train_ids + test_ids, seed)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} exists and is not a directory: choose another output directory")
    summary = SynthSummary(
        root=out,
        classes=len(chars),
        train_writers=train_writers,
        test_writers=test_writers,
        train_images=len(chars) * train_writers,
        test_images=len(chars) * test_writers,
        seconds=0.0,
    )
    if _is_nonempty_dir(out):
        if if_exists == "keep":
            return summary
        if if_exists == "error":
            raise DataError(
                f"{out} already exists and is not empty: choose another directory, or overwrite "
                "it (--overwrite)"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        _write_into(staging, chars, train_ids, test_ids, seed, variety, workers)
        _move_into_place(staging, out, if_exists)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return replace(summary, seconds=time.perf_counter() - start)


def _write_into(
    root: Path,
    chars: Sequence[str],
    train_ids: Sequence[int],
    test_ids: Sequence[int],
    seed: int,
    variety: float,
    workers: int | None,
) -> None:
    rows: list[tuple[str, str, str, str]] = []
    pairs: list[tuple[str, int]] = []
    paths: list[str] = []
    for split, ids in (("Train", train_ids), ("Test", test_ids)):
        for char in chars:
            (root / split / char).mkdir(parents=True)
            for n, writer_id in enumerate(ids, start=1):
                name = f"{n}.png"
                pairs.append((char, writer_id))
                paths.append(str(root / split / char / name))
                rows.append((split, char, name, str(writer_id)))
    jobs = [
        _Job(tuple(pairs[s]), seed, variety, tuple(paths[s]))
        for s in _chunks(len(pairs), CHUNK_IMAGES)
    ]
    _run_jobs(jobs, _worker_count(workers, len(pairs)))
    (root / "classes.txt").write_text("".join(f"{c}\n" for c in chars), encoding="utf-8")
    with (root / "writers.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(WRITERS_HEADER)
        writer.writerows(rows)


def _move_into_place(staging: Path, out: Path, if_exists: str) -> None:
    """Rename the finished ``staging`` directory to ``out``, atomically where ``out`` is free
    (a missing or empty directory)."""
    if out.is_dir() and not _is_nonempty_dir(out):
        with contextlib.suppress(OSError):  # filled by someone else meanwhile: handled below
            out.rmdir()
    try:
        os.replace(staging, out)
        return
    except OSError:
        if not _is_nonempty_dir(out):
            raise
    # ``out`` was filled while we were writing (another process won the race).
    if if_exists == "keep":
        return
    if if_exists == "error":
        raise DataError(f"{out} was filled by someone else while writing: choose another directory")
    old = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    os.replace(out, old)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)
