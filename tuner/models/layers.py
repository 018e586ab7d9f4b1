"""Custom Keras layers, registered so saved models load again."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops


class _SeededAugmentation(keras.layers.Layer):
    """A training-only augmentation of one ``strength``, deterministic for its ``seed``."""

    def __init__(self, strength: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.strength = float(strength)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "strength": self.strength, "seed": self.seed}


@keras.saving.register_keras_serializable(package="tuner")
class InkThickness(_SeededAugmentation):
    """Random pen thickness: each image is thickened (grey dilation) or thinned (erosion)
    by a random amount up to ``strength``, as different pens and pressures do. Ink is 1.

    Only active in training, like Keras' own random augmentation layers.
    """

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not training or self.strength <= 0:
            return inputs
        thick, thin = _dilate_erode_3x3(inputs)
        batch = ops.shape(inputs)[0]
        amount = keras.random.uniform(
            (batch, 1, 1, 1), minval=-self.strength, maxval=self.strength, seed=self.seed_generator
        )
        # Positive amounts blend towards the dilated image, negative towards the eroded one.
        towards = ops.where(amount > 0, thick, thin)
        weight = ops.abs(amount)
        return inputs * (1.0 - weight) + towards * weight


def _dilate_erode_3x3(ink: Any) -> tuple[Any, Any]:
    """3x3 grey dilation and erosion of (N, H, W, C) ink in [0, 1], as separable maxima and
    minima of shifted slices: several times faster on CPU than two stride-1 max pools. The
    border is padded with paper (0) for dilation and with full ink (1) for erosion, which
    leaves both results as if the border were ignored."""
    padded = ops.pad(ink, [[0, 0], [1, 1], [1, 1], [0, 0]], constant_values=0.0)
    rows = ops.maximum(ops.maximum(padded[:, :, :-2], padded[:, :, 1:-1]), padded[:, :, 2:])
    thick = ops.maximum(ops.maximum(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:])
    padded = ops.pad(ink, [[0, 0], [1, 1], [1, 1], [0, 0]], constant_values=1.0)
    rows = ops.minimum(ops.minimum(padded[:, :, :-2], padded[:, :, 1:-1]), padded[:, :, 2:])
    thin = ops.minimum(ops.minimum(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:])
    return thick, thin


@keras.saving.register_keras_serializable(package="tuner")
class InkDarkness(_SeededAugmentation):
    """Random ink darkness: each image's ink (1 = black) is scaled by a factor drawn from
    ``[1 - strength, 1]``, as light pencils and worn pens give; paper (0) stays paper."""

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not training or self.strength <= 0:
            return inputs
        batch = ops.shape(inputs)[0]
        factor = keras.random.uniform(
            (batch, 1, 1, 1), minval=1.0 - self.strength, maxval=1.0, seed=self.seed_generator
        )
        return inputs * factor


@keras.saving.register_keras_serializable(package="tuner")
class RandomAffine(keras.layers.Layer):
    """Random shift, rotation and zoom in one resampling pass (training only).

    Keras' RandomTranslation, RandomRotation and RandomZoom each resample the whole batch;
    composing the three into one matrix per image costs one pass instead of three and blurs the
    strokes once. ``shift`` is a fraction of the image size, ``rotate`` a fraction of a full
    turn (as in RandomRotation), ``zoom`` a relative change of scale in both directions. Areas
    uncovered by the transform are filled with paper (0: ink is 1 here).
    """

    def __init__(
        self,
        shift: float = 0.0,
        rotate: float = 0.0,
        zoom: float = 0.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.shift = float(shift)
        self.rotate = float(rotate)
        self.zoom = float(zoom)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not training or (self.shift <= 0 and self.rotate <= 0 and self.zoom <= 0):
            return inputs
        shape = ops.shape(inputs)
        batch = shape[0]
        height, width = ops.cast(shape[1], "float32"), ops.cast(shape[2], "float32")

        def uniform(bound: float) -> Any:
            return keras.random.uniform(
                (batch,), minval=-bound, maxval=bound, seed=self.seed_generator
            )

        angle = uniform(self.rotate) * (2.0 * np.pi)
        scale = 1.0 + uniform(self.zoom)
        shift_x, shift_y = uniform(self.shift) * width, uniform(self.shift) * height
        # Output pixel (x, y) samples input (a0 x + a1 y + a2, b0 x + b1 y + b2): rotate and
        # scale about the centre, then shift.
        cx, cy = (width - 1.0) / 2.0, (height - 1.0) / 2.0
        a0, a1 = scale * ops.cos(angle), -scale * ops.sin(angle)
        b0, b1 = scale * ops.sin(angle), scale * ops.cos(angle)
        a2 = cx - a0 * cx - a1 * cy - shift_x
        b2 = cy - b0 * cx - b1 * cy - shift_y
        zeros = ops.zeros_like(a0)
        transform = ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
        return ops.image.affine_transform(
            inputs, transform, interpolation="bilinear", fill_mode="constant", fill_value=0.0
        )

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "shift": self.shift,
            "rotate": self.rotate,
            "zoom": self.zoom,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="tuner")
class ElasticDistortion(_SeededAugmentation):
    """Random smooth warps, as a hand wobbles (training only).

    Each image gets a random displacement at a coarse grid of control points (4 x 3), of up to
    ``strength`` x 12% of the image's height (vertically) and width (horizontally), scaled by a
    random factor in [0, 1] per image; the grid is interpolated to every pixel and the image
    resampled bilinearly, with paper (0) outside. One gather per corner on the flattened batch:
    several times faster on CPU than Keras' RandomElasticTransform, whose Gaussian smoothing of
    a full-resolution noise field dominated an augmented epoch.
    """

    GRID = (4, 3)
    MAX_SHIFT = 0.12

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not training or self.strength <= 0:
            return inputs
        _, height, width, channels = inputs.shape
        batch = ops.shape(inputs)[0]
        size = ops.convert_to_tensor([float(height), float(width)])
        amount = keras.random.uniform((batch, 1, 1, 1), 0.0, 1.0, seed=self.seed_generator)
        coarse = keras.random.uniform(
            (batch, *self.GRID, 2), -1.0, 1.0, seed=self.seed_generator
        ) * (amount * self.strength * self.MAX_SHIFT * size)
        field = ops.image.resize(coarse, (height, width), interpolation="bilinear")
        rows = ops.arange(height, dtype="float32")[None, :, None]
        cols = ops.arange(width, dtype="float32")[None, None, :]
        # Source positions in the image padded by one pixel of paper on top/left and two on
        # bottom/right, clipped into that border so every corner index stays inside.
        y = ops.clip(rows + field[..., 0], -1.0, float(height)) + 1.0
        x = ops.clip(cols + field[..., 1], -1.0, float(width)) + 1.0
        y0, x0 = ops.floor(y), ops.floor(x)
        wy, wx = (y - y0)[..., None], (x - x0)[..., None]
        pw = width + 3
        flat = ops.reshape(
            ops.pad(inputs, [[0, 0], [1, 2], [1, 2], [0, 0]], constant_values=0.0),
            (-1, channels),
        )
        start = ops.arange(batch, dtype="int32")[:, None, None] * ((height + 3) * pw)
        i00 = start + ops.cast(y0, "int32") * pw + ops.cast(x0, "int32")
        v00, v01 = ops.take(flat, i00, axis=0), ops.take(flat, i00 + 1, axis=0)
        v10, v11 = ops.take(flat, i00 + pw, axis=0), ops.take(flat, i00 + pw + 1, axis=0)
        top = v00 + (v01 - v00) * wx
        bottom = v10 + (v11 - v10) * wx
        return top + (bottom - top) * wy
