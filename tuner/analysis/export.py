"""``tune export`` and ``tune predict``: the best model as one file, and using it.

An exported ``FILE.keras`` is the Keras model; what it takes to use it (class names in label
order, preprocessing height and width, model family, parameters, study and trial) is stored
twice: inside the ``.keras`` zip as ``tuner.json`` (so the file alone is enough) and beside it
as ``FILE.json`` (for people and other tools). ``tune predict`` reads the embedded copy first.

Exporting also registers the model in MLflow's model registry: a version of the registered
model (default: the study's name) whose source is the best trial's ``runs:/<run>/model``
artifact (model.keras + meta.json).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tuner.analysis.source import download_bundle, load_context
from tuner.errors import DataError, TunerError
from tuner.study.orchestrate import primary_value

if TYPE_CHECKING:
    import keras

    from tuner.models.artifacts import ModelMeta

EMBEDDED_META = "tuner.json"


@dataclass
class ExportResult:
    path: Path
    sidecar: Path
    study: str
    trial: int
    run_id: str
    value: float | None
    meta: dict[str, Any]
    registered_name: str | None = None
    registered_version: str | None = None
    register_problem: str | None = None


@dataclass
class ImagePrediction:
    path: Path
    top: list[tuple[str, float]] = field(default_factory=list)


def sidecar_path(model_file: Path) -> Path:
    return model_file.with_suffix(".json")


def write_exported(model_file: Path, out: Path, meta: dict[str, Any]) -> tuple[Path, Path]:
    """Copy a saved ``.keras`` model to ``out`` with ``meta`` embedded and beside it."""
    if out.suffix != ".keras":
        raise TunerError(f"--out {out} must end in .keras (Keras' model format): pass NAME.keras")
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(meta, ensure_ascii=False, indent=2, default=str)
    partial = out.with_name(out.name + ".partial")
    shutil.copyfile(model_file, partial)
    with zipfile.ZipFile(partial, "a") as archive:
        archive.writestr(EMBEDDED_META, text)
    partial.replace(out)
    sidecar = sidecar_path(out)
    sidecar.write_text(text + "\n", encoding="utf-8")
    return out, sidecar


def register_model(
    tracking_uri: str, name: str, run_id: str, tags: dict[str, str], description: str
) -> str:
    """A new version of registered model ``name`` pointing at the run's ``model/`` artifact."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from tuner.models.artifacts import ARTIFACT_DIR

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        client.create_registered_model(
            name, description="Keras CNNs for handwritten Chinese characters, from tuner studies"
        )
    except MlflowException as exc:
        if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
            raise
    version = client.create_model_version(
        name,
        source=f"runs:/{run_id}/{ARTIFACT_DIR}",
        run_id=run_id,
        tags=tags,
        description=description,
    )
    return str(version.version)


def export_best(
    storage_url: str,
    study_name: str,
    out: Path,
    tracking_uri: str | None = None,
    *,
    register: bool = True,
    model_name: str | None = None,
) -> ExportResult:
    """Write the study's best model to ``out`` (``.keras`` + ``.json``) and register it."""
    from tuner.models.artifacts import MODEL_FILE, load_meta

    ctx = load_context(storage_url, study_name, tracking_uri)
    with tempfile.TemporaryDirectory(prefix="tuner-export-") as tmp:
        folder = download_bundle(ctx.tracking_uri, ctx.run_id, Path(tmp), trial=ctx.best.number)
        meta = asdict(load_meta(folder))
        meta.update(
            study=study_name,
            trial_number=ctx.best.number,
            mlflow_run_id=ctx.run_id,
            objective={"metric": ctx.metric, "value": primary_value(ctx.best)},
        )
        path, sidecar = write_exported(folder / MODEL_FILE, out, meta)
    result = ExportResult(
        path=path,
        sidecar=sidecar,
        study=study_name,
        trial=ctx.best.number,
        run_id=ctx.run_id,
        value=primary_value(ctx.best),
        meta=meta,
    )
    if register:
        name = model_name or study_name
        try:
            result.registered_version = register_model(
                ctx.tracking_uri,
                name,
                ctx.run_id,
                tags={
                    "tuner.study": study_name,
                    "tuner.trial": str(ctx.best.number),
                    f"tuner.{ctx.metric}": str(primary_value(ctx.best)),
                },
                description=(
                    f"best trial {ctx.best.number} of study {study_name} "
                    f"({ctx.metric} {primary_value(ctx.best)})"
                ),
            )
            result.registered_name = name
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            result.register_problem = f"{type(exc).__name__}: {first}"
    return result


# --- using an exported model ------------------------------------------------------------------


def read_exported_meta(model_file: Path) -> ModelMeta:
    """The metadata embedded in an exported ``.keras`` file, else its ``.json`` sidecar."""
    from tuner.models.artifacts import ModelMeta

    data: dict[str, Any] | None = None
    try:
        with zipfile.ZipFile(model_file) as archive:
            if EMBEDDED_META in archive.namelist():
                data = json.loads(archive.read(EMBEDDED_META).decode("utf-8"))
    except zipfile.BadZipFile:
        raise DataError(
            f"{model_file} is not a .keras model file: export one with `tune export`"
        ) from None
    sidecar = sidecar_path(model_file)
    if data is None and sidecar.is_file():
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    if data is None:
        raise DataError(
            f"{model_file} has no class names (no embedded {EMBEDDED_META}, no {sidecar.name} "
            "beside it): export it with `tune export`"
        )
    known = set(ModelMeta.__dataclass_fields__)
    return ModelMeta(**{k: v for k, v in data.items() if k in known})


def load_exported(path: Path) -> tuple[keras.Model, ModelMeta]:
    """An exported ``.keras`` file, or a trial's ``model/`` folder (model.keras + meta.json)."""
    import keras

    import tuner.models.layers  # noqa: F401  (registers custom layers for deserialisation)
    from tuner.models.artifacts import META_FILE, load_bundle

    path = Path(path).expanduser()
    if path.is_dir() and (path / META_FILE).is_file():
        return load_bundle(path)
    if not path.is_file():
        raise DataError(f"model file {path} does not exist: export one with `tune export STUDY`")
    meta = read_exported_meta(path)
    return keras.models.load_model(path, compile=False), meta


def expand_images(paths: list[Path]) -> list[Path]:
    """Files as given; folders as the images inside them, in natural order."""
    from tuner.data.layout import IMAGE_SUFFIXES, natural_key

    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = [
                p
                for p in path.iterdir()
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
            ]
            found.extend(sorted(inside, key=lambda p: natural_key(p.name)))
        else:
            found.append(path)
    return found


def read_images(paths: list[Path], height: int, width: int) -> np.ndarray:
    """The images as the model saw them in training: (N, height, width) uint8 via prepare()."""
    from PIL import Image

    from tuner.data.preprocess import Preprocessing, prepare

    pp = Preprocessing(height=height, width=width)
    images = np.empty((len(paths), height, width), dtype=np.uint8)
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as img:
                images[i] = prepare(img, pp)
        except FileNotFoundError:
            raise DataError(f"image {path} does not exist: check the path") from None
        except Exception as exc:
            raise DataError(
                f"cannot read image {path} ({type(exc).__name__}): give PNG, JPEG or other image "
                "files"
            ) from None
    return images


def predict_files(model_path: Path, images: list[Path], k: int = 5) -> list[ImagePrediction]:
    """The top-``k`` characters with probabilities for each image."""
    from tuner.analysis.evaluate import predict_probs, top_k
    from tuner.models.artifacts import preprocessing_of

    files = expand_images([Path(p) for p in images])
    if not files:
        raise DataError("no images to predict: give image files or folders holding them")
    model, meta = load_exported(Path(model_path))
    pp = preprocessing_of(meta)
    probs = predict_probs(model, read_images(files, pp.height, pp.width))
    best = top_k(probs, k)
    return [
        ImagePrediction(path, [(meta.classes[c], float(probs[i, c])) for c in best[i].tolist()])
        for i, path in enumerate(files)
    ]
