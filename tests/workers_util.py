"""Starting real ``tune worker`` processes on a prepared study, for worker and fault tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from tests.tiny import fresh_tracking_uri, write_tiny_layout
from tuner.space import parse_space
from tuner.study.orchestrate import StudySettings, prepare_study
from tuner.study.storage import open_storage
from tuner.tracking.mlflow_tracker import Tracker

# Pool size 2 only: no configuration of this space fails, so every trial can complete.
WORKER_SPACE = {
    "name": "soak",
    "description": "tiny CNNs for worker tests",
    "dataset": "default",
    "model": "cnn",
    "objective": {"metric": "val_accuracy", "direction": "maximize"},
    "training": {"max_epochs": 6, "patience": 6, "batch_size": 16},
    "budget": {"n_trials": 4},
    "fixed": {"pooling": "max", "pool_size_1": 2, "pool_size_2": 2, "dense_units": 16},
    "params": {
        "n_blocks": {"type": "int", "low": 1, "high": 2},
        "filters_1": {"type": "categorical", "choices": [4, 8]},
        "filters_2": {"type": "categorical", "choices": [4, 8], "when": "n_blocks >= 2"},
        "learning_rate": {"type": "float", "low": 1.0e-3, "high": 3.0e-2, "log": True},
    },
}


@dataclass
class PreparedStudy:
    settings: StudySettings
    data_dir: Path
    workdir: Path
    parent_run_id: str

    def study(self) -> optuna.Study:
        return optuna.load_study(
            study_name=self.settings.name,
            storage=open_storage(self.settings.storage_url, heartbeat=False),
        )

    def start_worker(self, label: str, extra: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{label}.log").open("ab")
        env = {**os.environ, "TUNER_CACHE_DIR": str(self.workdir / "cache")}
        cmd = [
            sys.executable, "-m", "tuner", "worker", self.settings.name,
            "--storage", self.settings.storage_url,
            "--tracking-uri", self.settings.tracking_uri,
            "--data", str(self.data_dir),
            "--heartbeat", "1", "--grace", "3", "--threads", "1", "--no-live", *extra,
        ]  # fmt: skip
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


def prepare(
    workdir: Path,
    *,
    n_trials: int,
    storage_url: str | None = None,
    tracking_uri: str | None = None,
    sampler: str = "random",
    n_per_class: int = 60,
) -> PreparedStudy:
    data_dir = write_tiny_layout(workdir / "data", n_per_class=n_per_class)
    settings = StudySettings(
        space=parse_space(WORKER_SPACE),
        storage_url=storage_url or f"sqlite:///{workdir / 'study.db'}",
        tracking_uri=tracking_uri or fresh_tracking_uri(workdir),
        sampler=sampler,
        pruner="none",
        n_trials=n_trials,
        data=str(data_dir),
        heartbeat_interval=1,
        grace_period=3,
    )
    _, _, parent = prepare_study(settings, Tracker(settings.tracking_uri))
    return PreparedStudy(settings, data_dir, workdir, parent)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
