"""Custom Keras layers, registered so saved models load again."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="tuner")
class InkThickness(keras.layers.Layer):
    """Random pen thickness: each image is thickened (grey dilation) or thinned (erosion)
    by a random amount up to ``strength``, as different pens and pressures do. Ink is 1.

    Only active in training, like Keras' own random augmentation layers.
    """

    def __init__(self, strength: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.strength = float(strength)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not training or self.strength <= 0:
            return inputs
        thick = ops.max_pool(inputs, pool_size=3, strides=1, padding="same")
        thin = -ops.max_pool(-inputs, pool_size=3, strides=1, padding="same")
        batch = ops.shape(inputs)[0]
        amount = keras.random.uniform(
            (batch, 1, 1, 1), minval=-self.strength, maxval=self.strength, seed=self.seed_generator
        )
        # Positive amounts blend towards the dilated image, negative towards the eroded one.
        towards = ops.where(amount > 0, thick, thin)
        weight = ops.abs(amount)
        return inputs * (1.0 - weight) + towards * weight

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "strength": self.strength, "seed": self.seed}


@keras.saving.register_keras_serializable(package="tuner")
class InkDarkness(keras.layers.Layer):
    """Random ink darkness: each image's ink (1 = black) is scaled by a factor drawn from
    ``[1 - strength, 1]``, as light pencils and worn pens give; paper (0) stays paper."""

    def __init__(self, strength: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.strength = float(strength)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not training or self.strength <= 0:
            return inputs
        batch = ops.shape(inputs)[0]
        factor = keras.random.uniform(
            (batch, 1, 1, 1), minval=1.0 - self.strength, maxval=1.0, seed=self.seed_generator
        )
        return inputs * factor

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "strength": self.strength, "seed": self.seed}


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
