"""Augmentation cost (issue 8): training speed with each on-the-fly augmentation against none.

The course CNN (as built for a trial, ``tuner.models.builder.build_model``) trains on the same
2,400 learnable synthetic 80x60 images, batch 64, once per augmentation setting. All models are
built and warmed up first (tracing, one pass over the data each); then the models take turns
batch by batch (``train_on_batch``, the same batch for every model, the order rotated each
step), so drift in the machine's load hits all settings alike within a fraction of a second.
Each setting's images/s come from its median step time; the mean over all steps is printed
beside it. The old way of doing shift, rotation and zoom (Keras' RandomTranslation,
RandomRotation and RandomZoom, three resampling passes) runs beside the combined
``RandomAffine`` layer now used, and Keras' RandomElasticTransform beside ours.

Target: every augmentation on at once at most 15% slower than none (>= 0.85x its images/s).

    .venv/bin/python bench/bench_augment.py [--steps 150]
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench_study import COURSE_CNN, SEED, synthetic_dataset  # bench/bench_study.py
from machine import cpu_model, load_average, nproc  # bench/machine.py

AFFINE = {"aug_shift": 0.1, "aug_rotate": 0.05, "aug_zoom": 0.1}
SETTINGS: dict[str, dict[str, Any]] = {
    "none": {},
    "shift + rotation + zoom (one RandomAffine layer)": AFFINE,
    "shift + rotation + zoom (three Keras layers, before)": {**AFFINE, "three_layers": True},
    "ink thickness": {"aug_ink": 0.5},
    "elastic (ElasticDistortion)": {"aug_elastic": 0.3},
    "elastic (Keras RandomElasticTransform, before)": {"aug_elastic": 0.3, "keras_elastic": True},
    "contrast + darkness": {"aug_contrast": 0.3, "aug_darkness": 0.3},
    "all of them": {
        **AFFINE,
        **{"aug_ink": 0.5, "aug_elastic": 0.3, "aug_contrast": 0.3, "aug_darkness": 0.3},
    },
}


def build(setting: dict[str, Any], n_classes: int) -> Any:
    """The trial's model; for the "before" settings, the same model with Keras' own layers
    (three resampling passes for shift/rotation/zoom, or RandomElasticTransform) in place of
    ours, inserted right after the ink rescaling."""
    import keras

    from tuner.models.builder import ModelBuilder, build_model

    params = {**COURSE_CNN, **setting, "aug_seed": SEED}
    if not (setting.get("three_layers") or setting.get("keras_elastic")):
        return build_model("cnn", params, (80, 60, 1), n_classes)
    model = build_model("cnn", COURSE_CNN, (80, 60, 1), n_classes)
    inputs = keras.Input((80, 60, 1))
    x = model.get_layer("ink")(inputs)
    kw: dict[str, Any] = {"fill_mode": "constant", "fill_value": 0.0, "seed": SEED}
    if setting.get("three_layers"):
        x = keras.layers.RandomTranslation(0.1, 0.1, **kw)(x)
        x = keras.layers.RandomRotation(0.05, **kw)(x)
        x = keras.layers.RandomZoom((-0.1, 0.1), **kw)(x)
    else:
        x = keras.layers.RandomElasticTransform(factor=1.0, scale=0.3, value_range=(0.0, 1.0),
                                                **kw)(x)  # fmt: skip
    for layer in model.layers[2:]:
        x = layer(x)
    return ModelBuilder.compile(keras.Model(inputs, x), params)


def step_seconds(model: Any, images: Any, labels: Any) -> float:
    started = time.perf_counter()
    model.train_on_batch(images, labels)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=150, help="timed steps per setting")
    args = parser.parse_args()
    from tuner.models.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras
    import tensorflow as tf

    data = synthetic_dataset(2400, 64, 55, 80, 60, seed=SEED)
    images, labels = data.train.images[..., None], data.train.labels
    batches = [(images[i : i + 64], labels[i : i + 64]) for i in range(0, 2400 - 63, 64)]
    names = list(SETTINGS)
    print(f"{datetime.datetime.now():%Y-%m-%d %H:%M}  {cpu_model()}, {nproc()} cores, "
          f"TensorFlow {tf.__version__}, load {load_average()}", flush=True)  # fmt: skip
    keras.utils.set_random_seed(SEED)
    models = {name: build(SETTINGS[name], len(data.classes)) for name in names}
    for name in names:  # tracing and warm-up
        for x, y in batches:
            models[name].train_on_batch(x, y)
    steps: dict[str, list[float]] = {n: [] for n in names}
    for k in range(args.steps):
        x, y = batches[k % len(batches)]
        for name in names[k % len(names) :] + names[: k % len(names)]:
            steps[name].append(step_seconds(models[name], x, y))
    print(f"load after: {load_average()}\n")
    rates = {n: 64 / statistics.median(t) for n, t in steps.items()}
    means = {n: 64 * len(t) / sum(t) for n, t in steps.items()}
    print("| augmentation | images/s (median step) | vs none | images/s (mean) | vs none |")
    print("|---|---:|---:|---:|---:|")
    for name in names:
        print(f"| {name} | {rates[name]:,.0f} | {rates[name] / rates['none']:.2f}x | "
              f"{means[name]:,.0f} | {means[name] / means['none']:.2f}x |")  # fmt: skip
    ratio = rates["all of them"] / rates["none"]
    ok = ratio >= 0.85
    print(f"\n{'PASS' if ok else 'FAIL'}: all augmentations at {ratio:.2f}x the speed of none "
          "(target >= 0.85x)")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
