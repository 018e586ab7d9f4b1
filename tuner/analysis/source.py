"""A finished study as the analysis commands see it: its best trial, space, MLflow runs, data.

Nothing here retrains: the best trial's model is the bundle it logged to its MLflow run
(``model/model.keras`` + ``model/meta.json``, see :mod:`tuner.models.artifacts`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuner.data.layout import class_differences
from tuner.errors import DataError, StudyError
from tuner.study.orchestrate import (
    ATTR_PARENT_RUN,
    ATTR_SPACE,
    ATTR_TRACKING_URI,
    best_trial,
)

if TYPE_CHECKING:
    import keras
    import optuna

    from tuner.models.artifacts import ModelMeta
    from tuner.space.spec import SearchSpace

# Set by ``tune run`` on newer studies: the dataset the study trained on.
ATTR_DATA_ROOT = "data_root"
DEFAULT_OUT = Path("tune-out")


@dataclass
class StudyContext:
    name: str
    storage_url: str
    tracking_uri: str
    study: optuna.Study
    best: optuna.trial.FrozenTrial
    space: SearchSpace | None
    run_id: str
    parent_run_id: str | None

    @property
    def metric(self) -> str:
        return str(self.study.user_attrs.get("objective_metric", "value"))

    def default_out(self, what: str) -> Path:
        return DEFAULT_OUT / self.name / what


def study_tracking_uri(study: optuna.Study, explicit: str | None) -> str:
    """``--tracking-uri``, else MLFLOW_TRACKING_URI, else the URI the study recorded (unless its
    password was redacted), else SQLite under ./mlruns."""
    from tuner.tracking.mlflow_tracker import resolve_tracking_uri

    if explicit or os.environ.get("MLFLOW_TRACKING_URI"):
        return resolve_tracking_uri(explicit)
    recorded = study.user_attrs.get(ATTR_TRACKING_URI)
    if isinstance(recorded, str) and recorded and "***" not in recorded:
        return recorded
    return resolve_tracking_uri(None)


def stored_space(study: optuna.Study) -> SearchSpace | None:
    from tuner.space import parse_space

    data = study.user_attrs.get(ATTR_SPACE)
    if not isinstance(data, dict):
        return None
    try:
        return parse_space(data)
    except Exception:  # a space written by an older version: the analysis goes on without it
        return None


def load_context(
    storage_url: str,
    study_name: str,
    tracking_uri: str | None = None,
    *,
    need_best: bool = True,
) -> StudyContext:
    """The study and its best completed trial, with the MLflow run holding its model."""
    from tuner.study.results import load_existing

    study = load_existing(storage_url, study_name)
    best = best_trial(study)
    if best is None and need_best:
        raise StudyError(
            f"study {study_name!r} has no completed trial yet: run `tune run` to add some"
        )
    run_id = str(best.user_attrs.get("mlflow_run_id", "")) if best is not None else ""
    if best is not None and not run_id and need_best:
        raise StudyError(
            f"trial {best.number} of study {study_name!r} has no MLflow run id: it was run "
            "without tracking; run the study again with `tune run`"
        )
    parent = study.user_attrs.get(ATTR_PARENT_RUN)
    return StudyContext(
        name=study_name,
        storage_url=storage_url,
        tracking_uri=study_tracking_uri(study, tracking_uri),
        study=study,
        best=best,  # type: ignore[arg-type]  # None only when need_best is False
        space=stored_space(study),
        run_id=run_id,
        parent_run_id=str(parent) if parent else None,
    )


def download_bundle(
    tracking_uri: str, run_id: str, dest: Path, *, trial: int | None = None
) -> Path:
    """The ``model/`` folder of an MLflow run, downloaded into ``dest``."""
    from mlflow.tracking import MlflowClient

    from tuner.models.artifacts import ARTIFACT_DIR, MODEL_FILE

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    client = MlflowClient(tracking_uri)
    which = f"trial {trial}'s MLflow run {run_id}" if trial is not None else f"MLflow run {run_id}"
    try:
        client.get_run(run_id)
    except Exception:
        raise StudyError(
            f"{which} is not in the tracking store {tracking_uri}: pass the --tracking-uri the "
            "study was run with"
        ) from None
    dest.mkdir(parents=True, exist_ok=True)
    try:
        folder = Path(client.download_artifacts(run_id, ARTIFACT_DIR, str(dest)))
    except Exception:
        folder = dest / ARTIFACT_DIR
    if not (folder / MODEL_FILE).is_file():
        raise StudyError(
            f"{which} has no logged model ({ARTIFACT_DIR}/{MODEL_FILE}): it was run before "
            "models were logged; use `tune evaluate --retrain`, or run new trials"
        )
    return folder


def load_best_model(ctx: StudyContext, workdir: Path) -> tuple[keras.Model, ModelMeta, Path]:
    """The best trial's logged model and its metadata, downloaded under ``workdir``."""
    from tuner.models.artifacts import load_bundle

    folder = download_bundle(ctx.tracking_uri, ctx.run_id, workdir, trial=ctx.best.number)
    model, meta = load_bundle(folder)
    return model, meta, folder


def resolve_data_root(ctx: StudyContext, override: str | Path | None) -> Path:
    """``--data``, else the dataset the study recorded, else its space's; ``default`` is the
    embedded synthetic handwriting."""
    from tuner.study.data_source import dataset_root

    stored = ctx.study.user_attrs.get(ATTR_DATA_ROOT)
    spec = str(override) if override else (stored if isinstance(stored, str) and stored else None)
    if ctx.space is not None:
        return dataset_root(ctx.space, spec)
    if spec and spec != "default":
        return Path(spec).expanduser()
    raise StudyError(
        f"study {ctx.name!r} does not record its dataset: pass --data DIR (the folder with "
        "Train/ and Test/)"
    )


def check_same_classes(expected: list[str], found: list[str], where: Path) -> None:
    """A DataError naming the missing and extra classes when ``found`` differs from the
    model's ``expected`` classes (order does not matter)."""
    differences = class_differences(expected, found)
    if differences:
        raise DataError(
            f"the classes in {where} do not match the model's {len(expected)} classes "
            f"({differences}): evaluate on a dataset with the same class folders"
        )


def mlflow_log_folder(
    tracking_uri: str, run_id: str | None, folder: Path, artifact_path: str
) -> str | None:
    """Upload ``folder`` to the run; a reason when it could not (the files stay on disk)."""
    if not run_id:
        return "the study has no MLflow parent run"
    from tuner.tracking.mlflow_tracker import Tracker

    try:
        Tracker(tracking_uri).log_artifacts(run_id, folder, artifact_path)
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    return None


def mlflow_log_metrics(tracking_uri: str, run_id: str | None, metrics: dict[str, Any]) -> None:
    if not run_id:
        return
    from tuner.tracking.mlflow_tracker import Tracker

    Tracker(tracking_uri).log_metrics(run_id, {k: float(v) for k, v in metrics.items()})
