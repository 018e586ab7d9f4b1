"""Synthetic handwriting of a dataset's own classes, mixed into its training split.

Real CASIA users train on a few hundred writers and are tested on others; synthetic writers
from the stroke renderer add the variety the real training writers lack. The synthetic images
for a (classes, writers, variety, seed, preprocessing) pool are generated once and cached like
decoded arrays, so a study pays for them once, not per trial; a trial takes the first
``ratio x real`` images of each class from the pool.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from tuner.data.cache import arrays_dir, build_lock, built_meanwhile, read_entry, write_entry
from tuner.data.layout import DataWarning, Split
from tuner.data.preprocess import Preprocessing, prepare

# Synthetic writers for mixing come from their own id range, apart from the default dataset's
# Train (from 0) and Test (from 1,000,000) writers.
MIX_WRITER_BASE = 2_000_000


@dataclass
class SyntheticPool:
    images: np.ndarray  # (N, H, W) uint8, writer-major within each class
    labels: np.ndarray  # (N,) int32 index into the dataset's classes
    writers: np.ndarray  # (N,) int64 synthetic writer ids
    missing: list[str]  # classes the stroke set cannot draw (trained on real images only)


def _renderer_version() -> str:
    """A hash of the renderer's code and stroke data: a renderer change regenerates pools."""
    digest = hashlib.sha256()
    package = resources.files("tuner.synth")
    for name in ("render.py", "generate.py", "strokes.py"):
        digest.update(package.joinpath(name).read_bytes())
    return digest.hexdigest()[:12]


def synthetic_pool(
    classes: list[str],
    writers_per_class: int,
    *,
    preprocessing: Preprocessing,
    variety: float = 1.0,
    seed: int = 0,
    cache_dir: Path | None = None,
) -> SyntheticPool:
    """``writers_per_class`` synthetic writers' images of every drawable class (cached)."""
    from tuner.synth.strokes import split_available

    drawable, missing = split_available(classes)
    key = json.dumps(
        {
            "classes": classes,
            "writers": writers_per_class,
            "variety": round(float(variety), 4),
            "seed": seed,
            "pp": preprocessing.key(),
            "renderer": _renderer_version(),
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    path = arrays_dir(cache_dir) / f"synth-{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"
    stored = read_entry(path)
    if stored is not None:
        return SyntheticPool(stored["images"], stored["labels"], stored["writers"], missing)
    if not drawable:
        empty = np.zeros((0, preprocessing.height, preprocessing.width), np.uint8)
        return SyntheticPool(empty, np.zeros(0, np.int32), np.zeros(0, np.int64), missing)
    # A study's workers start together and want the same pool: one draws it, the others wait.
    with build_lock(path):
        stored = built_meanwhile(path)
        if stored is not None:
            return SyntheticPool(stored["images"], stored["labels"], stored["writers"], missing)
        from tuner.synth.generate import synth_images

        writer_ids = list(range(MIX_WRITER_BASE, MIX_WRITER_BASE + writers_per_class))
        raw, drawable_labels, writers = synth_images(
            drawable, writer_ids, seed=seed, variety=variety
        )
        index = {c: i for i, c in enumerate(classes)}
        labels = np.asarray([index[drawable[i]] for i in drawable_labels], dtype=np.int32)
        images = np.stack([prepare(img, preprocessing) for img in raw])
        write_entry(path, {"images": images, "labels": labels, "writers": writers})
    return SyntheticPool(images, labels, np.asarray(writers, dtype=np.int64), missing)


def mix_into(train: Split, pool: SyntheticPool, ratio: float, classes: list[str]) -> Split:
    """``train`` plus ``ratio`` synthetic images per real image of each class (0: unchanged)."""
    if ratio <= 0 or len(pool.labels) == 0:
        return train
    if pool.missing:
        warnings.warn(
            f"no stroke data for {', '.join(pool.missing)}: trained on real images only",
            DataWarning,
            stacklevel=2,
        )
    picks: list[np.ndarray] = []
    for c in range(len(classes)):
        want = math.ceil(ratio * int(np.count_nonzero(train.labels == c)))
        mine = np.flatnonzero(pool.labels == c)
        picks.append(mine[:want])
    chosen = np.concatenate(picks) if picks else np.zeros(0, np.int64)
    real_writers = (
        train.writers if train.writers is not None else np.full(len(train.labels), "", object)
    )
    return Split(
        images=np.concatenate([train.images, pool.images[chosen]]),
        labels=np.concatenate([train.labels, pool.labels[chosen]]).astype(np.int32),
        writers=np.concatenate(
            [
                real_writers.astype(object),
                np.asarray([f"synth-{w}" for w in pool.writers[chosen]], dtype=object),
            ]
        ),
        files=[*train.files, *(f"<synthetic {classes[pool.labels[i]]}>" for i in chosen)],
    )


def writers_needed(train: Split, n_classes: int, max_ratio: float) -> int:
    """Pool size: enough synthetic writers per class for the largest ratio searched."""
    counts = np.bincount(train.labels, minlength=n_classes)
    return max(1, math.ceil(max_ratio * int(counts.max(initial=0))))
