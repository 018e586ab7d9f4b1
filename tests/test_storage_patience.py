"""How long a worker keeps going through storage errors (``--db-patience``): no TensorFlow,
the trial loop with stand-in trials and a storage error injected where Optuna surfaces one."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
from optuna.trial import TrialState

from tests.test_study import settings_for
from tests.tiny import write_tiny_space
from tuner.errors import StorageError
from tuner.study.orchestrate import _work, open_study

#: More trials than a worker that gives up in time would ever run.
GIVE_UP_BY = 300


class StorageErrorEveryOtherTrial:
    """An Optuna callback that fails like a lost database after every other trial, as when
    the connection keeps dropping: the trial in between returns normally."""

    def __init__(self, first_only: bool = False) -> None:
        self.calls = 0
        self.first_only = first_only

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.calls += 1
        if self.calls > GIVE_UP_BY:
            raise RuntimeError(f"still retrying after {GIVE_UP_BY} trials: it never gives up")
        if self.calls % 2 == 1 and (not self.first_only or self.calls == 1):
            raise sqlalchemy.exc.OperationalError(
                "UPDATE trials", {}, Exception("server closed the connection unexpectedly")
            )


class StandInRunner:
    """The trial runner's interface (``deadline``, called with the trial), without training."""

    def __init__(self, value: float | None) -> None:
        self.value = value
        self.deadline: float | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        if self.value is None:
            raise ValueError("this trial cannot work")
        return self.value


class NoOrphans:
    def __call__(self, study: optuna.Study) -> None:
        pass


def test_storage_errors_between_failed_trials_run_out_the_patience(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path, write_tiny_space(tmp_path), n_trials=3, storage_patience_s=1.0
    )
    study = open_study(settings)
    with pytest.raises(StorageError, match="did not come back within 1 s"):
        _work(study, settings, StandInRunner(None), [StorageErrorEveryOtherTrial()], NoOrphans())
    assert not [t for t in study.get_trials() if t.state == TrialState.COMPLETE]


def test_a_completed_trial_after_a_storage_error_ends_the_outage(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path, write_tiny_space(tmp_path), n_trials=3, storage_patience_s=1.0
    )
    study = open_study(settings)
    callback = StorageErrorEveryOtherTrial(first_only=True)
    _work(study, settings, StandInRunner(0.5), [callback], NoOrphans())
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 3
    assert callback.calls == 3
