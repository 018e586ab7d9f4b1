"""Reading finished and running studies: summaries for ``tune status`` and ``tune best``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.errors import StudyError
from tuner.study.orchestrate import (
    ATTR_N_TRIALS,
    best_trial,
    pareto_front,
    primary_value,
    state_counts,
)
from tuner.study.storage import open_storage, redact


@dataclass
class StudyRow:
    name: str
    n_trials: int | None
    counts: dict[str, int]
    best_number: int | None
    best_value: float | None


def list_studies(storage_url: str) -> list[StudyRow]:
    import optuna

    storage = open_storage(storage_url, heartbeat=False)
    rows = []
    for summary in optuna.get_all_study_summaries(storage=storage, include_best_trial=False):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        best = best_trial(study)
        rows.append(
            StudyRow(
                name=summary.study_name,
                n_trials=study.user_attrs.get(ATTR_N_TRIALS),
                counts=state_counts(study),
                best_number=best.number if best else None,
                best_value=primary_value(best) if best else None,
            )
        )
    return rows


def load_existing(storage_url: str, study_name: str) -> Any:
    import optuna

    storage = open_storage(storage_url, heartbeat=False)
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = [
            s.study_name
            for s in optuna.get_all_study_summaries(storage=storage, include_best_trial=False)
        ]
        raise StudyError(
            f"no study {study_name!r} in {redact(storage_url)}; studies there: "
            f"{', '.join(names) or 'none'} (see `tune status`, or pass --storage)"
        ) from None


def best_trial_report(
    storage_url: str, study_name: str, tracking_uri: str | None = None
) -> dict[str, Any]:
    """The best trial's params, and its final metrics from MLflow when a tracking URI is given."""
    study = load_existing(storage_url, study_name)
    best = best_trial(study)
    if best is None:
        raise StudyError(
            f"study {study_name!r} has no completed trial yet: run `tune run` to add some"
        )
    metrics: dict[str, float] = {}
    run_id = best.user_attrs.get("mlflow_run_id")
    local_store_missing = tracking_uri is not None and (
        tracking_uri.startswith("sqlite:///")
        and not Path(tracking_uri[len("sqlite:///") :]).exists()
    )
    if run_id and tracking_uri and not local_store_missing:
        from mlflow.tracking import MlflowClient

        try:
            metrics = dict(MlflowClient(tracking_uri).get_run(run_id).data.metrics)
        except Exception:  # the run store may be elsewhere; the study still answers
            metrics = {}
    return {
        "study": study_name,
        "number": best.number,
        "value": primary_value(best),
        "metric": study.user_attrs.get("objective_metric", "value"),
        "params": dict(best.params),
        "epochs": best.user_attrs.get("epochs"),
        "n_params": best.user_attrs.get("n_params"),
        "worker": best.user_attrs.get("worker"),
        "mlflow_run_id": run_id,
        "intermediate_values": dict(best.intermediate_values),
        "metrics": metrics,
        "duration_s": best.duration.total_seconds() if best.duration else None,
        "directions": [d.name.lower() for d in study.directions],
        "pareto_front": [
            {"number": t.number, "values": list(t.values), "params": dict(t.params)}
            for t in pareto_front(study)
        ]
        if len(study.directions) > 1
        else [],
    }
