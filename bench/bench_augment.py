"""Augmentation cost (issue 8): training speed with each on-the-fly augmentation against none.

The course CNN (as built for a trial, ``tuner.models.builder.build_model``) trains on the same
2,400 learnable synthetic 80x60 images, batch 64, once per augmentation setting. All models are
built first and trained one epoch each (tracing and warm-up, not counted); then ``--rounds``
rounds train every model one more epoch, in rotated order, so drift in the machine's load hits
all settings alike within seconds. On this shared 2-core machine an epoch runs at one of two
speeds (about 2x apart: whether the process has both cores or one), so the verdict uses each
setting's fastest epoch (its cost without interference); the median is printed beside it.
The old way of doing shift, rotation and zoom (Keras' RandomTranslation, RandomRotation and
RandomZoom, three resampling passes) runs beside the combined ``RandomAffine`` layer now used.

Target: every augmentation on at once at most 15% slower than none (>= 0.85x its images/s).

    .venv/bin/python bench/bench_augment.py [--rounds 5]
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
    "elastic": {"aug_elastic": 0.3},
    "contrast + darkness": {"aug_contrast": 0.3, "aug_darkness": 0.3},
    "all of them": {
        **AFFINE,
        **{"aug_ink": 0.5, "aug_elastic": 0.3, "aug_contrast": 0.3, "aug_darkness": 0.3},
    },
}


def build(setting: dict[str, Any], n_classes: int) -> Any:
    import keras

    from tuner.models.builder import build_model

    params = {**COURSE_CNN, **setting, "aug_seed": SEED}
    if not setting.get("three_layers"):
        return build_model("cnn", params, (80, 60, 1), n_classes)
    # Before: the same model with three Keras resampling layers in place of RandomAffine.
    model = build_model("cnn", {k: v for k, v in params.items() if k not in AFFINE}, (80, 60, 1),
                        n_classes)  # fmt: skip
    inputs = keras.Input((80, 60, 1))
    x = model.get_layer("ink")(inputs)
    kw: dict[str, Any] = {"fill_mode": "constant", "fill_value": 0.0, "seed": SEED}
    x = keras.layers.RandomTranslation(0.1, 0.1, **kw)(x)
    x = keras.layers.RandomRotation(0.05, **kw)(x)
    x = keras.layers.RandomZoom((-0.1, 0.1), **kw)(x)
    for layer in model.layers[2:]:
        x = layer(x)
    return build_compiled(keras.Model(inputs, x), params)


def build_compiled(model: Any, params: dict[str, Any]) -> Any:
    from tuner.models.builder import ModelBuilder

    return ModelBuilder.compile(model, params)


def epoch_seconds(model: Any, data: Any) -> float:
    started = time.perf_counter()
    model.fit(data.train.images[..., None], data.train.labels, batch_size=64, epochs=1,
              verbose=0)  # fmt: skip
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from tuner.models.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras
    import tensorflow as tf

    data = synthetic_dataset(2400, 64, 55, 80, 60, seed=SEED)
    names = list(SETTINGS)
    print(f"{datetime.datetime.now():%Y-%m-%d %H:%M}  {cpu_model()}, {nproc()} cores, "
          f"TensorFlow {tf.__version__}, load {load_average()}", flush=True)  # fmt: skip
    keras.utils.set_random_seed(SEED)
    models = {name: build(SETTINGS[name], len(data.classes)) for name in names}
    for name in names:  # tracing and warm-up
        epoch_seconds(models[name], data)
    rates: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            rates[name].append(len(data.train.labels) / epoch_seconds(models[name], data))
        print(f"  round {r + 1}: " + ", ".join(f"{rates[n][-1]:.0f}" for n in names), flush=True)
    base, base_median = max(rates["none"]), statistics.median(rates["none"])
    print(f"\nload after: {load_average()}\n")
    print("| augmentation | images/s, fastest epoch | vs none | median epoch | vs none |")
    print("|---|---:|---:|---:|---:|")
    for name in names:
        fast, median = max(rates[name]), statistics.median(rates[name])
        print(f"| {name} | {fast:,.0f} | {fast / base:.2f}x | {median:,.0f} | "
              f"{median / base_median:.2f}x |")  # fmt: skip
    ratio = max(rates["all of them"]) / base
    ok = ratio >= 0.85
    print(f"\n{'PASS' if ok else 'FAIL'}: all augmentations at {ratio:.2f}x the speed of none "
          "(target >= 0.85x)")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
