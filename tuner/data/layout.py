"""The course's dataset layout, loaded into arrays.

::

    ROOT/Train/<class>/<n>.png     training images (a validation split is taken from these)
    ROOT/Test/<class>/<n>.png      optional: held-out images, by other writers in real CASIA
    ROOT/classes.txt               optional: one class per line, the label order
    ROOT/writers.csv               optional: split,class,file,writer (written by import-gnt)

Every image becomes a (height, width) uint8 array through :func:`tuner.data.preprocess.prepare`;
the decoded arrays of each split are cached (:mod:`tuner.data.cache`), so a second load is one
file read.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import multiprocessing
import os
import re
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import numpy as np
from PIL import Image

from tuner.data import cache as array_cache
from tuner.data.preprocess import Preprocessing, prepare
from tuner.errors import DataError

logger = logging.getLogger(__name__)

TRAIN = "Train"
TEST = "Test"
CLASSES_FILE = "classes.txt"
WRITERS_FILE = "writers.csv"
WRITERS_HEADER = ("split", "class", "file", "writer")
# Present while ``tune data import-gnt`` moves files into an existing dataset.
IMPORT_MARKER = ".tune-import-incomplete"
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})

# Below this many images, starting worker processes costs more than it saves.
PARALLEL_MIN_IMAGES = 2000
_MAX_LISTED = 8
DEFAULT_PREPROCESSING = Preprocessing()


class DataWarning(UserWarning):
    """Part of a dataset was skipped (unreadable images); loading went on without it."""


@dataclass
class Split:
    """Images of one split, in class order, files in natural order within a class."""

    images: np.ndarray  # (N, H, W) uint8, light background, dark ink
    labels: np.ndarray  # (N,) int32 index into Dataset.classes
    writers: np.ndarray | None  # (N,) writer ids (str, "" where unknown), None if none known
    files: list[str]  # path of each image relative to the dataset root, for error analysis

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray) -> Split:
        """The images at ``indices`` (in that order), as a new split."""
        return Split(
            images=self.images[indices],
            labels=self.labels[indices],
            writers=None if self.writers is None else self.writers[indices],
            files=[self.files[i] for i in indices.tolist()],
        )


@dataclass
class Dataset:
    root: Path
    classes: list[str]
    train: Split
    val: Split
    test: Split | None  # None when ROOT/Test does not exist
    preprocessing: Preprocessing


# --- listing ----------------------------------------------------------------------------------

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[int | str, ...], str]:
    """Sort key putting ``2.png`` before ``10.png``; the name itself breaks ties (``01``/``1``)."""
    # split() with a group alternates text and digit runs; the digit runs are at odd places.
    parts = tuple(int(part) if i % 2 else part for i, part in enumerate(_DIGITS.split(name)))
    return parts, name


def _is_visible(name: str) -> bool:
    return not name.startswith(".")


def _unreadable_folder(path: Path, exc: OSError) -> DataError:
    return DataError(
        f"cannot read {path} ({exc.strerror or exc}): check that it is a readable folder"
    )


def class_differences(
    expected: list[str],
    found: list[str],
    missing_label: str = "missing {n}:",
    extra_label: str = "extra {n}:",
) -> str | None:
    """``missing N: ...; extra N: ...`` when ``found`` is not the same set as ``expected``
    (the labels are formatted with ``n``, the count)."""
    have = set(found)
    missing = [c for c in expected if c not in have]
    extra = sorted(have - set(expected))
    parts = []
    if missing:
        parts.append(f"{missing_label.format(n=len(missing))} {_listing(missing)}")
    if extra:
        parts.append(f"{extra_label.format(n=len(extra))} {_listing(extra)}")
    return "; ".join(parts) or None


def list_class_folders(split_dir: Path) -> list[str]:
    """Names of the class folders in a split folder (hidden folders ignored), unsorted."""
    try:
        with os.scandir(split_dir) as entries:
            return [e.name for e in entries if _is_visible(e.name) and e.is_dir()]
    except OSError as exc:
        raise _unreadable_folder(split_dir, exc) from exc


def list_images(class_dir: Path) -> list[tuple[str, int, int]]:
    """(file name, size, mtime_ns) of each image in a class folder, in natural order."""
    found: list[tuple[str, int, int]] = []
    numbered = True  # all names <digits>.<ext>, as in the course layout: sort by number
    with os.scandir(class_dir) as entries:
        for entry in entries:
            name = entry.name
            dot = name.rfind(".")
            if dot <= 0 or name[dot:].lower() not in IMAGE_SUFFIXES or not entry.is_file():
                continue  # hidden files (dot 0) and anything not an image
            stat = entry.stat()
            found.append((name, stat.st_size, stat.st_mtime_ns))
            numbered = numbered and name[:dot].isascii() and name[:dot].isdigit()
    if numbered:
        found.sort(key=lambda item: (int(item[0][: item[0].rfind(".")]), item[0]))
    else:
        found.sort(key=lambda item: natural_key(item[0]))
    return found


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    more = len(names) - _MAX_LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def require_dataset(root: Path) -> Path:
    """``root/Train``, or a DataError saying what a dataset looks like and how to get one."""
    how = "make one with `tune data synth` or `tune data import-gnt`"
    if not root.exists():
        raise DataError(
            f"dataset folder {root} does not exist: give a folder holding Train/<class>/<n>.png "
            f"({how})"
        )
    if not root.is_dir():
        raise DataError(f"{root} is a file, not a dataset folder: give the folder holding Train/")
    if (root / IMPORT_MARKER).exists():
        raise DataError(
            f"an import into {root} did not finish: delete {root} and run "
            "`tune data import-gnt` again"
        )
    train = root / TRAIN
    if train.is_dir():
        return train
    hint = ""
    if root.name in (TRAIN, TEST):
        hint = f" (this looks like a split folder: give its parent, {root.parent})"
    else:
        near = [n for n in os.listdir(root) if n.lower() == TRAIN.lower() and n != TRAIN]
        if near:
            hint = f" (found {near[0]}/: rename it to {TRAIN}/)"
    raise DataError(
        f"{root} is not a dataset: expected {root}/Train/<class>/<n>.png and optionally "
        f"{root}/Test/<class>/<n>.png{hint}; {how}"
    )


# --- class order ------------------------------------------------------------------------------


def _read_class_file(path: Path) -> list[str]:
    try:
        lines = [line.strip() for line in path.read_text("utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path} as UTF-8 text ({exc}): fix or delete it") from exc
    classes = [line for line in lines if line]
    duplicates = sorted({c for c in classes if classes.count(c) > 1})
    if duplicates:
        raise DataError(f"{path} lists {_listing(duplicates)} twice: keep one line per class")
    return classes


def read_class_order(root: str | Path, *, cache_dir: Path | None = None) -> list[str]:
    """The label order: ``ROOT/classes.txt`` if present, else the Train folder names sorted.

    The sorted order is written to ``ROOT/classes.txt`` where the folder is writable, and always
    to the cache, so labels keep their meaning even if sorting rules or folder listings change.
    """
    root = Path(root).expanduser()
    train = require_dataset(root)
    folders = list_class_folders(train)
    if not folders:
        raise DataError(f"{train} has no class folders: expected {train}/<class>/<n>.png")
    listed_path = root / CLASSES_FILE
    if listed_path.is_file():
        listed = _read_class_file(listed_path)
        problems = class_differences(listed, folders, "no Train folder for", "not listed:")
        if problems:
            raise DataError(
                f"{listed_path} does not match the class folders in {train} "
                f"({problems}): fix the file, or delete it to use sorted folder names"
            )
        return listed
    cached_path = array_cache.class_order_path(root, cache_dir)
    if cached_path.is_file():
        try:
            cached = _read_class_file(cached_path)
        except (OSError, UnicodeDecodeError, DataError):
            cached = []
        if sorted(cached) == sorted(folders):
            return cached
    order = sorted(folders)
    text = "".join(f"{c}\n" for c in order)
    # A read-only dataset (a shared copy) keeps no classes.txt: the cache keeps the order instead.
    with contextlib.suppress(OSError):
        array_cache.write_text_atomic(listed_path, text)
    try:
        array_cache.write_text_atomic(cached_path, text)
    except OSError as exc:
        logger.warning("could not keep the class order in the cache (%s)", exc)
    return order


def _check_same_classes(root: Path, classes: list[str], test_dir: Path) -> None:
    test_folders = list_class_folders(test_dir)
    if not test_folders:
        raise DataError(
            f"{test_dir} has no class folders: add Test/<class>/<n>.png for every class, or "
            "remove the empty Test folder"
        )
    differences = class_differences(classes, test_folders, "only in Train:", "only in Test:")
    if differences:
        raise DataError(
            f"Train and Test in {root} have different classes ({differences}): give both "
            "the same class folders"
        )


# --- decoding ---------------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _decode_chunk(
    paths: Sequence[str], preprocessing: Preprocessing
) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Decode images; unreadable ones come back as blank images plus (index, reason)."""
    images = np.empty((len(paths), preprocessing.height, preprocessing.width), np.uint8)
    failures: list[tuple[int, str]] = []
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as img:
                images[i] = prepare(img, preprocessing)
        except Exception as exc:  # any file can be anything: report it, never crash a load
            images[i] = 255
            failures.append((i, _describe(exc)))
    return images, failures


# Libraries that run their own thread pools once imported; forking under them can deadlock.
_THREADED_LIBRARIES = ("tensorflow", "torch", "jax")


def _process_context() -> multiprocessing.context.BaseContext:
    """fork where it is safe (Linux, no Python threads, no TensorFlow loaded): fast, and works
    from unguarded scripts and notebooks. Elsewhere workers come from a fresh server process,
    since forking a process whose threads hold locks can deadlock the child."""
    methods = multiprocessing.get_all_start_methods()
    if (
        sys.platform.startswith("linux")
        and "fork" in methods
        and threading.active_count() == 1
        and not any(name in sys.modules for name in _THREADED_LIBRARIES)
    ):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def decode_images(
    paths: Sequence[str], preprocessing: Preprocessing, workers: int | None = None
) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """All images at ``paths`` as (N, H, W) uint8, decoded in ``workers`` processes (default:
    one per CPU); unreadable ones as blank images plus (index, reason) pairs."""
    count = len(paths)
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or count < PARALLEL_MIN_IMAGES:
        return _decode_chunk(paths, preprocessing)
    # Several chunks per worker, so a slow one does not leave the others idle at the end.
    size = max(64, min(2048, math.ceil(count / (workers * 4))))
    starts = range(0, count, size)
    chunks = [paths[start : start + size] for start in starts]
    images = np.empty((count, preprocessing.height, preprocessing.width), np.uint8)
    failures: list[tuple[int, str]] = []
    try:
        with ProcessPoolExecutor(
            max_workers=min(workers, len(chunks)), mp_context=_process_context()
        ) as pool:
            for start, (decoded, failed) in zip(
                starts, pool.map(_decode_chunk, chunks, repeat(preprocessing)), strict=True
            ):
                images[start : start + len(decoded)] = decoded
                failures.extend((start + i, why) for i, why in failed)
    except (OSError, BrokenProcessPool) as exc:
        logger.warning("parallel decoding failed (%s); decoding in this process instead", exc)
        return _decode_chunk(paths, preprocessing)
    return images, failures


# --- splits -----------------------------------------------------------------------------------


def read_writers(root: Path) -> dict[tuple[str, str, str], str]:
    """``ROOT/writers.csv`` as {(split, class, file): writer}; empty if there is none."""
    path = root / WRITERS_FILE
    if not path.is_file():
        return {}
    try:
        return _parse_writers(path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read {path} ({exc}): fix or delete it") from exc


def _parse_writers(path: Path) -> dict[tuple[str, str, str], str]:
    with path.open(encoding="utf-8-sig", newline="") as handle:  # -sig: spreadsheets add a BOM
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != WRITERS_HEADER:
            raise DataError(
                f"{path} must start with the header line {','.join(WRITERS_HEADER)}: fix or "
                "delete it"
            )
        writers: dict[tuple[str, str, str], str] = {}
        for number, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != 4:
                raise DataError(
                    f"{path} line {number} has {len(row)} fields, not 4 "
                    f"({','.join(WRITERS_HEADER)}): fix or delete the line"
                )
            split, cls, name, writer = row
            writers[(split, cls, name)] = writer
    return writers


def _writers_for(root: Path, files: Sequence[str]) -> np.ndarray | None:
    known = read_writers(root)
    if not known:
        return None
    ids = []
    for rel in files:
        split, cls, name = rel.split("/", 2)
        ids.append(known.get((split, cls, name), ""))
    if not any(ids):
        return None
    return np.array(ids, dtype=str)


def _unreadable_warning(directory: Path, skipped: Sequence[str]) -> None:
    rel, _, why = skipped[0].partition("\t")
    noun = "image" if len(skipped) == 1 else "images"
    warnings.warn(
        f"skipped {len(skipped)} unreadable {noun} in {directory} (e.g. {rel}: {why}); "
        "replace or delete them",
        DataWarning,
        stacklevel=3,
    )


def load_split(
    directory: str | Path,
    classes: list[str],
    preprocessing: Preprocessing = DEFAULT_PREPROCESSING,
    *,
    cache_dir: Path | None = None,
    workers: int | None = None,
    use_cache: bool = True,
) -> Split:
    """One split folder (``ROOT/Train`` or ``ROOT/Test``) as arrays, labels in ``classes`` order.

    Unreadable images are skipped with one :class:`DataWarning`; a missing or empty class folder
    is a DataError. Served from the cache when no source file and no setting changed.
    """
    directory = Path(directory).expanduser()
    root = directory.parent
    split_name = directory.name
    listing: list[tuple[int, str, int, int]] = []  # label, relative path, size, mtime_ns
    for label, cls in enumerate(classes):
        class_dir = directory / cls
        if not class_dir.is_dir():
            raise DataError(
                f"class {cls!r} has no folder {class_dir}: add it, or drop the class from "
                f"{root / CLASSES_FILE}"
            )
        try:
            images = list_images(class_dir)
        except OSError as exc:
            raise _unreadable_folder(class_dir, exc) from exc
        if not images:
            raise DataError(
                f"class folder {class_dir} has no images: add .png files or remove the folder "
                "(and its line in classes.txt)"
            )
        listing.extend((label, f"{split_name}/{cls}/{n}", size, ns) for n, size, ns in images)

    key = array_cache.fingerprint(((rel, s, m) for _, rel, s, m in listing), preprocessing, classes)
    entry = array_cache.entry_path(directory, preprocessing, key, cache_dir)

    def fitting(stored: dict[str, np.ndarray] | None) -> tuple[Split, list[str]] | None:
        """A cache entry's arrays as this split; None (counted as corrupt) where they do not fit."""
        loaded = None if stored is None else _split_from_entry(stored, preprocessing, len(listing))
        if stored is not None and loaded is None:
            array_cache.count_corrupt_entry()
            logger.warning("cache entry %s does not fit its sources; rebuilding it", entry.name)
        return loaded

    loaded = fitting(array_cache.read_entry(entry)) if use_cache else None
    if loaded is not None:
        logger.info("%s: %d images from the cache", directory, len(loaded[0]))
    else:
        rejected = array_cache.file_identity(entry)  # the file just read, if any
        # Workers started together miss together: one decodes, the others wait and read it.
        with array_cache.build_lock(entry) if use_cache else contextlib.nullcontext():
            if use_cache and array_cache.file_identity(entry) != rejected:
                loaded = fitting(array_cache.built_meanwhile(entry))
            if loaded is None:
                loaded = _decode_and_store(
                    root, directory, listing, preprocessing, workers, entry if use_cache else None
                )
    split, skipped = loaded
    if skipped:
        _unreadable_warning(directory, skipped)
    counts = np.bincount(split.labels, minlength=len(classes))
    if not counts.all():
        empty = classes[int(np.argmin(counts))]
        raise DataError(f"every image in {directory / empty} is unreadable: replace the files")
    split.writers = _writers_for(root, split.files)
    return split


def _split_from_entry(
    stored: dict[str, np.ndarray], preprocessing: Preprocessing, sources: int
) -> tuple[Split, list[str]] | None:
    """The split a cache entry holds, or None if the entry is not what its name promises."""
    try:
        images, labels = stored["images"], stored["labels"]
        files = stored["files"].tolist()
        skipped = stored["skipped"].tolist()
    except KeyError:
        return None
    count = len(files)
    if (
        images.dtype != np.uint8
        or images.shape != (count, preprocessing.height, preprocessing.width)
        or labels.shape != (count,)
        or count + len(skipped) != sources
    ):
        return None
    return Split(images, labels.astype(np.int32, copy=False), None, files), skipped


def _decode_and_store(
    root: Path,
    directory: Path,
    listing: list[tuple[int, str, int, int]],
    preprocessing: Preprocessing,
    workers: int | None,
    entry: Path | None,
) -> tuple[Split, list[str]]:
    """Decode a split's images and, with a cache ``entry``, store them there."""
    started = time.perf_counter()
    split, skipped = _decode_split(root, listing, preprocessing, workers)
    logger.info(
        "%s: decoded %d images in %.1f s",
        directory,
        len(listing),
        time.perf_counter() - started,
    )
    if entry is not None:
        array_cache.write_entry(
            entry,
            {
                "images": split.images,
                "labels": split.labels,
                "files": np.array(split.files, dtype=str),
                "skipped": np.array(skipped, dtype=str),
            },
        )
    return split, skipped


def _decode_split(
    root: Path,
    listing: Sequence[tuple[int, str, int, int]],
    preprocessing: Preprocessing,
    workers: int | None,
) -> tuple[Split, list[str]]:
    paths = [str(root / rel) for _, rel, _, _ in listing]
    images, failures = decode_images(paths, preprocessing, workers)
    labels = np.array([label for label, _, _, _ in listing], dtype=np.int32)
    files = [rel for _, rel, _, _ in listing]
    skipped = [f"{files[i]}\t{why}" for i, why in failures]
    if failures:
        keep = np.ones(len(files), dtype=bool)
        keep[[i for i, _ in failures]] = False
        images, labels = images[keep], labels[keep]
        files = [f for f, k in zip(files, keep.tolist(), strict=True) if k]
    return Split(images, labels, None, files), skipped


def split_validation(split: Split, val_fraction: float, seed: int = 0) -> tuple[Split, Split]:
    """(train, validation): ``val_fraction`` of each class, drawn with ``seed``.

    Where writer ids are known, whole writers go to validation (chosen across all classes, since
    one writer writes every class), so no writer is on both sides; at least one writer stays on
    each side. Images without a writer id are drawn per class, as when no ids are known.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(f"val_fraction must be at least 0 and below 1, not {val_fraction}")
    rng = np.random.default_rng(seed)
    count = len(split.labels)
    in_val = np.zeros(count, dtype=bool)
    unknown = np.ones(count, dtype=bool)
    if split.writers is not None and val_fraction > 0:
        unknown = split.writers == ""
        known_writers = np.unique(split.writers[~unknown])
        target = val_fraction * int((~unknown).sum())
        names, counts = np.unique(split.writers, return_counts=True)
        per_writer = dict(zip(names.tolist(), counts.tolist(), strict=True))
        chosen: list[str] = []
        taken = 0
        # Never every writer: training keeps at least one.
        for writer in rng.permutation(known_writers)[:-1].tolist():
            if taken >= target:
                break
            # Stop short rather than overshoot by more than the shortfall.
            if chosen and taken + per_writer[writer] - target > target - taken:
                break
            chosen.append(writer)
            taken += per_writer[writer]
        in_val |= np.isin(split.writers, chosen) & ~unknown
    if val_fraction > 0:
        for label in np.unique(split.labels).tolist():
            members = np.flatnonzero((split.labels == label) & unknown)
            # At least one image on each side; a class of one image has to train.
            want = round(val_fraction * len(members))
            want = min(max(want, 1), len(members) - 1) if len(members) >= 2 else 0
            if want:
                in_val[rng.choice(members, size=want, replace=False)] = True
    train = split.subset(np.flatnonzero(~in_val))
    untrained = np.setdiff1d(np.unique(split.labels), np.unique(train.labels))
    if untrained.size:
        warnings.warn(
            f"{untrained.size} classes have no training images left after the writer-aware "
            f"validation split (label {int(untrained[0])}, for one): add writers or lower "
            "val_fraction",
            DataWarning,
            stacklevel=2,
        )
    return train, split.subset(np.flatnonzero(in_val))


def writers_from_numbers(split: Split) -> Split:
    """Writer ids from file numbers where no writers.csv gives them: in the course layout (and
    the CASIA exports it comes from) ``n.png`` is the n-th writer in every class folder."""
    if split.writers is not None and (split.writers != "").all():
        return split
    numbers = np.asarray([f"n{Path(f).stem}" for f in split.files], dtype=object)
    if split.writers is not None:
        numbers = np.where(split.writers != "", split.writers, numbers)
    return Split(split.images, split.labels, numbers, split.files)


def load_dataset(
    root: str | Path,
    *,
    preprocessing: Preprocessing = DEFAULT_PREPROCESSING,
    val_fraction: float = 0.2,
    seed: int = 0,
    cache_dir: Path | None = None,
    workers: int | None = None,
    use_cache: bool = True,
    writers_by_number: bool = False,
) -> Dataset:
    """A dataset in the course layout: Train (less a seeded validation split), Test if present.

    ``writers_by_number``: where writers.csv does not say who wrote an image, take its file
    number as the writer, so the validation split shares no writer with training."""
    root = Path(root).expanduser()
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(f"val_fraction must be at least 0 and below 1, not {val_fraction}")
    classes = read_class_order(root, cache_dir=cache_dir)
    test_dir = root / TEST
    has_test = test_dir.is_dir()
    if has_test:
        _check_same_classes(root, classes, test_dir)
    splits = [root / TRAIN, test_dir] if has_test else [root / TRAIN]
    loaded = [
        load_split(
            directory,
            classes,
            preprocessing,
            cache_dir=cache_dir,
            workers=workers,
            use_cache=use_cache,
        )
        for directory in splits
    ]
    train_all, test = loaded[0], (loaded[1] if has_test else None)
    if writers_by_number:
        train_all = writers_from_numbers(train_all)
        test = writers_from_numbers(test) if test is not None else None
    train, val = split_validation(train_all, val_fraction, seed)
    return Dataset(
        root=root, classes=classes, train=train, val=val, test=test, preprocessing=preprocessing
    )
