"""``dataset_info``: counts, thin classes, original sizes, histograms."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tuner.data.info import dataset_info, image_size, save_size_histograms
from tuner.errors import DataError

MakeTree = Callable[..., Path]  # the make_tree fixture in conftest


def test_counts_thin_classes_and_original_sizes(make_tree: MakeTree) -> None:
    root = make_tree(
        {"Train": {"a": 10, "b": 10, "c": 3}, "Test": {"a": 4, "b": 1, "c": 4}}, size=(7, 9)
    )
    info = dataset_info(root)
    assert info.classes == ["a", "b", "c"]
    assert info.train.counts == {"a": 10, "b": 10, "c": 3}
    assert info.test is not None and info.test.counts == {"a": 4, "b": 1, "c": 4}
    assert {(t.split, t.cls, t.count) for t in info.thin} == {("Train", "c", 3), ("Test", "b", 1)}
    assert info.train.sizes.shape == (23, 2)
    assert (info.train.sizes == [7, 9]).all()  # (width, height) as stored, not resized
    assert info.train.total == 23 and info.train.median_count() == 10


def test_is_lenient_about_what_loading_refuses(make_tree: MakeTree) -> None:
    root = make_tree({"Train": {"a": 2, "b": 2}, "Test": {"a": 2, "x": 2}})
    (root / "Train" / "empty").mkdir()
    (root / "Train" / "a" / "3.png").write_bytes(b"broken")
    info = dataset_info(root)
    assert info.only_train == ["b", "empty"]
    assert info.only_test == ["x"]
    assert info.train.counts["empty"] == 0
    assert info.train.unreadable == 1
    assert not (root / "classes.txt").exists()  # looking writes nothing into the dataset


def test_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a dataset"):
        dataset_info(tmp_path)


def test_image_size_reads_headers_of_any_format(tmp_path: Path) -> None:
    Image.new("L", (13, 21)).save(tmp_path / "a.png")
    Image.new("RGB", (17, 5)).save(tmp_path / "b.bmp")
    (tmp_path / "c.png").write_bytes(b"\x89PNG")
    assert image_size(tmp_path / "a.png") == (13, 21)
    assert image_size(tmp_path / "b.bmp") == (17, 5)
    assert image_size(tmp_path / "c.png") is None
    assert image_size(tmp_path / "missing.png") is None


def test_histograms_are_saved_as_png(make_tree: MakeTree, tmp_path: Path) -> None:
    root = make_tree({"Train": {"a": 5, "b": 5}, "Test": {"a": 2, "b": 2}}, size=None)
    out = save_size_histograms(dataset_info(root), tmp_path / "plots" / "sizes.png")
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size[0] > 200
        assert np.asarray(image.convert("L")).std() > 0
