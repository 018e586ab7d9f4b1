"""How realistic is the synthetic handwriting? Train on synthetic, score on real CASIA.

Trains the course's CNN only on synthetic images of the characters in the real sample that the
stroke set can draw, then reports accuracy on every real image of those characters (the
sample's Train and Test folders separately and together). No real image is used for training
or model selection; chance is 1 / number of classes.

    .venv/bin/python bench/synth_realism.py [--writers 1200] [--epochs 6] [--seed 0] [--real DIR]

The real sample lives outside the project (../shared/data/casia-hwdb-sample, CASIA-HWDB 1.1,
non-commercial research use); this script only reads it.

About three quarters of the sample's Train images are RGBA with a transparent border (about
12% of the size on each side) around the tightly cropped scan. ``prepare`` turns the border
into paper, so in those images the character fills less of the 80x60 frame than in the
synthetic (and the other real) images. The headline figures use ``prepare`` as the tool does;
extra rows show those images separately, and scored after cropping the border away.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
DEFAULT_REAL = REPO.parent / "shared" / "data" / "casia-hwdb-sample"


@dataclass
class RealSplit:
    images: np.ndarray  # (N, H, W) uint8, prepared as the tool prepares them
    border_cropped: np.ndarray  # the same, with transparent borders cropped away first
    labels: np.ndarray
    has_border: np.ndarray  # (N,) bool: RGBA with a transparent border


def load_real(root: Path, split: str, classes: list[str]) -> RealSplit:
    from tuner.data.preprocess import Preprocessing, prepare

    pp = Preprocessing()
    images, cropped, labels, bordered = [], [], [], []
    for label, char in enumerate(classes):
        for path in sorted((root / split / char).glob("*.png")):
            with Image.open(path) as img:
                img.load()
                box = img.getchannel("A").getbbox() if img.mode == "RGBA" else None
                has_border = box is not None and box != (0, 0, img.width, img.height)
                images.append(prepare(img, pp))
                cropped.append(prepare(img.crop(box), pp) if has_border else images[-1])
            labels.append(label)
            bordered.append(has_border)
    return RealSplit(
        np.stack(images), np.stack(cropped), np.array(labels), np.array(bordered, dtype=bool)
    )


def build_model(n_classes: int, height: int, width: int):  # type: ignore[no-untyped-def]
    """The course's CNN."""
    import keras
    from keras import layers

    model = keras.Sequential(
        [
            keras.Input((height, width, 1)),
            # Dark ink on light paper in the files; the network wants ink as high values.
            layers.Rescaling(-1.0 / 255.0, offset=1.0),
            layers.Conv2D(16, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(4),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dense(n_classes),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _error_grid(
    images: np.ndarray,
    labels: np.ndarray,
    pred: np.ndarray,
    wrong: np.ndarray,
    classes: list[str],
    out: Path,
) -> None:
    """Rows by true class: up to 12 misclassified images each (predicted class in the file
    name order of the legend printed alongside)."""
    h, w = images.shape[1:]
    per_row = 12
    grid = np.full((len(classes) * (h + 4), per_row * (w + 4)), 128, np.uint8)
    legend = []
    for label in range(len(classes)):
        mine = wrong[labels[wrong] == label][:per_row]
        legend.append(classes[label] + ": " + " ".join(classes[p] for p in pred[mine]))
        for k, i in enumerate(mine.tolist()):
            y, x = label * (h + 4), k * (w + 4)
            grid[y : y + h, x : x + w] = images[i]
    Image.fromarray(grid).save(out)
    out.with_suffix(".txt").write_text("\n".join(legend) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", type=Path, default=DEFAULT_REAL, help="real CASIA sample root")
    # Many writers and few epochs: past about 6 epochs the model starts to learn the synthetic
    # writers' quirks and real accuracy drops, so the same compute is better spent on more
    # writers (1200 x 6 beat 600 x 12 and 800 x 15 in our runs).
    parser.add_argument("--writers", type=int, default=1200, help="synthetic writers per character")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variety", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--per-class", action="store_true", help="also print per-class accuracy")
    parser.add_argument(
        "--errors",
        type=Path,
        default=None,
        help="write a PNG grid of misclassified real Train images (borders cropped) here",
    )
    args = parser.parse_args(argv)
    command = shlex.join([".venv/bin/python", "bench/synth_realism.py", *sys.argv[1:]])

    if not (args.real / "Train").is_dir():
        print(f"error: no real sample at {args.real} (expected Train/<char>/<n>.png)")
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")

    from tuner.data.preprocess import Preprocessing, prepare
    from tuner.synth.generate import synth_images
    from tuner.synth.strokes import split_available

    real_classes = sorted(p.name for p in (args.real / "Train").iterdir() if p.is_dir())
    classes, missing = split_available(real_classes)
    pp = Preprocessing()
    print(f"{len(classes)} classes (no stroke data: {' '.join(missing) or 'none'})")

    t0 = time.perf_counter()
    images, labels, writers = synth_images(
        classes, list(range(args.writers)), seed=args.seed, variety=args.variety
    )
    x_syn = np.stack([prepare(img, pp) for img in images])[..., None]
    gen_s = time.perf_counter() - t0
    print(f"synthetic: {len(x_syn)} images in {gen_s:.1f} s")
    real = {split: load_real(args.real, split, classes) for split in ("Train", "Test")}

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    keras.utils.set_random_seed(args.seed)
    # A tenth of the synthetic writers held out, to see how well the model learns the
    # synthetic task itself; the real images play no part in training or model selection.
    held = writers % 10 == 9
    model = build_model(len(classes), pp.height, pp.width)
    t1 = time.perf_counter()
    model.fit(
        x_syn[~held],
        labels[~held],
        validation_data=(x_syn[held], labels[held]),
        epochs=args.epochs,
        batch_size=args.batch,
        shuffle=True,
        verbose=2,
    )
    train_s = time.perf_counter() - t1

    def predict(x: np.ndarray) -> np.ndarray:
        return np.argmax(model.predict(x[..., None], batch_size=256, verbose=0), axis=1)

    rows: list[tuple[str, int, float]] = []
    syn_pred = predict(x_syn[held][..., 0])
    rows.append(
        ("synthetic, held-out writers", int(held.sum()), float(np.mean(syn_pred == labels[held])))
    )
    correct = {}
    for split, data in real.items():
        correct[split] = predict(data.images) == data.labels
        correct[split + " cropped"] = predict(data.border_cropped) == data.labels
    train, test = real["Train"], real["Test"]
    all_correct = np.concatenate([correct["Train"], correct["Test"]])
    rows += [
        ("**real Train** (CASIA sample)", len(train.labels), float(correct["Train"].mean())),
        (
            "**real Test** (CASIA sample, other writers)",
            len(test.labels),
            float(correct["Test"].mean()),
        ),
        ("**real Train + Test**", len(all_correct), float(all_correct.mean())),
    ]
    for split, data in real.items():
        if data.has_border.any():
            part = data.has_border
            rows.append(
                (
                    f"real {split}, images with a transparent border",
                    int(part.sum()),
                    float(correct[split][part].mean()),
                )
            )
            rows.append(
                (
                    f"real {split}, images without",
                    int((~part).sum()),
                    float(correct[split][~part].mean()),
                )
            )
            rows.append(
                (
                    f"real {split}, borders cropped away first",
                    len(part),
                    float(correct[split + " cropped"].mean()),
                )
            )
    all_cropped = np.concatenate([correct["Train cropped"], correct["Test cropped"]])
    rows.append(
        (
            "real Train + Test, borders cropped away first",
            len(all_cropped),
            float(all_cropped.mean()),
        )
    )

    print()
    print(f"Command: `{command}`")
    print()
    print("| evaluated on | images | accuracy |")
    print("|---|---:|---:|")
    for name, n, acc in rows:
        print(f"| {name} | {n} | {acc:.1%} |")
    print(f"| chance | | {1 / len(classes):.1%} |")
    print()
    print(
        f"{len(classes)} classes, {args.writers} synthetic writers per class "
        f"({len(x_syn)} images, a tenth held out), {args.epochs} epochs, seed {args.seed}; "
        f"generation {gen_s:.0f} s, training {train_s:.0f} s"
    )
    if args.errors is not None:
        train = real["Train"]
        missed = np.flatnonzero(~correct["Train cropped"])
        pred = predict(train.border_cropped)
        _error_grid(train.border_cropped, train.labels, pred, missed, classes, args.errors)
        print(f"misclassified real Train images: {args.errors}")
    if args.per_class:
        print()
        print("| class | real Train | real Test | most often taken for |")
        print("|---|---:|---:|---|")
        preds = {s: predict(d.images) for s, d in real.items()}
        for label, char in enumerate(classes):
            cells = []
            wrong: list[int] = []
            for split, data in real.items():
                mine = data.labels == label
                cells.append(f"{np.mean(preds[split][mine] == label):.0%}")
                wrong += preds[split][mine & (preds[split] != label)].tolist()
            other = classes[int(np.argmax(np.bincount(wrong)))] if wrong else "-"
            print(f"| {char} | {cells[0]} | {cells[1]} | {other} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
