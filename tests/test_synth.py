"""Synthetic handwriting: stroke data, renderer, generator, layout, default dataset, CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tuner.cli import main
from tuner.errors import DataError
from tuner.synth import default, generate
from tuner.synth.generate import TEST_WRITER_BASE, synth_images, write_layout
from tuner.synth.render import WriterStyle, render_character, sample_writer
from tuner.synth.strokes import load_components, load_medians, split_available

# Every image's border rows and columns must hold ink: pixels this dark or darker.
INK_AT_EDGE = 245


def test_medians_cover_the_common_characters() -> None:
    medians = load_medians()
    assert len(medians) > 9000
    for char in "人大口安永":
        strokes = medians[char]
        assert strokes, char
        for stroke in strokes:
            assert stroke.ndim == 2 and stroke.shape[1] == 2 and len(stroke) >= 2
            assert stroke.min() >= 0.0 and stroke.max() <= 1.0
    # y points down: 三's first stroke is its top one.
    top, _, bottom = medians["三"]
    assert top[:, 1].mean() < bottom[:, 1].mean()
    assert len(load_components()["安"]) == len(medians["安"])


def test_split_available_keeps_order() -> None:
    assert split_available(["容", "宬", "安"]) == (["容", "安"], ["宬"])


@pytest.mark.parametrize("writer", range(6))
def test_rendered_image_looks_like_casia(writer: int) -> None:
    style = sample_writer(np.random.default_rng(writer))
    img = render_character(load_medians()["宴"], style, np.random.default_rng(100 + writer))
    assert img.dtype == np.uint8 and img.ndim == 2
    assert 25 <= img.shape[0] <= 200 and 20 <= img.shape[1] <= 200
    assert img.min() < 100  # dark ink
    assert np.median(img) > 200  # mostly paper
    assert (img > 230).mean() > 0.5
    # Tightly cropped: ink touches every edge.
    for edge in (img[0], img[-1], img[:, 0], img[:, -1]):
        assert edge.min() <= INK_AT_EDGE


def test_variety_zero_gives_the_typical_writer() -> None:
    rngs = [np.random.default_rng(i) for i in range(3)]
    assert {sample_writer(rng, variety=0.0) for rng in rngs} == {WriterStyle()}


def test_same_seed_same_bytes_whatever_else_is_drawn() -> None:
    images, labels, writers = synth_images(["安", "容"], [0, 1, 2], seed=7, workers=1)
    again, _, _ = synth_images(["安", "容"], [0, 1, 2], seed=7, workers=1)
    assert [i.tobytes() for i in images] == [i.tobytes() for i in again]
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert writers.tolist() == [0, 1, 2, 0, 1, 2]
    alone, _, _ = synth_images(["容"], [2], seed=7, workers=1)
    assert alone[0].tobytes() == images[5].tobytes()


def test_same_images_in_parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generate, "MIN_PARALLEL_IMAGES", 0)
    monkeypatch.setattr(generate, "CHUNK_IMAGES", 3)
    serial, _, _ = synth_images(["安", "容"], [0, 1, 2, 3], seed=1, workers=1)
    parallel, _, _ = synth_images(["安", "容"], [0, 1, 2, 3], seed=1, workers=2)
    assert [i.tobytes() for i in serial] == [i.tobytes() for i in parallel]


def test_different_seeds_differ() -> None:
    a, _, _ = synth_images(["安"], [0, 1], seed=0, workers=1)
    b, _, _ = synth_images(["安"], [0, 1], seed=1, workers=1)
    assert all(x.tobytes() != y.tobytes() for x, y in zip(a, b, strict=True))


def test_missing_characters_are_named() -> None:
    with pytest.raises(DataError, match="宬"):
        synth_images(["安", "宬"], [0], workers=1)


def test_write_layout(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    summary = write_layout(out, ["安", "容"], train_writers=2, test_writers=1, seed=3, workers=1)
    assert (summary.images, summary.classes) == (6, 2)
    assert (out / "classes.txt").read_text("utf-8") == "安\n容\n"
    for split, n in (("Train", 2), ("Test", 1)):
        for char in "安容":
            assert sorted(p.name for p in (out / split / char).iterdir()) == [
                f"{i}.png" for i in range(1, n + 1)
            ]
    with (out / "writers.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["split", "class", "file", "writer"]
    by_split: dict[str, set[str]] = {}
    for split, char, name, writer in rows[1:]:
        assert (out / split / char / name).is_file()
        by_split.setdefault(split, set()).add(writer)
    assert len(rows) == 7
    assert by_split["Train"] == {"0", "1"}
    assert by_split["Test"] == {str(TEST_WRITER_BASE)}
    assert not by_split["Train"] & by_split["Test"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth"]  # no staging left behind


def test_write_layout_refuses_a_nonempty_directory(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(DataError, match="not empty"):
        write_layout(out, ["安"], train_writers=1, test_writers=1, workers=1)
    assert (out / "mine.txt").is_file()
    write_layout(out, ["安"], train_writers=1, test_writers=1, workers=1, overwrite=True)
    assert not (out / "mine.txt").exists() and (out / "classes.txt").is_file()


def test_write_layout_reports_missing_characters(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="宬"):
        write_layout(tmp_path / "x", ["宬", "安"], train_writers=1, test_writers=1)
    assert not (tmp_path / "x").exists()


def _small_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(default, "DEFAULT_CHARSET", "安,容")
    monkeypatch.setattr(default, "DEFAULT_TRAIN_WRITERS", 2)
    monkeypatch.setattr(default, "DEFAULT_TEST_WRITERS", 1)


def test_default_dataset_is_generated_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _small_default(monkeypatch)
    monkeypatch.setenv("TUNER_CACHE_DIR", str(tmp_path))
    root = default.default_dataset_root()
    assert root.parent == tmp_path / "datasets"
    assert f"r{default.RENDERER_VERSION}" in root.name
    first = (root / "Train" / "安" / "1.png").stat().st_mtime_ns
    assert default.default_dataset_root() == root
    assert (root / "Train" / "安" / "1.png").stat().st_mtime_ns == first


def test_default_dataset_keeps_the_race_winner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second process that finishes after the first keeps the first one's dataset."""
    _small_default(monkeypatch)
    root = tmp_path / "datasets" / default.default_dataset_name()
    real_write_into = generate._write_into

    def winner_finishes_first(staging: Path, *args: object) -> None:
        real_write_into(staging, *args)  # type: ignore[arg-type]
        root.mkdir(parents=True)
        (root / "classes.txt").write_text("winner\n", encoding="utf-8")

    monkeypatch.setattr(generate, "_write_into", winner_finishes_first)
    assert default.default_dataset_root(tmp_path) == root
    assert (root / "classes.txt").read_text("utf-8") == "winner\n"
    assert sorted(p.name for p in root.parent.iterdir()) == [root.name]


def test_cli_writes_the_layout(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    args = ["data", "synth", "--chars", "安,容", "--out", str(out)]
    result = CliRunner().invoke(main, [*args, "--train-writers", "2", "--test-writers", "1"])
    assert result.exit_code == 0, result.output
    assert "6 images" in result.output and "2 classes" in result.output
    assert len(list(out.glob("*/*/*.png"))) == 6
    again = CliRunner().invoke(main, [*args, "--train-writers", "2", "--test-writers", "1"])
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_cli_names_missing_characters(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["data", "synth", "--chars", "安,宬", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 2
    assert "宬" in result.output
