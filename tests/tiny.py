"""Tiny, learnable datasets and spaces for study tests (a few classes, 16x12 images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tuner.data.layout import Dataset, Split
from tuner.data.preprocess import Preprocessing

H, W = 16, 12
CLASSES = ["大", "天", "夫", "人"]


def tiny_images(
    n_per_class: int, seed: int, n_classes: int = len(CLASSES)
) -> tuple[np.ndarray, np.ndarray]:
    """Class k is a dark block in its own place on light paper, with noise and small shifts."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for k in range(n_classes):
        for _ in range(n_per_class):
            img = rng.integers(200, 256, size=(H, W)).astype(np.uint8)
            top = 2 + (k // 2) * 7 + rng.integers(-1, 2)
            left = 1 + (k % 2) * 6 + rng.integers(-1, 2)
            img[top : top + 5, left : left + 4] = rng.integers(0, 60)
            images.append(img)
            labels.append(k)
    return np.stack(images), np.asarray(labels, dtype=np.int32)


def tiny_dataset(n_per_class: int = 40, seed: int = 0) -> Dataset:
    x, y = tiny_images(n_per_class, seed)
    xv, yv = tiny_images(max(n_per_class // 4, 4), seed + 1)
    return Dataset(
        root=Path("memory"),
        classes=list(CLASSES),
        train=Split(x, y, None, [f"Train/{i}.png" for i in range(len(y))]),
        val=Split(xv, yv, None, [f"Train/v{i}.png" for i in range(len(yv))]),
        test=None,
        preprocessing=Preprocessing(height=H, width=W),
    )


def write_tiny_layout(root: Path, n_per_class: int = 30, test_per_class: int = 6) -> Path:
    for split, n, seed in (("Train", n_per_class, 0), ("Test", test_per_class, 1)):
        x, y = tiny_images(n, seed)
        for i, (img, label) in enumerate(zip(x, y, strict=True)):
            folder = root / split / CLASSES[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(folder / f"{i + 1}.png")
    return root


TINY_SPACE = """\
name: {name}
description: tiny CNN for tests
dataset: default
model: cnn
objective: {{metric: val_accuracy, direction: maximize}}
training: {{max_epochs: {epochs}, patience: {patience}, batch_size: 16}}
budget: {{n_trials: 3}}
fixed: {{dense_units: 16, batch_norm: false, kernel_size: 3, pooling: max, optimizer: adam}}
params:
  n_blocks: {{type: int, low: 1, high: 2}}
  filters_1: {{type: categorical, choices: [4, 8]}}
  filters_2: {{type: categorical, choices: [4, 8], when: "n_blocks >= 2"}}
  pool_size_1: {{type: categorical, choices: [2, 4]}}
  pool_size_2: {{type: categorical, choices: [2, 4], when: "n_blocks >= 2"}}
  learning_rate: {{type: float, low: 1.0e-7, high: 3.0e-2, log: true}}
"""


def write_tiny_space(
    folder: Path, name: str = "tiny", epochs: int = 2, extra: str = "", patience: int = 5
) -> Path:
    path = folder / f"{name}.yaml"
    text = TINY_SPACE.format(name=name, epochs=epochs, patience=patience)
    path.write_text(text + extra, encoding="utf-8")
    return path


_TEMPLATE: dict[str, Path] = {}


def fresh_tracking_uri(folder: Path) -> str:
    """A new MLflow SQLite store in ``folder/mlruns``, copied from one migrated per test
    session (creating the schema costs seconds; copying costs nothing)."""
    import shutil
    import tempfile

    from mlflow.tracking import MlflowClient

    if "db" not in _TEMPLATE:
        # A plain client (rollback journal, not WAL), so the one file holds everything.
        template = Path(tempfile.mkdtemp(prefix="tuner-mlflow-template-")) / "mlflow.db"
        MlflowClient(f"sqlite:///{template}").search_experiments()
        _TEMPLATE["db"] = template
    target = folder / "mlruns" / "mlflow.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_TEMPLATE["db"], target)
    return f"sqlite:///{target}"
