"""Reading new writers: synthetic mixing, augmentation, preprocessing, a separate dev set."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.at_once import run_at_once
from tests.tiny import CLASSES, tiny_dataset, write_tiny_layout
from tuner.data.layout import DataWarning
from tuner.data.mixing import mix_into, synthetic_pool
from tuner.data.preprocess import Preprocessing, prepare
from tuner.errors import DataError
from tuner.study.trial_data import TrialData, load_study_data

PP = Preprocessing(16, 12)


def test_mixing_adds_the_requested_synthetic_images_per_class_with_their_labels(
    tmp_path: Path,
) -> None:
    data = tiny_dataset(n_per_class=10)
    pool = synthetic_pool(data.classes, 20, preprocessing=PP, seed=1, cache_dir=tmp_path)
    assert pool.images.shape[1:] == (16, 12)
    mixed = mix_into(data.train, pool, 1.5, data.classes)
    real = np.bincount(data.train.labels, minlength=4)
    total = np.bincount(mixed.labels, minlength=4)
    assert (total - real).tolist() == [15, 15, 15, 15], "1.5 synthetic images per real image"
    added = slice(len(data.train.labels), None)
    for c in range(4):  # each synthetic image keeps its class's label: it is that character
        synthetic_of_c = mixed.images[added][mixed.labels[added] == c]
        pool_of_c = pool.images[pool.labels == c][:15]
        assert np.array_equal(synthetic_of_c, pool_of_c)
    assert all(str(w).startswith("synth-") for w in mixed.writers[added])
    assert np.array_equal(mixed.images[: len(data.train.labels)], data.train.images)
    assert mix_into(data.train, pool, 0.0, data.classes) is data.train


def test_the_synthetic_pool_is_generated_once_then_read_from_the_cache(tmp_path: Path) -> None:
    from tuner.data import cache

    cache.reset_stats()
    first = synthetic_pool(CLASSES, 3, preprocessing=PP, seed=2, cache_dir=tmp_path)
    writes = cache.STATS.writes
    second = synthetic_pool(CLASSES, 3, preprocessing=PP, seed=2, cache_dir=tmp_path)
    assert writes == 1 and cache.STATS.writes == 1 and cache.STATS.hits >= 1
    assert np.array_equal(first.images, second.images)


def test_a_class_without_stroke_data_warns_once_and_trains_on_real_images(tmp_path: Path) -> None:
    classes = ["大", "宬"]  # 宬 is not in the stroke set
    pool = synthetic_pool(classes, 4, preprocessing=PP, seed=0, cache_dir=tmp_path)
    assert pool.missing == ["宬"] and set(pool.labels.tolist()) == {0}
    data = tiny_dataset(n_per_class=6)
    train = data.train.subset(np.flatnonzero(data.train.labels < 2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mixed = mix_into(train, pool, 0.5, classes)
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(messages) == 1 and "宬" in messages[0]
    assert np.bincount(mixed.labels).tolist() == [6 + 3, 6]


def test_augmentation_is_deterministic_for_a_seed_and_keeps_shapes_and_labels() -> None:
    import keras

    from tuner.models.builder import _input_layers

    params = {
        **{"aug_shift": 0.1, "aug_rotate": 0.05, "aug_zoom": 0.1, "aug_ink": 0.5},
        **{"aug_elastic": 0.3, "aug_contrast": 0.3, "aug_darkness": 0.3, "aug_seed": 7},
    }
    images = tiny_dataset(n_per_class=4).train.images[..., None]

    def augmented(p: dict[str, float]) -> np.ndarray:
        keras.backend.clear_session()
        inputs, outputs = _input_layers(p, images.shape[1:])
        return np.asarray(keras.Model(inputs, outputs)(images, training=True))

    first, second = augmented(params), augmented(params)
    assert first.shape == images.shape
    assert np.array_equal(first, second), "same seed, same augmented images"
    assert not np.array_equal(first, augmented({**params, "aug_seed": 8}))
    plain = augmented({"aug_seed": 7})
    assert not np.allclose(first, plain), "augmentation changed the images"


def test_keep_aspect_pads_instead_of_stretching_and_ink_normalisation_stretches_contrast() -> None:
    wide = np.full((10, 40), 255, np.uint8)
    wide[4:6, 2:38] = 150  # a long, light horizontal stroke
    stretched = prepare(wide, Preprocessing(20, 20))
    kept = prepare(wide, Preprocessing(20, 20, keep_aspect=True))
    rows_with_ink = lambda a: int((a < 220).any(axis=1).sum())  # noqa: E731
    assert rows_with_ink(kept) < rows_with_ink(stretched), "the stroke stays thin"
    assert prepare(wide, Preprocessing(20, 20, normalize_ink=True)).min() < 20, "ink made dark"
    assert kept.shape == stretched.shape == (20, 20)


def test_crop_to_ink_removes_margins_so_the_character_fills_the_image() -> None:
    # A character in the top-left quarter of a page with a transparent border, as some
    # exported CASIA PNGs have.
    page = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    ink = Image.new("RGBA", (10, 10), (255, 255, 255, 255))
    ink.paste((0, 0, 0, 255), (2, 2, 8, 8))
    page.paste(ink, (0, 0))
    plain = prepare(page, Preprocessing(20, 20))
    cropped = prepare(page, Preprocessing(20, 20, crop_to_ink=True))
    assert (cropped < 128).mean() > 4 * (plain < 128).mean(), "the character fills the image"
    assert cropped.shape == (20, 20)
    blank = np.full((12, 9), 255, np.uint8)
    assert np.array_equal(prepare(blank, Preprocessing(12, 9, crop_to_ink=True)), blank)
    # Caches made before the option existed keep their key while it is off.
    assert "crop_to_ink" not in Preprocessing().key()
    assert Preprocessing(crop_to_ink=True).key()["crop_to_ink"] is True
    assert Preprocessing.from_params({"preprocess_crop_ink": True}, Preprocessing()).crop_to_ink


def test_affine_augmentation_moves_ink_as_asked_in_one_layer(tmp_path: Path) -> None:
    import keras

    from tuner.models.builder import _input_layers
    from tuner.models.layers import RandomAffine

    image = np.zeros((1, 21, 21, 1), np.float32)
    image[0, 10, 10, 0] = 1.0
    layer = RandomAffine(shift=0.2, seed=3)
    moved = np.asarray(layer(np.repeat(image, 16, axis=0), training=True))
    centres = [np.argwhere(m[..., 0] > m.max() * 0.99)[0] for m in moved]
    offsets = np.abs(np.asarray(centres) - 10)
    assert offsets.max() <= 5, "never shifted by more than 20% of 21 px"
    assert offsets.max() >= 2, "some images moved"
    assert np.allclose(np.asarray(layer(image, training=False)), image), "inference untouched"
    keras.backend.clear_session()
    affine = {"aug_shift": 0.1, "aug_rotate": 0.05, "aug_zoom": 0.1}
    inputs, outputs = _input_layers(affine, (8, 8, 1))
    model = keras.Model(inputs, outputs)
    assert [layer.name for layer in model.layers if layer.name.startswith("aug")] == ["aug_affine"]
    model.save(tmp_path / "model.keras")  # a logged model bundle loads again
    loaded = keras.saving.load_model(tmp_path / "model.keras").get_layer("aug_affine")
    assert isinstance(loaded, RandomAffine) and (loaded.shift, loaded.zoom) == (0.1, 0.1)


def test_val_data_validates_on_another_dataset(tmp_path: Path) -> None:
    root = write_tiny_layout(tmp_path / "data")
    dev = write_tiny_layout(tmp_path / "dev", n_per_class=5, test_per_class=1)
    data = load_study_data(root, PP, val_data=dev)
    assert len(data.val.labels) == 5 * len(CLASSES)
    assert len(data.train.labels) == 30 * len(CLASSES), "all of Train trains"


def test_val_data_with_other_class_names_lists_the_differences(tmp_path: Path) -> None:
    root = write_tiny_layout(tmp_path / "data")
    dev = tmp_path / "dev"
    for name in ("大", "天", "木"):
        (dev / name).mkdir(parents=True)
        Image.new("L", (12, 16), 255).save(dev / name / "1.png")
    with pytest.raises(DataError, match=r"missing 2: 人, 夫; extra 1: 木") as err:
        load_study_data(root, PP, val_data=dev)
    assert "\n" not in str(err.value)


def test_trial_data_rereads_with_the_trials_preprocessing(tmp_path: Path) -> None:
    root = write_tiny_layout(tmp_path / "data")
    base = load_study_data(root, PP)
    trial_data = TrialData(base, root=root)
    assert trial_data.dataset({}) is base
    normalized = trial_data.dataset({"preprocess_normalize_ink": True})
    assert normalized.preprocessing.normalize_ink and normalized is not base
    assert trial_data.dataset({"preprocess_normalize_ink": True}) is normalized, "built once"
    mixed = trial_data.dataset({"synth_ratio": 1.0, "synth_variety": 1.0})
    assert len(mixed.train.labels) == 2 * len(base.train.labels)
    assert np.array_equal(mixed.val.images, base.val.images), "validation is never mixed"


def test_writers_by_number_makes_a_validation_split_that_shares_no_writer(tmp_path: Path) -> None:
    from tuner.data.layout import load_dataset

    root = write_tiny_layout(tmp_path / "data", n_per_class=20)
    data = load_dataset(root, preprocessing=PP, writers_by_number=True, val_fraction=0.25)
    assert data.train.writers is not None and data.val.writers is not None
    assert not set(data.train.writers) & set(data.val.writers)
    assert {f"n{Path(f).stem}" for f in data.val.files} == set(data.val.writers)


def test_elastic_warp_and_ink_thickness_do_what_they_say() -> None:
    from keras import ops

    from tuner.models.layers import ElasticDistortion, _dilate_erode_3x3

    ink = np.random.default_rng(0).random((4, 20, 15, 1)).astype(np.float32)
    thick, thin = _dilate_erode_3x3(ink)
    assert np.allclose(thick, ops.max_pool(ink, 3, 1, "same")), "3x3 dilation"
    assert np.allclose(thin, -ops.max_pool(-ink, 3, 1, "same")), "3x3 erosion"
    barely = np.asarray(ElasticDistortion(1e-6, seed=1)(ink, training=True))
    assert np.abs(barely - ink).max() < 1e-3, "a vanishing warp leaves the image as it is"
    warped = np.asarray(ElasticDistortion(0.5, seed=1)(ink, training=True))
    assert warped.shape == ink.shape and not np.allclose(warped, ink)
    assert warped.min() >= 0.0 and warped.max() <= 1.0, "interpolated ink stays in range"


def _pool_in_another_process(start: Any, writes: Any, cache_dir: str) -> None:
    from tuner.data import cache

    start.wait()
    synthetic_pool(CLASSES, 12, preprocessing=PP, seed=5, cache_dir=Path(cache_dir))
    writes.put(cache.STATS.writes)


def test_two_workers_wanting_the_same_pool_at_once_generate_it_once(tmp_path: Path) -> None:
    """A study's workers start together: one draws the pool, the other waits and reads it."""
    assert run_at_once(_pool_in_another_process, str(tmp_path)) == [0, 1]
    assert len(list(tmp_path.glob("synth-*.npz"))) == 1
