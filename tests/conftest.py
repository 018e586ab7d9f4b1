"""Shared fixtures. Data fixtures build tiny datasets with Pillow in tmp_path; no test reads the
real CASIA sample or the user's cache."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tuner.data import cache as array_cache

# {"Train": {"a": 3, "b": 4}, "Test": {...}}: images per class per split.
TreeSpec = Mapping[str, Mapping[str, int]]
MakeTree = Callable[..., Path]


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test gets its own empty tuner cache and fresh cache counters."""
    directory = tmp_path_factory.mktemp("tuner-cache")
    monkeypatch.setenv("TUNER_CACHE_DIR", str(directory))
    array_cache.reset_stats()
    return directory


def glyph(label: int, index: int, width: int, height: int) -> np.ndarray:
    """A small dark-on-light image that encodes its class and number in its pixels."""
    image = np.full((height, width), 255, dtype=np.uint8)
    image[label % height, :] = 10 * (label % 20)  # one dark row per class
    image[:, index % width] = 0  # one black column per image
    return image


def write_png_tree(
    root: Path,
    spec: TreeSpec,
    *,
    size: tuple[int, int] | None = (6, 8),
    seed: int = 0,
) -> Path:
    """Write ``root/<split>/<class>/<n>.png``, numbered from 1. ``size`` is (width, height);
    None gives variable sizes, as in real CASIA."""
    rng = np.random.default_rng(seed)
    for split, classes in spec.items():
        for label, (cls, count) in enumerate(classes.items()):
            class_dir = root / split / cls
            class_dir.mkdir(parents=True, exist_ok=True)
            for n in range(1, count + 1):
                width, height = (
                    size if size else (int(rng.integers(5, 12)), int(rng.integers(6, 14)))
                )
                Image.fromarray(glyph(label, n, width, height)).save(class_dir / f"{n}.png")
    return root


@pytest.fixture
def make_tree(tmp_path: Path) -> MakeTree:
    """``make_tree(spec, name="ds", size=(6, 8))``: a dataset folder under tmp_path."""

    def make(spec: TreeSpec, name: str = "ds", **options: object) -> Path:
        return write_png_tree(tmp_path / name, spec, **options)  # type: ignore[arg-type]

    return make


@pytest.fixture
def glyph_of() -> Callable[[int, int, int, int], np.ndarray]:
    """The image ``write_png_tree`` draws for (label in the spec, number, width, height)."""
    return glyph


@pytest.fixture
def small_tree(make_tree: MakeTree) -> Path:
    """Three classes, 10 training and 4 test images each, 6x8 pixels."""
    return make_tree({"Train": {"b": 10, "a": 10, "c": 10}, "Test": {"b": 4, "a": 4, "c": 4}})
