"""The decoded-array cache: hits, misses, invalidation, corruption, atomic writes."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.at_once import run_at_once
from tuner.data import cache as array_cache
from tuner.data.cache import STATS
from tuner.data.layout import load_dataset, load_split
from tuner.data.preprocess import Preprocessing

SMALL = Preprocessing(height=8, width=6)
CLASSES = ["a", "b", "c"]


def _entries(cache_dir: Path | None = None) -> list[Path]:
    return sorted(array_cache.arrays_dir(cache_dir).glob("*.npz"))


def _load(root: Path, pp: Preprocessing = SMALL, **options: object) -> np.ndarray:
    return load_split(root / "Train", CLASSES, pp, workers=1, **options).images  # type: ignore[arg-type]


def test_second_load_is_a_hit_with_the_same_arrays(small_tree: Path) -> None:
    first = load_dataset(small_tree, preprocessing=SMALL, workers=1)
    assert (STATS.hits, STATS.misses, STATS.writes) == (0, 2, 2)
    assert len(_entries()) == 2  # Train and Test
    second = load_dataset(small_tree, preprocessing=SMALL, workers=1)
    assert (STATS.hits, STATS.misses) == (2, 2)
    assert second.test is not None and first.test is not None
    np.testing.assert_array_equal(first.train.images, second.train.images)
    np.testing.assert_array_equal(first.test.images, second.test.images)
    assert first.val.files == second.val.files
    assert second.train.labels.dtype == np.int32


def test_cache_goes_under_tuner_cache_dir_or_the_given_folder(
    small_tree: Path, tmp_path: Path
) -> None:
    _load(small_tree)
    assert Path(os.environ["TUNER_CACHE_DIR"], "arrays") == array_cache.arrays_dir()
    assert len(_entries()) == 1
    own = tmp_path / "own-cache"
    _load(small_tree, cache_dir=own)
    assert len(_entries(own)) == 1


def test_touching_a_file_invalidates(small_tree: Path) -> None:
    _load(small_tree)
    path = small_tree / "Train" / "a" / "3.png"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    _load(small_tree)
    assert (STATS.hits, STATS.misses) == (0, 2)
    _load(small_tree)
    assert STATS.hits == 1


def test_changed_added_and_removed_files_invalidate(small_tree: Path) -> None:
    before = _load(small_tree)
    target = small_tree / "Train" / "a" / "3.png"
    Image.new("L", (6, 8), 7).save(target)
    os.utime(target, ns=(0, target.stat().st_mtime_ns))  # even with an old-looking atime
    changed = _load(small_tree)
    assert STATS.misses == 2
    assert not np.array_equal(before, changed)
    assert (changed == 7).all(axis=(1, 2)).sum() == 1
    Image.new("L", (6, 8), 0).save(small_tree / "Train" / "b" / "11.png")
    assert len(_load(small_tree)) == 31
    (small_tree / "Train" / "c" / "1.png").unlink()
    assert len(_load(small_tree)) == 30
    assert STATS.misses == 4
    # Each rebuild replaced the entry it made stale: one entry for these settings.
    assert len(_entries()) == 1


def test_changed_preprocessing_is_a_new_entry_beside_the_old(small_tree: Path) -> None:
    _load(small_tree)
    bigger = _load(small_tree, Preprocessing(height=16, width=12))
    assert bigger.shape[1:] == (16, 12)
    assert STATS.misses == 2
    assert len(_entries()) == 2  # both sizes stay cached: a study may alternate between them
    _load(small_tree)
    _load(small_tree, Preprocessing(height=16, width=12))
    assert STATS.hits == 2


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong_shape"])
def test_corrupt_entry_is_a_miss_and_is_rebuilt(small_tree: Path, damage: str) -> None:
    good = _load(small_tree)
    (entry,) = _entries()
    if damage == "truncate":
        entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    elif damage == "garbage":
        data = bytearray(entry.read_bytes())
        data[len(data) // 2 : len(data) // 2 + 64] = b"\xff" * 64  # the zip CRC catches it
        entry.write_bytes(bytes(data))
    else:
        np.savez(
            entry,
            images=np.zeros((3, 2, 2), np.uint8),
            labels=np.zeros(3, np.int32),
            files=np.array(["x"] * 3),
            skipped=np.array([], dtype=str),
        )
    rebuilt = _load(small_tree)
    np.testing.assert_array_equal(good, rebuilt)
    assert (STATS.hits, STATS.misses, STATS.corrupt) == (0, 2, 1)
    _load(small_tree)
    assert STATS.hits == 1


def test_use_cache_false_neither_reads_nor_writes(small_tree: Path) -> None:
    _load(small_tree, use_cache=False)
    assert _entries() == []
    assert (STATS.hits, STATS.misses) == (0, 0)


def test_write_is_atomic_and_leaves_no_temporary_files(
    small_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(array_cache.os, "replace", disk_full)
    images = _load(small_tree)  # the load itself goes on
    assert len(images) == 30
    assert STATS.write_errors == 1
    left = [p.name for p in array_cache.arrays_dir().iterdir()]
    assert not [n for n in left if not n.endswith((".classes.txt", ".lock"))], left


def test_concurrent_writers_and_readers_only_ever_see_whole_entries(tmp_path: Path) -> None:
    path = tmp_path / "entry.npz"
    stop = threading.Event()
    seen: list[int] = []
    torn: list[str] = []

    def write(value: int) -> None:
        arrays = {"images": np.full((200, 80, 60), value, np.uint8)}
        while not stop.is_set():
            array_cache.write_entry(path, arrays)

    def read() -> None:
        deadline = time.monotonic() + 10
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.001)
        for _ in range(40):
            stored = array_cache.read_entry(path)
            if stored is None:
                continue
            values = np.unique(stored["images"])
            if len(values) != 1 or stored["images"].shape != (200, 80, 60):
                torn.append(str(values))
            seen.append(int(values[0]))

    writers = [threading.Thread(target=write, args=(v,)) for v in (1, 2)]
    for thread in writers:
        thread.start()
    try:
        read()
    finally:
        stop.set()
        for thread in writers:
            thread.join()
    assert not torn
    assert seen and set(seen) <= {1, 2}
    assert STATS.corrupt == 0
    assert [p.name for p in tmp_path.iterdir()] == ["entry.npz"]


def test_cache_info_and_clear(small_tree: Path) -> None:
    load_dataset(small_tree, preprocessing=SMALL, workers=1)
    info = array_cache.cache_info()
    assert info.entries == 2 and info.bytes > 0
    assert array_cache.clear_cache() == 2
    assert array_cache.cache_info().entries == 0


@pytest.mark.parametrize("damage", ["flip", "truncate", "none"])
def test_big_entries_are_read_directly_and_still_checked(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "big.npz"
    images = np.random.default_rng(0).integers(0, 256, (500, 80, 60), dtype=np.uint8)  # 2.4 MB
    labels = np.arange(500, dtype=np.int32)
    assert array_cache.write_entry(path, {"images": images, "labels": labels})
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) - 100]
    path.write_bytes(bytes(data))
    stored = array_cache.read_entry(path)
    if damage == "none":
        assert stored is not None
        np.testing.assert_array_equal(stored["images"], images)
        np.testing.assert_array_equal(stored["labels"], labels)
        assert stored["images"].flags.c_contiguous and stored["images"].flags.writeable
    else:
        assert stored is None
        assert STATS.corrupt == 1


def _load_in_another_process(start: Any, results: Any, root: str) -> None:
    start.wait()
    load_split(Path(root) / "Train", CLASSES, SMALL, workers=1)
    results.put((STATS.writes, STATS.hits, STATS.misses))


def test_processes_missing_the_same_entry_at_once_decode_it_once(small_tree: Path) -> None:
    """One decodes and writes; the other waits on the build lock and reads (a hit)."""
    assert run_at_once(_load_in_another_process, str(small_tree)) == [(0, 1, 0), (1, 0, 1)]
    assert len(_entries()) == 1


def test_clear_cache_removes_build_locks(small_tree: Path) -> None:
    _load(small_tree)
    assert list(array_cache.arrays_dir().glob("*.lock"))
    array_cache.clear_cache()
    assert not list(array_cache.arrays_dir().glob("*.lock"))
