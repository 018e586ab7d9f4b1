"""A first look at a dataset: images per class, thin classes, original image sizes.

Unlike loading, looking is lenient: mismatched class sets and empty folders are reported, not
refused, since this is where a user goes to find out what is wrong. Sizes come from image
headers only (the PNG header is read directly, other formats through Pillow), so it is quick
on tens of thousands of files.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from tuner.data.layout import (
    CLASSES_FILE,
    TEST,
    list_class_folders,
    list_images,
    require_dataset,
)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class SplitInfo:
    name: str
    counts: dict[str, int]  # images per class, in class order; 0 where the folder is missing
    sizes: np.ndarray  # (N, 2) int: original width, height of each readable image
    unreadable: int = 0  # images whose header could not be read

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def median_count(self) -> float:
        return float(np.median(list(self.counts.values()))) if self.counts else 0.0


@dataclass
class ThinClass:
    split: str
    cls: str
    count: int
    median: float  # the split's median images per class


@dataclass
class DatasetInfo:
    root: Path
    classes: list[str]
    train: SplitInfo
    test: SplitInfo | None
    thin: list[ThinClass] = field(default_factory=list)
    only_train: list[str] = field(default_factory=list)  # class folders missing from Test
    only_test: list[str] = field(default_factory=list)  # class folders missing from Train
    thin_ratio: float = 0.5


def image_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) from an image's header, or None where it cannot be read."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(24)
        if head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR":
            width, height = struct.unpack(">II", head[16:24])
            return int(width), int(height)
        with Image.open(path) as img:  # lazy: reads the header, not the pixels
            return img.size
    except Exception:  # any file can be anything: it counts as unreadable
        return None


def _split_info(split_dir: Path, classes: list[str]) -> SplitInfo:
    counts: dict[str, int] = {}
    sizes: list[tuple[int, int]] = []
    unreadable = 0
    for cls in classes:
        class_dir = split_dir / cls
        images = list_images(class_dir) if class_dir.is_dir() else []
        counts[cls] = len(images)
        for name, _, _ in images:
            size = image_size(class_dir / name)
            if size is None:
                unreadable += 1
            else:
                sizes.append(size)
    array = np.array(sizes, dtype=np.int64).reshape(-1, 2)
    return SplitInfo(name=split_dir.name, counts=counts, sizes=array, unreadable=unreadable)


def dataset_info(root: str | Path, *, thin_ratio: float = 0.5) -> DatasetInfo:
    """Counts per class for Train and Test, thin classes (fewer than ``thin_ratio`` times the
    split's median), and original image sizes."""
    root = Path(root).expanduser()
    train_dir = require_dataset(root)
    test_dir = root / TEST
    train_folders = list_class_folders(train_dir)
    test_folders = list_class_folders(test_dir) if test_dir.is_dir() else []
    everything = set(train_folders) | set(test_folders)
    listed: list[str] = []
    classes_file = root / CLASSES_FILE
    if classes_file.is_file():
        lines = [line.strip() for line in classes_file.read_text("utf-8").splitlines()]
        listed = [c for c in dict.fromkeys(lines) if c and c in everything]
    classes = listed + sorted(everything - set(listed))

    train = _split_info(train_dir, classes)
    test = _split_info(test_dir, classes) if test_dir.is_dir() else None
    info = DatasetInfo(root=root, classes=classes, train=train, test=test, thin_ratio=thin_ratio)
    if test is not None:
        info.only_train = [c for c in classes if c in train_folders and c not in test_folders]
        info.only_test = [c for c in classes if c in test_folders and c not in train_folders]
    for split in (train, test):
        if split is None:
            continue
        median = split.median_count()
        for cls, count in split.counts.items():
            if count < thin_ratio * median:
                info.thin.append(ThinClass(split.name, cls, count, median))
    return info


def save_size_histograms(info: DatasetInfo, out: str | Path) -> Path:
    """Histograms of original image widths and heights, Train against Test, as a PNG."""
    # The object API with the Agg canvas: no pyplot, so no global backend to set or disturb.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = Path(out).expanduser()
    figure = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(figure)
    splits = [s for s in (info.train, info.test) if s is not None and len(s.sizes)]
    for column, dimension in enumerate(("width", "height")):
        axes = figure.add_subplot(1, 2, column + 1)
        values = [s.sizes[:, column] for s in splits]
        if values:
            low = int(min(v.min() for v in values))
            high = int(max(v.max() for v in values))
            # Whole-pixel bins: fractional edges would leave empty stripes between them.
            step = max(1, -(-(high - low + 1) // 50))
            bins = list(range(low, high + step + 1, step))
            for split, data in zip(splits, values, strict=True):
                axes.hist(
                    data,
                    bins=bins,
                    weights=np.full(len(data), 1.0 / len(data)),
                    alpha=0.55,
                    label=f"{split.name} (n={len(data)}, median {int(np.median(data))})",
                )
            axes.legend(fontsize="small")
        axes.set_xlabel(f"original {dimension} (px)")
        axes.set_ylabel("share of images")
        axes.set_title(f"Image {dimension}s")
    figure.suptitle(f"{info.root.name}: original image sizes")
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    return out
