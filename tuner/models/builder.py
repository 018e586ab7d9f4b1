"""Keras model builders, chosen by the search space's ``model`` family name.

Like Keras Tuner's ``HyperModel``, a builder only turns sampled values into a compiled model; it
does not sample, train or log. Images arrive as uint8 (N, H, W, 1) with CASIA's light paper and
dark ink; the first layer inverts and rescales them so ink is 1 and paper is 0 (zero padding
and pooling then treat the border as paper).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from tuner.errors import TunerError

if TYPE_CHECKING:
    import keras


class ModelConfigError(ValueError):
    """A sampled configuration that cannot be built (the trial fails with this reason)."""


class ModelBuilder:
    """Base class: subclasses set ``family`` and implement :meth:`build`."""

    family: ClassVar[str] = ""

    def build(
        self, params: Mapping[str, Any], input_shape: tuple[int, int, int], n_classes: int
    ) -> keras.Model:
        raise NotImplementedError

    @staticmethod
    def compile(model: keras.Model, params: Mapping[str, Any]) -> keras.Model:
        import keras

        lr = float(params.get("learning_rate", 1e-3))
        name = str(params.get("optimizer", "adam"))
        optimizers: dict[str, Any] = {
            "adam": lambda: keras.optimizers.Adam(learning_rate=lr),
            "rmsprop": lambda: keras.optimizers.RMSprop(learning_rate=lr),
            "sgd": lambda: keras.optimizers.SGD(learning_rate=lr, momentum=0.9, nesterov=True),
        }
        if name not in optimizers:
            raise ModelConfigError(f"unknown optimizer {name!r}; use one of {sorted(optimizers)}")
        model.compile(
            optimizer=optimizers[name](),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[
                keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5_accuracy"),
            ],
        )
        return model


def _input_layers(params: Mapping[str, Any], input_shape: tuple[int, int, int]) -> tuple[Any, Any]:
    """Input, ink-is-one rescaling and (training-only) augmentation."""
    import keras

    from tuner.models.layers import ElasticDistortion, InkDarkness, InkThickness, RandomAffine

    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Rescaling(-1.0 / 255.0, offset=1.0, name="ink")(inputs)
    shift = float(params.get("aug_shift", 0.0))
    rotate = float(params.get("aug_rotate", 0.0))
    zoom = float(params.get("aug_zoom", 0.0))
    ink = float(params.get("aug_ink", 0.0))
    seed = int(params.get("aug_seed", 0))
    elastic = float(params.get("aug_elastic", 0.0))
    contrast = float(params.get("aug_contrast", 0.0))
    darkness = float(params.get("aug_darkness", 0.0))
    if ink > 0:
        x = InkThickness(ink, seed=seed, name="aug_ink")(x)
    if darkness > 0:
        x = InkDarkness(darkness, seed=seed, name="aug_darkness")(x)
    if contrast > 0:
        x = keras.layers.RandomContrast(
            contrast, value_range=(0.0, 1.0), seed=seed, name="aug_contrast"
        )(x)
    if elastic > 0:
        x = ElasticDistortion(elastic, seed=seed, name="aug_elastic")(x)
    if shift > 0 or rotate > 0 or zoom > 0:
        x = RandomAffine(shift, rotate, zoom, seed=seed, name="aug_affine")(x)
    return inputs, x


def pool_size(params: Mapping[str, Any], block: int, height: int, width: int) -> int:
    """Block ``block``'s pool size, capped at its feature map's shorter side.

    Deep or strongly pooled networks shrink the map below the sampled pool size (80x60 input,
    pools 4-4-4: the third block's map is 5x3). Building them with the pool capped, where
    Keras would refuse them, keeps every sampled configuration trainable: a failed trial tells
    the sampler nothing (Optuna's TPE and GP samplers skip failed trials), so a space with such
    a region would keep drawing from it; Optuna's GP sampler spent 146 of 185 trials there.
    The model summary logged with each trial shows the pools actually built.
    """
    return max(1, min(int(params.get(f"pool_size_{block}", 2)), height, width))


class CNNBuilder(ModelBuilder):
    """Conv blocks (conv, optional batch norm, ReLU, optional pooling), then a dense head.

    The course's network is n_blocks=3, filters 16/32/64, 3x3, max pooling 2/2/4, dense 64.
    """

    family = "cnn"

    def build(
        self, params: Mapping[str, Any], input_shape: tuple[int, int, int], n_classes: int
    ) -> keras.Model:
        import keras

        n_blocks = int(params.get("n_blocks", 3))
        kernel = int(params.get("kernel_size", 3))
        pooling = str(params.get("pooling", "max"))
        batch_norm = bool(params.get("batch_norm", False))
        inputs, x = _input_layers(params, input_shape)
        height, width = input_shape[0], input_shape[1]
        for i in range(1, n_blocks + 1):
            filters = int(params.get(f"filters_{i}", 16 * 2 ** (i - 1)))
            x = keras.layers.Conv2D(
                filters, kernel, padding="same", use_bias=not batch_norm, name=f"conv_{i}"
            )(x)
            if batch_norm:
                x = keras.layers.BatchNormalization(name=f"bn_{i}")(x)
            x = keras.layers.Activation("relu", name=f"relu_{i}")(x)
            pool = pool_size(params, i, height, width) if pooling != "none" else 1
            if pool > 1:
                layer = (
                    keras.layers.MaxPooling2D if pooling == "max" else keras.layers.AveragePooling2D
                )
                x = layer(pool, name=f"pool_{i}")(x)
                height, width = height // pool, width // pool
        x = keras.layers.Flatten(name="flatten")(x)
        return self._head(x, inputs, params, n_classes)

    @staticmethod
    def _head(x: Any, inputs: Any, params: Mapping[str, Any], n_classes: int) -> keras.Model:
        import keras

        dropout = float(params.get("dropout", 0.0))
        dense = int(params.get("dense_units", 64))
        if dense > 0:
            if dropout > 0:
                x = keras.layers.Dropout(dropout, name="dropout_flat")(x)
            x = keras.layers.Dense(dense, activation="relu", name="dense")(x)
        if dropout > 0:
            x = keras.layers.Dropout(dropout, name="dropout")(x)
        outputs = keras.layers.Dense(n_classes, name="logits")(x)
        return keras.Model(inputs, outputs, name="casia_cnn")


class LogisticBuilder(ModelBuilder):
    """The course's baseline: flatten, rescale, one softmax layer (with L2)."""

    family = "logistic"

    def build(
        self, params: Mapping[str, Any], input_shape: tuple[int, int, int], n_classes: int
    ) -> keras.Model:
        import keras

        inputs, x = _input_layers(params, input_shape)
        x = keras.layers.Flatten(name="flatten")(x)
        l2 = float(params.get("l2", 0.0))
        reg = keras.regularizers.L2(l2) if l2 > 0 else None
        outputs = keras.layers.Dense(n_classes, kernel_regularizer=reg, name="logits")(x)
        return keras.Model(inputs, outputs, name="casia_logistic")


BUILDERS: dict[str, type[ModelBuilder]] = {b.family: b for b in (CNNBuilder, LogisticBuilder)}


def get_builder(family: str) -> ModelBuilder:
    try:
        return BUILDERS[family]()
    except KeyError:
        raise TunerError(
            f"unknown model family {family!r}: set 'model:' in the space to one of "
            f"{', '.join(sorted(BUILDERS))}"
        ) from None


def build_model(
    family: str, params: Mapping[str, Any], input_shape: tuple[int, int, int], n_classes: int
) -> keras.Model:
    """Build and compile the model a trial's parameters describe."""
    builder = get_builder(family)
    return builder.compile(builder.build(params, input_shape, n_classes), params)
