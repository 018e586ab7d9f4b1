"""CASIA .gnt files: reading, truncation, import into the course layout."""

from __future__ import annotations

import csv
import struct
from pathlib import Path

import numpy as np
import pytest

from tuner.data import gnt
from tuner.data.gnt import import_gnt, iter_gnt, write_gnt
from tuner.data.layout import IMPORT_MARKER, load_dataset
from tuner.data.preprocess import Preprocessing
from tuner.errors import DataError

# Bitmaps are 5 wide and 4 high: load them at that size to compare pixels exactly.
EXACT = Preprocessing(height=4, width=5)


def bitmap(value: int) -> np.ndarray:
    image = np.full((4, 5), 255, np.uint8)
    image[1:3, 1:4] = value
    return image


def sample_bytes(code: bytes, image: np.ndarray) -> bytes:
    """One sample as the official format lays it out, written independently of write_gnt."""
    height, width = image.shape
    return (
        struct.pack("<I", 10 + width * height)
        + code
        + struct.pack("<HH", width, height)
        + image.tobytes()
    )


def writer_file(path: Path, samples: list[tuple[str, int]]) -> Path:
    write_gnt(((char, bitmap(value)) for char, value in samples), path)
    return path


def test_reads_the_official_byte_layout(tmp_path: Path) -> None:
    # 啊 is GB2312 B0A1, stored lead byte first; 大 is B4F3.
    path = tmp_path / "1001-c.gnt"
    path.write_bytes(sample_bytes(b"\xb0\xa1", bitmap(0)) + sample_bytes(b"\xb4\xf3", bitmap(9)))
    samples = list(iter_gnt(path))
    assert [char for char, _ in samples] == ["啊", "大"]
    np.testing.assert_array_equal(samples[0][1], bitmap(0))
    np.testing.assert_array_equal(samples[1][1], bitmap(9))
    assert samples[1][1].shape == (4, 5)


def test_write_gnt_round_trips(tmp_path: Path) -> None:
    path = writer_file(tmp_path / "w.gnt", [("人", 1), ("从", 2), ("A", 3)])
    assert path.read_bytes()[4:6] == "人".encode("gb2312")
    assert [(c, int(a[1, 1])) for c, a in iter_gnt(path)] == [("人", 1), ("从", 2), ("A", 3)]


def test_truncated_bitmap_names_the_file_and_offset(tmp_path: Path) -> None:
    path = writer_file(tmp_path / "1002-c.gnt", [("人", 1), ("从", 2)])
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DataError, match=r"1002-c\.gnt is truncated at byte 30\b"):
        list(iter_gnt(path))


def test_truncated_header_names_the_file_and_offset(tmp_path: Path) -> None:
    path = writer_file(tmp_path / "1003-c.gnt", [("人", 1)])
    path.write_bytes(path.read_bytes() + b"\x10\x00\x00")
    with pytest.raises(DataError, match=r"1003-c\.gnt is truncated at byte 30: .*3 of 10"):
        list(iter_gnt(path))


def test_not_a_gnt_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.gnt"
    path.write_bytes(b"these are not handwriting samples at all, sorry")
    with pytest.raises(DataError, match=r"notes\.gnt is not a CASIA \.gnt file .* at byte 0"):
        list(iter_gnt(path))


def test_import_round_trips_into_arrays(tmp_path: Path) -> None:
    first = writer_file(tmp_path / "1001-c.gnt", [("人", 10), ("从", 20), ("众", 30)])
    second = writer_file(tmp_path / "1002-c.gnt", [("从", 21), ("人", 11), ("众", 31)])
    out = tmp_path / "casia"
    result = import_gnt([first, second], out)
    assert (result.files, result.samples, result.written) == (2, 6, 6)
    assert "imported 6 images of 3 characters from 2 .gnt files" in result.summary()
    assert sorted(p.name for p in (out / "Train" / "人").iterdir()) == ["1.png", "2.png"]
    rows = list(csv.reader((out / "writers.csv").open(encoding="utf-8")))
    assert rows[0] == ["split", "class", "file", "writer"]
    assert ["Train", "从", "2.png", "1002-c"] in rows

    dataset = load_dataset(out, preprocessing=EXACT, val_fraction=0, workers=1)
    by_file = dict(zip(dataset.train.files, dataset.train.images, strict=True))
    np.testing.assert_array_equal(by_file["Train/人/1.png"], bitmap(10))
    np.testing.assert_array_equal(by_file["Train/人/2.png"], bitmap(11))
    np.testing.assert_array_equal(by_file["Train/众/2.png"], bitmap(31))
    assert dataset.train.writers is not None
    assert dataset.train.writers[dataset.train.files.index("Train/人/2.png")] == "1002-c"


def test_import_only_chosen_characters_in_their_order(tmp_path: Path) -> None:
    source = writer_file(tmp_path / "1001-c.gnt", [("人", 1), ("从", 2), ("众", 3), ("大", 4)])
    result = import_gnt([tmp_path], tmp_path / "out", chars=["众", "人", "鱼"])
    assert result.written == 2
    assert result.missing == ["鱼"]
    assert (tmp_path / "out" / "classes.txt").read_text("utf-8") == "众\n人\n"
    assert sorted(p.name for p in (tmp_path / "out" / "Train").iterdir()) == ["人", "众"]
    assert source.exists()
    with pytest.raises(DataError, match="no samples of the chosen characters"):
        import_gnt([source], tmp_path / "none", chars=["鱼"])
    assert not (tmp_path / "none").exists()


def test_test_split_merges_into_an_existing_dataset(tmp_path: Path) -> None:
    out = tmp_path / "casia"
    train_files = [
        writer_file(tmp_path / f"{w}-c.gnt", [("人", w), ("从", w)]) for w in range(1, 6)
    ]
    import_gnt(train_files, out)
    test_file = writer_file(tmp_path / "t" / "9-c.gnt", [("人", 99), ("从", 98)])
    result = import_gnt([test_file], out, split="Test")
    assert result.written == 2
    more = writer_file(tmp_path / "more" / "6-c.gnt", [("人", 6)])
    import_gnt([more], out)
    assert sorted(p.name for p in (out / "Train" / "人").iterdir()) == [
        f"{n}.png" for n in range(1, 7)
    ]
    # Importing a writer again adds nothing.
    again = import_gnt([train_files[0]], out)
    assert (again.written, again.already_imported) == (0, ["1-c"])
    assert "already imported" in again.summary()
    assert not (out / IMPORT_MARKER).exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]

    dataset = load_dataset(out, preprocessing=EXACT, val_fraction=0.2, workers=1)
    assert dataset.test is not None and dataset.test.writers is not None
    assert set(dataset.test.writers.tolist()) == {"9-c"}
    assert dataset.train.writers is not None and dataset.val.writers is not None
    assert not set(dataset.train.writers.tolist()) & set(dataset.val.writers.tolist())
    assert len(dataset.train) + len(dataset.val) == 11


def test_failed_import_leaves_nothing_that_looks_complete(tmp_path: Path) -> None:
    good = writer_file(tmp_path / "1-c.gnt", [("人", 1), ("从", 2)])
    bad = writer_file(tmp_path / "2-c.gnt", [("人", 3), ("从", 4)])
    bad.write_bytes(bad.read_bytes()[:-3])
    out = tmp_path / "casia"
    with pytest.raises(DataError, match=r"2-c\.gnt is truncated at byte 30"):
        import_gnt([good, bad], out)
    assert not out.exists()
    assert list(tmp_path.glob(".casia*")) == []
    # Into an existing dataset: nothing moves in, and the dataset stays as it was.
    import_gnt([good], out)
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    with pytest.raises(DataError):
        import_gnt([bad], out)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before


def test_import_interrupted_while_moving_files_is_refused_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "casia"
    import_gnt([writer_file(tmp_path / "1-c.gnt", [("人", 1)])], out)

    def crash(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(gnt.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        import_gnt([writer_file(tmp_path / "2-c.gnt", [("人", 2)])], out)
    monkeypatch.undo()
    assert (out / IMPORT_MARKER).exists()
    with pytest.raises(DataError, match=r"did not finish: delete .*casia"):
        load_dataset(out)
    with pytest.raises(DataError, match="did not finish"):
        import_gnt([tmp_path / "2-c.gnt"], out)


def test_bad_import_arguments(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        import_gnt([tmp_path / "missing.gnt"], tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"holds no \.gnt files"):
        import_gnt([tmp_path / "empty"], tmp_path / "out")
    with pytest.raises(DataError, match="split must be"):
        import_gnt([tmp_path / "missing.gnt"], tmp_path / "out", split="Validation")
    a = writer_file(tmp_path / "a" / "7-c.gnt", [("人", 1)])
    b = writer_file(tmp_path / "b" / "7-c.gnt", [("人", 1)])
    with pytest.raises(DataError, match=r"several \.gnt files are named 7-c"):
        import_gnt([a, b], tmp_path / "out")


def test_unwritable_out_folder_is_a_data_error(tmp_path: Path) -> None:
    source = writer_file(tmp_path / "1-c.gnt", [("人", 1)])
    (tmp_path / "a-file").write_text("")
    with pytest.raises(DataError, match=r"cannot write the dataset .*writable --out"):
        import_gnt([source], tmp_path / "a-file" / "casia")
