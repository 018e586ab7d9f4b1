"""Studies end to end on tiny data: samplers, resume, pruning, failures, Ctrl-C, MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from tests.tiny import fresh_tracking_uri, tiny_dataset, write_tiny_space
from tuner.errors import StudyError
from tuner.space import load_space
from tuner.study.orchestrate import StudySettings, budget_used, run_study
from tuner.study.storage import open_storage


@pytest.fixture(scope="module")
def data() -> Any:
    return tiny_dataset()


def settings_for(tmp_path: Path, space_path: Path, **kw: Any) -> StudySettings:
    store = tmp_path / "mlruns" / "mlflow.db"
    return StudySettings(
        space=load_space(space_path),
        storage_url=f"sqlite:///{tmp_path / 'study.db'}",
        tracking_uri=f"sqlite:///{store}" if store.exists() else fresh_tracking_uri(tmp_path),
        **kw,
    )


def trials_of(s: StudySettings) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(
        study_name=s.name, storage=open_storage(s.storage_url, heartbeat=False)
    )
    return study.get_trials()


@pytest.mark.parametrize("sampler", ["random", "tpe", "gp"])
def test_short_study_with_each_sampler(tmp_path: Path, data: Any, sampler: str) -> None:
    s = settings_for(
        tmp_path,
        write_tiny_space(tmp_path, epochs=1),
        sampler=sampler,
        seed=1,
        n_trials=3,
        pruner="none",
    )
    outcome = run_study(s, data)
    assert outcome.counts.get("COMPLETE") == 3
    assert outcome.best_value is not None and 0.0 <= outcome.best_value <= 1.0
    assert all(t.state == TrialState.COMPLETE for t in trials_of(s))


def test_resume_runs_only_the_missing_trials_and_one_parent_run(tmp_path: Path, data: Any) -> None:
    space = write_tiny_space(tmp_path, epochs=1)
    first = run_study(settings_for(tmp_path, space, n_trials=2, seed=0), data)
    assert first.ran == 2
    again = settings_for(tmp_path, space, n_trials=4, seed=0)
    second = run_study(again, data)
    assert second.ran == 2 and budget_used_of(again) == 4
    third = run_study(again, data)
    assert third.already_finished and third.ran == 0

    client = MlflowClient(again.tracking_uri)
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("tuner.role") == "study"]
    children = [r for r in runs if r.data.tags.get("tuner.role") == "trial"]
    assert len(parents) == 1, "a resumed study reuses its parent run"
    assert parents[0].info.status == "FINISHED"
    assert len(children) == 4
    parent_id = parents[0].info.run_id
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent_id
        assert child.info.status == "FINISHED"
        assert child.data.tags["tuner.state"] == "COMPLETE"
        assert "learning_rate" in child.data.params and "n_params" in child.data.params
        for key in (
            "loss",
            "accuracy",
            "top5_accuracy",
            "val_loss",
            "val_accuracy",
            "val_top5_accuracy",
        ):
            assert len(client.get_metric_history(child.info.run_id, key)) == 1
    assert "tuner.best_params" in parents[0].data.tags
    assert parents[0].data.metrics["best_value"] > 0


def budget_used_of(s: StudySettings) -> int:
    return budget_used(
        optuna.load_study(study_name=s.name, storage=open_storage(s.storage_url, heartbeat=False))
    )


def test_pruning_stops_a_hopeless_trial_early(tmp_path: Path, data: Any) -> None:
    # Three distinct good trials (identical ones would be enqueued once), then a hopeless one.
    enqueue = "enqueue:\n" + "".join(
        f"  - {{n_blocks: 1, filters_1: 8, pool_size_1: 2, learning_rate: {lr}}}\n"
        for lr in (0.02, 0.015, 0.025, 1e-7)
    )
    space = write_tiny_space(tmp_path, epochs=6, extra=enqueue)
    s = settings_for(tmp_path, space, n_trials=4, pruner="median", sampler="random", seed=0)
    run_study(s, data)
    trials = trials_of(s)
    assert [t.state for t in trials[:3]] == [TrialState.COMPLETE] * 3
    pruned = trials[3]
    assert pruned.state == TrialState.PRUNED
    assert pruned.user_attrs["epochs"] < 6, "a pruned trial stops training at once"
    run = MlflowClient(s.tracking_uri).get_run(pruned.user_attrs["mlflow_run_id"])
    assert run.data.tags["tuner.state"] == "PRUNED"


def test_a_trial_that_raises_is_failed_with_its_reason_and_the_study_goes_on(
    tmp_path: Path, data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tuner.models import builder

    real_build_model = builder.build_model
    calls = []

    def build_model(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        if len(calls) == 1:  # the first trial's configuration cannot be built
            raise builder.ModelConfigError("unknown optimizer 'adamx'; use one of ['adam']")
        return real_build_model(*args, **kwargs)

    monkeypatch.setattr(builder, "build_model", build_model)
    space = write_tiny_space(tmp_path, epochs=1)
    s = settings_for(tmp_path, space, n_trials=3, seed=0)
    outcome = run_study(s, data)
    trials = trials_of(s)
    assert trials[0].state == TrialState.FAIL
    assert "unknown optimizer" in trials[0].user_attrs["fail_reason"]
    assert outcome.counts.get("COMPLETE") == 2, "the study went on after the failure"
    run = MlflowClient(s.tracking_uri).get_run(trials[0].user_attrs["mlflow_run_id"])
    assert run.info.status == "FAILED"
    assert "unknown optimizer" in run.data.tags["tuner.fail_reason"]


def test_pools_that_outgrow_the_feature_map_are_capped_and_the_trial_completes(
    tmp_path: Path, data: Any
) -> None:
    # 16x12 input, pool 4 then pool 4: the second block's map is 4x3, so its pool is 3.
    enqueue = (
        "enqueue:\n  - {n_blocks: 2, filters_1: 4, filters_2: 4, pool_size_1: 4, "
        "pool_size_2: 4, learning_rate: 0.01}\n"
    )
    space = write_tiny_space(tmp_path, epochs=1, extra=enqueue)
    s = settings_for(tmp_path, space, n_trials=1, seed=0)
    run_study(s, data)
    (trial,) = trials_of(s)
    assert trial.state == TrialState.COMPLETE
    assert trial.params["pool_size_2"] == 4, "the sampled value is recorded as sampled"
    summary = Path(
        MlflowClient(s.tracking_uri).download_artifacts(
            trial.user_attrs["mlflow_run_id"], "model_summary.txt"
        )
    ).read_text("utf-8")
    assert "(None, 1, 1, 4)" in summary, "the capped pool is in the logged model summary"


class EpochHook:
    """A trial observer that acts at the end of each epoch only (see ``epoch_ended``)."""

    def trial_started(self, number: int, params: dict[str, Any]) -> None:
        pass

    def epoch_ended(self, number: int, epoch: int, logs: dict[str, float]) -> None:
        pass

    def trial_finished(self, trial: Any) -> None:
        pass


class InterruptAtEpoch(EpochHook):
    """Acts like Ctrl-C in the middle of a trial's training."""

    def __init__(self, trial: int) -> None:
        self.trial = trial

    def epoch_ended(self, number: int, epoch: int, logs: dict[str, float]) -> None:
        if number == self.trial:
            raise KeyboardInterrupt


def test_ctrl_c_leaves_no_running_trial_and_the_same_command_resumes(
    tmp_path: Path, data: Any
) -> None:
    space = write_tiny_space(tmp_path, epochs=2)
    s = settings_for(tmp_path, space, n_trials=3, seed=0)
    outcome = run_study(s, data, observers=[InterruptAtEpoch(trial=1)])
    assert outcome.interrupted
    trials = trials_of(s)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert trials[1].user_attrs.get("interrupted") is True
    client = MlflowClient(s.tracking_uri)
    assert client.get_run(trials[1].user_attrs["mlflow_run_id"]).info.status == "KILLED"

    resumed = run_study(s, data)
    assert not resumed.interrupted
    assert budget_used_of(s) == 3, "the interrupted trial does not count; it is redone"
    assert resumed.ran == 2


class SlowEpochs(EpochHook):
    """Makes every epoch last at least ``seconds`` (a stand-in for a big model)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def epoch_ended(self, number: int, epoch: int, logs: dict[str, float]) -> None:
        import time

        time.sleep(self.seconds)


def test_the_timeout_stops_a_running_trial_at_its_next_epoch_end(tmp_path: Path, data: Any) -> None:
    # 60 epochs of at least 0.5 s, no early stop, no pruner: 30 s or more without a deadline.
    space = write_tiny_space(tmp_path, epochs=60, patience=60)
    s = settings_for(tmp_path, space, n_trials=3, seed=0, pruner="none", timeout=5.0)
    outcome = run_study(s, data, observers=[SlowEpochs(0.5)])
    trials = trials_of(s)
    assert len(trials) == 1 and outcome.ran == 1, "no trial starts after the deadline"
    stopped = trials[0]
    assert stopped.state == TrialState.PRUNED and stopped.user_attrs["stopped_at_deadline"]
    assert stopped.user_attrs["epochs"] < 60, "it stopped training at the deadline"
    assert stopped.intermediate_values, "what it learned so far stays in the study"
    run = MlflowClient(s.tracking_uri).get_run(stopped.user_attrs["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["tuner.state"] == "PRUNED"


def test_reusing_a_study_name_with_another_space_is_refused(tmp_path: Path, data: Any) -> None:
    space = write_tiny_space(tmp_path, epochs=1)
    run_study(settings_for(tmp_path, space, n_trials=1), data)
    other = tmp_path / "other"
    other.mkdir()
    changed = write_tiny_space(other, extra="  dropout: {type: float, low: 0.0, high: 0.5}\n")
    with pytest.raises(StudyError, match=r"different search space.*--study-name"):
        run_study(settings_for(tmp_path, changed, n_trials=2), data)
    # nothing stored was touched
    assert budget_used_of(settings_for(tmp_path, space)) == 1


def test_a_completed_trial_logs_the_model_it_scored(tmp_path: Path, data: Any) -> None:

    from tuner.models.artifacts import load_bundle

    s = settings_for(tmp_path, write_tiny_space(tmp_path, epochs=3), n_trials=1, seed=0)
    run_study(s, data)
    trial = trials_of(s)[0]
    client = MlflowClient(s.tracking_uri)
    folder = client.download_artifacts(trial.user_attrs["mlflow_run_id"], "model", str(tmp_path))
    model, meta = load_bundle(Path(folder))
    assert meta.classes == data.classes and meta.preprocessing == data.preprocessing.key()
    assert meta.params["learning_rate"] == trial.params["learning_rate"]
    logits = model.predict(data.val.images[..., None], verbose=0)
    assert logits.shape == (len(data.val.labels), len(data.classes))
    accuracy = float((logits.argmax(axis=1) == data.val.labels).mean())
    assert accuracy == pytest.approx(trial.value, abs=1e-6), "the logged model is the trial's"
