"""The wall-time guard around the median pruner: a trial far slower than every finished one,
and worse than them so far, stops; a slow trial that is ahead, or a quick one, goes on."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from tests.test_study import EpochHook, settings_for, trials_of
from tests.tiny import tiny_dataset, write_tiny_space
from tuner.study.components import default_pruner, make_pruner, pairing_advice
from tuner.study.orchestrate import StudySettings, run_study
from tuner.study.pruners import AT_LEAST_S, SLOW_REASON, SlowTrialPruner


def finished_trial(seconds: float, value: float) -> FrozenTrial:
    end = dt.datetime.now() - dt.timedelta(minutes=5)
    return FrozenTrial(
        number=0,
        state=TrialState.COMPLETE,
        value=value,
        datetime_start=end - dt.timedelta(seconds=seconds),
        datetime_complete=end,
        params={"x": 0.5},
        distributions={"x": FloatDistribution(0, 1)},
        user_attrs={},
        system_attrs={},
        intermediate_values={1: value},
        trial_id=0,
    )


def running_trial(running_for: float, values: dict[int, float]) -> FrozenTrial:
    return FrozenTrial(
        number=9,
        state=TrialState.RUNNING,
        value=None,
        datetime_start=dt.datetime.now() - dt.timedelta(seconds=running_for),
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs={},
        system_attrs={},
        intermediate_values=values,
        trial_id=9,
    )


@pytest.fixture
def study() -> optuna.Study:
    """Finished trials that took 10 s and 4 s, ending at 0.8 and 0.6 (median 0.7)."""
    s = optuna.create_study(direction="maximize")
    s.add_trial(finished_trial(10, 0.8))
    s.add_trial(finished_trial(4, 0.6))
    return s


@pytest.mark.parametrize(
    ("running_for", "values", "stops"),
    [
        (25, {1: 0.2}, True),  # 2.5x the slowest, behind the median
        (25, {}, True),  # not one epoch in 2.5x the slowest trial's whole run
        (15, {1: 0.2}, False),  # behind, but only 1.5x the slowest
        (25, {1: 0.1, 2: 0.75}, False),  # slow, but its best so far beats the median
    ],
)
def test_the_guard_stops_only_a_trial_both_slow_and_behind(
    study: optuna.Study, running_for: float, values: dict[int, float], stops: bool
) -> None:
    pruner = SlowTrialPruner(optuna.pruners.NopPruner())
    assert pruner.prune(study, running_trial(running_for, values)) is stops
    assert pruner.last_reason == (SLOW_REASON if stops else None)


def test_the_guard_leaves_trials_of_a_few_seconds_alone() -> None:
    quick = optuna.create_study(direction="maximize")
    quick.add_trial(finished_trial(1, 0.8))
    pruner = SlowTrialPruner(optuna.pruners.NopPruner())
    assert not pruner.prune(quick, running_trial(5, {1: 0.1})), "5x slower, but only 5 s"
    assert pruner.prune(quick, running_trial(12, {1: 0.1}))


def test_the_guard_waits_for_a_finished_trial_to_compare_with() -> None:
    pruner = SlowTrialPruner(optuna.pruners.NopPruner())
    assert not pruner.prune(optuna.create_study(), running_trial(3600, {1: 0.0}))


def test_the_median_pruner_is_guarded_and_none_prunes_nothing() -> None:
    assert isinstance(make_pruner("median", 4), SlowTrialPruner)
    assert isinstance(make_pruner("none", 4), optuna.pruners.NopPruner)


def test_gp_is_not_pruned_unless_asked_and_asking_gets_a_caution() -> None:
    # Optuna's GPSampler fits only completed trials: pruning leaves it next to nothing.
    assert default_pruner("gp") == "none"
    assert default_pruner("tpe") == default_pruner("random") == "median"
    advice = pairing_advice("gp", "median")
    assert advice is not None and "--pruner" in advice and "\n" not in advice
    assert pairing_advice("gp", "none") is None
    assert pairing_advice("tpe", "median") is None


class SlowFirstEpoch(EpochHook):
    """Trial ``number``'s first epoch lasts well over twice as long as the slowest finished
    trial took in all (a stand-in for a very wide network)."""

    def __init__(self, number: int, settings: StudySettings) -> None:
        self.number = number
        self.settings = settings

    def epoch_ended(self, number: int, epoch: int, logs: dict[str, float]) -> None:
        if number == self.number and epoch == 1:
            done = [t for t in trials_of(self.settings) if t.state == TrialState.COMPLETE]
            slowest = max((t.datetime_complete - t.datetime_start).total_seconds() for t in done)  # type: ignore[operator]
            time.sleep(max(2.5 * slowest, AT_LEAST_S) + 0.5)


def test_a_slow_hopeless_trial_is_pruned_at_its_first_epoch(tmp_path: Path) -> None:
    # A good trial, then a hopeless one (learning rate 1e-7) that is also slow: the median
    # rule alone would let it train all 6 epochs (it needs 3 finished trials to compare).
    enqueue = "enqueue:\n" + "".join(
        f"  - {{n_blocks: 1, filters_1: 8, pool_size_1: 2, learning_rate: {lr}}}\n"
        for lr in (0.02, 1e-7)
    )
    space = write_tiny_space(tmp_path, epochs=6, patience=6, extra=enqueue)
    s = settings_for(tmp_path, space, n_trials=2, pruner="median", sampler="random", seed=0)
    run_study(s, tiny_dataset(), observers=[SlowFirstEpoch(1, s)])
    good, slow = trials_of(s)
    assert good.state == TrialState.COMPLETE
    assert slow.state == TrialState.PRUNED
    assert slow.user_attrs["epochs"] == 1 and slow.user_attrs["pruned_because"] == SLOW_REASON
    tags: dict[str, Any] = (
        MlflowClient(s.tracking_uri).get_run(slow.user_attrs["mlflow_run_id"]).data.tags
    )
    assert tags["tuner.state"] == "PRUNED" and tags["tuner.pruned_because"] == SLOW_REASON
