"""The course layout: class order, decoding, validation splits, bad input."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tuner.data import cache as array_cache
from tuner.data import layout
from tuner.data.layout import (
    DataWarning,
    Split,
    load_dataset,
    load_split,
    natural_key,
    read_class_order,
    split_validation,
)
from tuner.data.preprocess import Preprocessing
from tuner.errors import DataError

MakeTree = Callable[..., Path]  # the make_tree fixture in conftest

SMALL = Preprocessing(height=8, width=6)  # the fixtures' own size: no resizing


def test_loads_train_val_test_as_uint8_arrays(
    small_tree: Path, glyph_of: Callable[[int, int, int, int], np.ndarray]
) -> None:
    dataset = load_dataset(small_tree, preprocessing=SMALL, workers=1)
    assert dataset.classes == ["a", "b", "c"]
    assert dataset.test is not None
    for split in (dataset.train, dataset.val, dataset.test):
        assert split.images.dtype == np.uint8
        assert split.images.shape[1:] == (8, 6)
        assert split.labels.dtype == np.int32
        assert len(split.files) == len(split.labels) == len(split.images)
        assert split.writers is None
    assert len(dataset.train) + len(dataset.val) == 30
    assert len(dataset.test) == 12
    # Each image is the file it names: the fixture's glyph for that class and number.
    for split in (dataset.train, dataset.val, dataset.test):
        for image, rel in zip(split.images, split.files, strict=True):
            _, cls, name = rel.split("/")
            spec_label = {"b": 0, "a": 1, "c": 2}[cls]
            np.testing.assert_array_equal(image, glyph_of(spec_label, int(name[:-4]), 6, 8))
            assert dataset.classes[split.labels[split.files.index(rel)]] == cls


def test_default_size_is_80_high_60_wide(small_tree: Path) -> None:
    dataset = load_dataset(small_tree, workers=1)
    assert dataset.train.images.shape[1:] == (80, 60)
    assert dataset.preprocessing == Preprocessing()


def test_files_sort_naturally_within_a_class(make_tree: MakeTree) -> None:
    root = make_tree({"Train": {"a": 12}})
    split = load_split(root / "Train", ["a"], SMALL, workers=1)
    assert split.files == [f"Train/a/{n}.png" for n in range(1, 13)]
    assert sorted(["10.png", "2.png", "1.png", "01.png"], key=natural_key) == [
        "01.png",
        "1.png",
        "2.png",
        "10.png",
    ]
    # Non-ASCII digits and superscripts must not break sorting.
    names = ["x10.png", "x2.png", "²a.png", "a.png", "x2b.png", "٣.png"]
    assert sorted(names, key=natural_key) == [
        "٣.png",
        "a.png",
        "x2.png",
        "x2b.png",
        "x10.png",
        "²a.png",
    ]
    mixed = make_tree({"Train": {"b": 1}}, name="mixed")
    for name in ("x10.png", "x2.png", "²a.png", "3.png"):
        Image.new("L", (6, 8), 255).save(mixed / "Train" / "b" / name)
    listed = [name for name, _, _ in layout.list_images(mixed / "Train" / "b")]
    assert listed.index("x2.png") < listed.index("x10.png")
    assert listed.index("1.png") < listed.index("3.png")


def test_class_order_is_written_beside_the_data_and_kept(make_tree: MakeTree) -> None:
    root = make_tree({"Train": {"z": 2, "a": 2, "m": 2}})
    assert read_class_order(root) == ["a", "m", "z"]
    assert (root / "classes.txt").read_text("utf-8") == "a\nm\nz\n"
    # A user order in classes.txt wins over sorting.
    (root / "classes.txt").write_text("z\na\nm\n", "utf-8")
    assert read_class_order(root) == ["z", "a", "m"]
    dataset = load_dataset(root, preprocessing=SMALL, val_fraction=0, workers=1)
    assert dataset.classes == ["z", "a", "m"]
    assert [f.split("/")[1] for f in dataset.train.files[:2]] == ["z", "z"]
    assert dataset.train.labels[:2].tolist() == [0, 0]


def test_class_order_does_not_depend_on_file_system_order(
    make_tree: MakeTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = {"Train": {"口": 2, "大": 2, "人": 2, "10": 2, "9": 2}}
    forward = make_tree(spec, name="forward")
    # Same folders, created in the opposite order.
    backward = make_tree({"Train": dict(reversed(spec["Train"].items()))}, name="backward")
    real_scandir = os.scandir

    class Reversed:
        def __init__(self, path: object) -> None:
            self.entries = list(real_scandir(path))[::-1]  # type: ignore[call-overload]

        def __enter__(self) -> list[os.DirEntry[str]]:
            return self.entries

        def __exit__(self, *args: object) -> None:
            return None

    first = read_class_order(forward)
    monkeypatch.setattr(layout.os, "scandir", Reversed)
    assert read_class_order(backward) == first


def test_read_only_dataset_keeps_its_class_order_in_the_cache(
    make_tree: MakeTree, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = make_tree({"Train": {"b": 2, "a": 2}})
    real_write = array_cache.write_text_atomic

    def read_only_dataset(path: Path, text: str) -> None:
        if path.parent == root:
            raise PermissionError(13, "Read-only file system", str(path))
        real_write(path, text)

    monkeypatch.setattr(array_cache, "write_text_atomic", read_only_dataset)
    assert read_class_order(root) == ["a", "b"]
    assert not (root / "classes.txt").exists()
    kept = array_cache.class_order_path(root)
    assert kept.read_text("utf-8") == "a\nb\n"
    # The cached order is what later loads use, whatever sorting would say.
    kept.write_text("b\na\n", "utf-8")
    assert read_class_order(root) == ["b", "a"]
    # ...until the class folders change.
    (root / "Train" / "c").mkdir()
    Image.new("L", (6, 8), 255).save(root / "Train" / "c" / "1.png")
    assert read_class_order(root) == ["a", "b", "c"]


def test_classes_txt_that_does_not_match_the_folders_is_refused(make_tree: MakeTree) -> None:
    root = make_tree({"Train": {"a": 2, "b": 2}})
    (root / "classes.txt").write_text("a\nx\n", "utf-8")
    with pytest.raises(DataError, match=r"no Train folder for x; not listed: b.*delete it"):
        load_dataset(root, workers=1)


@pytest.mark.parametrize(
    ("mode", "make", "expected"),
    [
        ("RGB", lambda: Image.new("RGB", (6, 8), (100, 100, 100)), 100),
        ("P", lambda: Image.new("RGB", (6, 8), (30, 30, 30)).quantize(4), 30),
        ("RGBA", lambda: Image.new("RGBA", (6, 8), (0, 0, 0, 0)), 255),  # transparent = paper
        ("LA", lambda: Image.new("LA", (6, 8), (0, 255)), 0),
        ("I;16", lambda: Image.fromarray(np.full((8, 6), 257 * 100, np.uint16)), 100),
        ("I;16 dark", lambda: Image.fromarray(np.full((8, 6), 200, np.uint16)), 1),
        ("1", lambda: Image.new("1", (6, 8), 1), 255),
    ],
)
def test_other_png_modes_become_8_bit_gray(
    make_tree: MakeTree, mode: str, make: object, expected: int
) -> None:
    root = make_tree({"Train": {"a": 2}})
    image = make()  # type: ignore[operator]
    image.save(root / "Train" / "a" / "2.png")
    split = load_split(root / "Train", ["a"], SMALL, workers=1)
    assert split.images.dtype == np.uint8
    assert np.all(split.images[1] == expected), (mode, np.unique(split.images[1]))


def test_truncated_png_is_skipped_with_one_warning(make_tree: MakeTree) -> None:
    root = make_tree({"Train": {"a": 5, "b": 5}})
    for name in ("a/2.png", "b/4.png"):
        path = root / "Train" / name
        path.write_bytes(path.read_bytes()[:40])
    (root / "Train" / "b" / "5.png").write_bytes(b"not an image at all")
    with pytest.warns(DataWarning) as caught:
        split = load_split(root / "Train", ["a", "b"], SMALL, workers=1)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "skipped 3 unreadable images" in message
    assert "Train/a/2.png" in message
    assert len(split) == 7
    assert "Train/a/2.png" not in split.files
    # Served from the cache, the same split and the same warning.
    with pytest.warns(DataWarning, match="skipped 3 unreadable images"):
        again = load_split(root / "Train", ["a", "b"], SMALL, workers=1)
    assert array_cache.STATS.hits == 1
    assert again.files == split.files


def test_class_with_only_unreadable_images_is_an_error(make_tree: MakeTree) -> None:
    root = make_tree({"Train": {"a": 2, "b": 2}})
    for path in (root / "Train" / "b").iterdir():
        path.write_bytes(b"broken")
    with pytest.warns(DataWarning), pytest.raises(DataError, match=r"every image in .*b"):
        load_dataset(root, workers=1)


def test_train_and_test_with_different_classes_are_refused(make_tree: MakeTree) -> None:
    root = make_tree({"Train": {"a": 2, "b": 2, "c": 2}, "Test": {"a": 1, "b": 1, "d": 1}})
    with pytest.raises(DataError) as error:
        load_dataset(root, workers=1)
    message = str(error.value)
    assert "only in Train: c" in message
    assert "only in Test: d" in message
    assert "\n" not in message


def test_empty_class_folder_is_named(make_tree: MakeTree) -> None:
    root = make_tree({"Train": {"a": 2, "b": 2}})
    (root / "Train" / "empty").mkdir()
    (root / "Train" / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"class folder .*Train/empty has no images"):
        load_dataset(root, workers=1)


def test_folder_without_train_is_not_a_dataset(tmp_path: Path, make_tree: MakeTree) -> None:
    with pytest.raises(DataError, match=r"does not exist.*tune data synth"):
        load_dataset(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError, match=r"not a dataset: expected .*Train/<class>.*import-gnt"):
        load_dataset(tmp_path / "plain")
    root = make_tree({"Train": {"a": 2}})
    with pytest.raises(DataError, match=r"give its parent"):
        load_dataset(root / "Train")


def test_missing_test_folder_gives_no_test_split(make_tree: MakeTree) -> None:
    root = make_tree({"Train": {"a": 4, "b": 4}})
    dataset = load_dataset(root, preprocessing=SMALL, workers=1)
    assert dataset.test is None


def test_unfinished_import_is_refused(small_tree: Path) -> None:
    (small_tree / layout.IMPORT_MARKER).write_text("")
    with pytest.raises(DataError, match="did not finish"):
        load_dataset(small_tree, workers=1)


def test_validation_split_is_stratified_seeded_and_disjoint(make_tree: MakeTree) -> None:
    root = make_tree({"Train": {"a": 10, "b": 20, "c": 5}})
    first = load_dataset(root, preprocessing=SMALL, workers=1, seed=3)
    again = load_dataset(root, preprocessing=SMALL, workers=1, seed=3)
    other = load_dataset(root, preprocessing=SMALL, workers=1, seed=4)
    assert np.bincount(first.val.labels).tolist() == [2, 4, 1]
    assert np.bincount(first.train.labels).tolist() == [8, 16, 4]
    assert not set(first.train.files) & set(first.val.files)
    assert first.val.files == again.val.files
    assert first.val.files != other.val.files
    none = load_dataset(root, preprocessing=SMALL, workers=1, val_fraction=0)
    assert len(none.val) == 0 and len(none.train) == 35
    with pytest.raises(DataError, match="val_fraction"):
        load_dataset(root, val_fraction=1.0)


def _write_writers(root: Path, writers_of: dict[str, int]) -> None:
    """writers.csv giving image n of every class writer ``n % writers``-ish, by rule."""
    with (root / "writers.csv").open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["split", "class", "file", "writer"])
        for cls_dir in sorted((root / "Train").iterdir()):
            for image in sorted(cls_dir.iterdir()):
                n = int(image.stem)
                out.writerow(
                    ["Train", cls_dir.name, image.name, f"w{n % writers_of[cls_dir.name]}"]
                )


def test_writer_aware_split_keeps_each_writer_on_one_side(make_tree: MakeTree) -> None:
    root = make_tree({"Train": {"a": 20, "b": 20, "c": 20}})
    _write_writers(root, {"a": 10, "b": 10, "c": 10})
    dataset = load_dataset(root, preprocessing=SMALL, workers=1, seed=1)
    assert dataset.train.writers is not None and dataset.val.writers is not None
    train_writers = set(dataset.train.writers.tolist())
    val_writers = set(dataset.val.writers.tolist())
    assert val_writers and train_writers
    assert not train_writers & val_writers
    assert len(dataset.val) == 12  # 2 of the 10 writers, 2 images in each of 3 classes
    assert np.bincount(dataset.val.labels).tolist() == [4, 4, 4]


def test_writer_aware_split_always_leaves_a_writer_for_training() -> None:
    split = Split(
        images=np.zeros((4, 2, 2), np.uint8),
        labels=np.array([0, 0, 1, 1], np.int32),
        writers=np.array(["w1", "w1", "w1", "w1"]),
        files=["1", "2", "3", "4"],
    )
    train, val = split_validation(split, 0.5, seed=0)
    assert len(train) == 4 and len(val) == 0


def test_parallel_decoding_matches_serial(
    make_tree: MakeTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_tree({"Train": {"a": 80, "b": 80}}, size=None)  # three chunks
    (root / "Train" / "a" / "7.png").write_bytes(b"broken")
    monkeypatch.setattr(layout, "PARALLEL_MIN_IMAGES", 0)
    pools: list[object] = []
    real_pool = layout.ProcessPoolExecutor

    def counted_pool(*args: Any, **kwargs: Any) -> Any:
        pools.append(kwargs)
        return real_pool(*args, **kwargs)

    monkeypatch.setattr(layout, "ProcessPoolExecutor", counted_pool)
    with pytest.warns(DataWarning, match="skipped 1 unreadable image "):
        parallel = load_split(root / "Train", ["a", "b"], SMALL, workers=2, use_cache=False)
    with pytest.warns(DataWarning):
        serial = load_split(root / "Train", ["a", "b"], SMALL, workers=1, use_cache=False)
    assert len(pools) == 1  # the serial load started none
    np.testing.assert_array_equal(parallel.images, serial.images)
    assert parallel.files == serial.files
    assert len(parallel) == 159


def test_writers_csv_with_a_bom_is_read_and_a_bad_one_is_named(make_tree: MakeTree) -> None:
    root = make_tree({"Train": {"a": 4}})
    (root / "writers.csv").write_text(
        "\ufeffsplit,class,file,writer\n" + "".join(f"Train,a,{n}.png,w{n}\n" for n in range(1, 5)),
        "utf-8",
    )
    dataset = load_dataset(root, preprocessing=SMALL, workers=1)
    assert dataset.train.writers is not None
    (root / "writers.csv").write_text("who,what\nx,y\n", "utf-8")
    with pytest.raises(DataError, match=r"writers\.csv must start with the header line"):
        load_dataset(root, preprocessing=SMALL, workers=1)
    (root / "writers.csv").write_bytes(b"split,class,file,writer\n\xff\xfe,a\n")
    with pytest.raises(DataError, match=r"cannot read .*writers\.csv"):
        load_dataset(root, preprocessing=SMALL, workers=1)
