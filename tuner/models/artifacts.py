"""A trained model with what it takes to use it: class names and preprocessing.

Every completed trial logs this bundle to its MLflow run under ``model/``, so evaluating or
exporting the best trial needs no retraining.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

    from tuner.data.preprocess import Preprocessing

MODEL_FILE = "model.keras"
META_FILE = "meta.json"
ARTIFACT_DIR = "model"


@dataclass
class ModelMeta:
    classes: list[str]
    preprocessing: dict[str, Any]
    family: str
    params: dict[str, Any] = field(default_factory=dict)
    space: str = ""
    study: str = ""
    trial_number: int | None = None


def save_bundle(model: keras.Model, folder: Path, meta: ModelMeta) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / MODEL_FILE)
    (folder / META_FILE).write_text(
        json.dumps(asdict(meta), ensure_ascii=False, indent=2, default=str), encoding="utf-8"
    )
    return folder


def load_meta(folder: Path) -> ModelMeta:
    return ModelMeta(**json.loads((folder / META_FILE).read_text(encoding="utf-8")))


def load_bundle(folder: Path) -> tuple[keras.Model, ModelMeta]:
    import keras

    import tuner.models.layers  # noqa: F401  (registers custom layers for deserialisation)

    return keras.models.load_model(folder / MODEL_FILE, compile=False), load_meta(folder)


def preprocessing_of(meta: ModelMeta) -> Preprocessing:
    from tuner.data.preprocess import Preprocessing

    return Preprocessing(**meta.preprocessing)
