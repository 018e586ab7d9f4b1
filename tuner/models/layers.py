"""Custom Keras layers, registered so saved models load again."""

from __future__ import annotations

from typing import Any

import keras
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
