"""MLflow tracking through ``MlflowClient`` only: run ids are passed around explicitly, never
MLflow's fluent "active run", so several studies or workers in one process cannot collide.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

# MLflow's own tag that makes a run a child of another in the UI.
PARENT_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"


def default_tracking_uri(workdir: Path | None = None) -> str:
    """SQLite under ``mlruns/``: MLflow 3's database backend works out of the box, where its
    legacy file store is deprecated."""
    root = (workdir or Path.cwd()).resolve() / "mlruns"
    return f"sqlite:///{root / 'mlflow.db'}"


def resolve_tracking_uri(explicit: str | None, workdir: Path | None = None) -> str:
    """``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else SQLite under ``./mlruns``."""
    uri = explicit or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(workdir)
    if "://" not in uri:  # a bare path: the user means a database file or an mlruns folder
        path = Path(uri).expanduser().resolve()
        uri = f"sqlite:///{path}" if path.suffix == ".db" else f"sqlite:///{path / 'mlflow.db'}"
    return uri


def artifact_root_for(tracking_uri: str) -> str | None:
    """Artifacts beside a local SQLite store (``mlruns/artifacts``); a server decides its own."""
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///") :])
        return (db.parent / "artifacts").resolve().as_uri()
    return None


class _LockRetrying:
    """An MlflowClient whose calls wait out SQLite's "database is locked" (several local
    workers writing one store at once) instead of failing a trial over it."""

    def __init__(self, client: Any, patience_s: float = 120.0) -> None:
        self._client = client
        self._patience_s = patience_s

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            delay, waited = 0.05, 0.0
            while True:
                try:
                    return attr(*args, **kwargs)
                except Exception as exc:
                    if "database is locked" not in str(exc) or waited > self._patience_s:
                        raise
                time.sleep(delay)
                waited += delay
                delay = min(delay * 2, 2.0)

        return call


class Tracker:
    """The few MLflow operations a study needs, on one tracking URI."""

    def __init__(self, tracking_uri: str) -> None:
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        self.client: MlflowClient = cast(
            "MlflowClient", _LockRetrying(MlflowClient(tracking_uri=tracking_uri))
        )
        if tracking_uri.startswith("sqlite:///"):
            db = Path(tracking_uri[len("sqlite:///") :])
            db.parent.mkdir(parents=True, exist_ok=True)
            self.client.search_experiments(max_results=1)  # creates the schema on first use
            _use_wal(db)

    def experiment_for_study(self, study_name: str) -> str:
        """The study's experiment (named after the study), created on first use."""
        from mlflow.exceptions import MlflowException

        experiment = self.client.get_experiment_by_name(study_name)
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                self.client.restore_experiment(experiment.experiment_id)
            return str(experiment.experiment_id)
        try:
            return str(
                self.client.create_experiment(
                    study_name, artifact_location=artifact_root_for(self.tracking_uri)
                )
            )
        except MlflowException:  # another worker created it first
            experiment = self.client.get_experiment_by_name(study_name)
            if experiment is None:
                raise
            return str(experiment.experiment_id)

    def open_parent_run(
        self, experiment_id: str, study_name: str, run_id: str | None, tags: Mapping[str, str]
    ) -> str:
        """Resume the study's parent run when it still exists, else start one."""
        if run_id:
            try:
                run = self.client.get_run(run_id)
            except Exception:
                run = None
            if run is not None and run.info.lifecycle_stage != "deleted":
                if run.info.status != "RUNNING":
                    self.client.update_run(run_id, status="RUNNING")
                return run_id
        run = self.client.create_run(
            experiment_id, run_name=study_name, tags={**tags, "tuner.role": "study"}
        )
        return str(run.info.run_id)

    def start_trial_run(
        self,
        experiment_id: str,
        parent_run_id: str,
        trial_number: int,
        params: Mapping[str, Any],
        tags: Mapping[str, str],
    ) -> str:
        from mlflow.entities import Param

        run = self.client.create_run(
            experiment_id,
            run_name=f"trial-{trial_number:03d}",
            tags={
                PARENT_TAG: parent_run_id,
                "tuner.role": "trial",
                "tuner.trial_number": str(trial_number),
                **tags,
            },
        )
        run_id = str(run.info.run_id)
        self.client.log_batch(
            run_id, params=[Param(k, _param_value(v)) for k, v in sorted(params.items())]
        )
        return run_id

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        step: int = 0,
    ) -> None:
        """Metrics, params and tags in one write (one database transaction)."""
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, step) for k, v in (metrics or {}).items()],
            params=[Param(k, _param_value(v)) for k, v in (params or {}).items()],
            tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
        )

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()]
        )

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        self.client.log_batch(run_id, params=[Param(k, _param_value(v)) for k, v in params.items()])

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.client.log_text(run_id, text, artifact_file)

    def log_dict(self, run_id: str, data: Any, artifact_file: str) -> None:
        self.client.log_text(run_id, json.dumps(data, indent=2, default=str), artifact_file)

    def log_artifacts(self, run_id: str, folder: Path, artifact_path: str) -> None:
        self.client.log_artifacts(run_id, str(folder), artifact_path)

    def end_run(self, run_id: str, status: str) -> None:
        """status: FINISHED, FAILED or KILLED."""
        self.client.set_terminated(run_id, status=status)


def _use_wal(db: Path) -> None:
    """WAL lets workers read while one writes; it is a property of the file, set once."""
    import sqlite3

    with contextlib.suppress(sqlite3.Error), sqlite3.connect(db, timeout=60) as conn:
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode=WAL")


def _param_value(value: Any) -> str:
    return json.dumps(value) if isinstance(value, list | dict | tuple) else str(value)
