"""Several real worker processes on one study: the shared budget, killed workers, the soak."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from tests.workers_util import PreparedStudy, prepare, wait_for
from tuner.study.orchestrate import budget_used, display_state
from tuner.study.workers import threads_per_worker, worker_environment


def test_threads_are_split_among_workers() -> None:
    assert threads_per_worker(2, cores=2) == 1
    assert threads_per_worker(4, cores=16) == 4
    assert threads_per_worker(8, cores=2) == 1


def test_workers_get_one_gpu_each_round_robin_and_share_memory_when_they_outnumber_gpus() -> None:
    def gpus_of(base: dict[str, str], n_workers: int, gpus: int) -> list[tuple[str, str | None]]:
        envs = [
            worker_environment(base, i, n_workers=n_workers, gpus=gpus) for i in range(n_workers)
        ]
        return [(e["CUDA_VISIBLE_DEVICES"], e.get("TF_FORCE_GPU_ALLOW_GROWTH")) for e in envs]

    assert gpus_of({}, 2, 0) == [("", None), ("", None)], "no GPU: none visible, CPU threads"
    assert gpus_of({}, 2, 2) == [("0", None), ("1", None)], "a GPU each: TF's defaults"
    # More workers than GPUs: without growth the second worker on a GPU runs out of memory.
    assert gpus_of({}, 3, 2) == [("0", "true"), ("1", "true"), ("0", "true")]
    # The user's own selection is respected: only GPUs 5 and 7, or none at all.
    assert gpus_of({"CUDA_VISIBLE_DEVICES": "5,7"}, 2, 8) == [("5", None), ("7", None)]
    assert gpus_of({"CUDA_VISIBLE_DEVICES": ""}, 2, 8) == [("", None), ("", None)]
    user_choice = {"TF_FORCE_GPU_ALLOW_GROWTH": "false"}
    assert gpus_of(user_choice, 2, 1) == [("0", "false"), ("0", "false")]


def finish(procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for p in procs:
        p.wait(timeout=max(deadline - time.monotonic(), 1))


def mlflow_trial_runs(prep: PreparedStudy) -> list[object]:
    client = MlflowClient(prep.settings.tracking_uri)
    experiment = client.get_experiment_by_name(prep.settings.name)
    return [
        r
        for r in client.search_runs([experiment.experiment_id], max_results=1000)
        if r.data.tags.get("tuner.role") == "trial"
    ]


def assert_consistent(prep: PreparedStudy, n_trials: int) -> None:
    study = prep.study()
    trials = study.get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == n_trials, [display_state(t) for t in trials]
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert budget_used(study) == n_trials
    runs = mlflow_trial_runs(prep)
    assert not [r for r in runs if r.info.status == "RUNNING"], "no MLflow run left RUNNING"
    for t in complete:
        mine = [r for r in runs if r.data.tags["tuner.trial_number"] == str(t.number)]
        assert [r.info.status for r in mine] == ["FINISHED"], f"trial {t.number}: {mine}"
    with sqlite3.connect(prep.settings.storage_url.removeprefix("sqlite:///")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.slow
def test_two_workers_share_one_budget_and_run_the_enqueued_trial_once(tmp_path: Path) -> None:
    prep = prepare(tmp_path, n_trials=5, sampler="tpe")
    baseline = {"n_blocks": 1, "filters_1": 8, "learning_rate": 0.01}
    prep.study().enqueue_trial(baseline)
    workers = [prep.start_worker(f"w{i}") for i in range(2)]
    finish(workers, timeout=900)
    assert [w.returncode for w in workers] == [0, 0]
    assert_consistent(prep, 5)
    trials = prep.study().get_trials()
    assert sum(t.params == baseline for t in trials) == 1, "the enqueued trial ran once"
    hosts = {t.user_attrs["worker"] for t in trials}
    assert len(hosts) == 2, "both workers ran trials, each recorded"
    runs = mlflow_trial_runs(prep)
    assert {r.data.tags["tuner.worker"] for r in runs} == hosts


def running_mid_training(prep: PreparedStudy) -> object | None:
    for t in prep.study().get_trials():
        if (
            t.state == TrialState.RUNNING
            and t.intermediate_values
            and "mlflow_run_id" in t.user_attrs
        ):
            return t
    return None


@pytest.mark.slow
def test_a_killed_workers_trial_is_failed_closed_and_retried(tmp_path: Path) -> None:
    prep = prepare(tmp_path, n_trials=3)
    first = prep.start_worker("first")
    victim = wait_for(lambda: running_mid_training(prep), 600, "a trial in training")
    first.send_signal(signal.SIGKILL)
    first.wait()
    second = prep.start_worker("second")
    finish([second], timeout=900)
    assert second.returncode == 0
    study = prep.study()
    lost = study.trials[victim.number]
    assert lost.state == TrialState.FAIL and display_state(lost) == "LOST"
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == victim.number]
    assert retries and retries[0].params == victim.params, "a live worker retried it"
    run = MlflowClient(prep.settings.tracking_uri).get_run(victim.user_attrs["mlflow_run_id"])
    assert run.info.status == "FAILED" and "no heartbeat" in run.data.tags["tuner.fail_reason"]
    assert_consistent(prep, 3)


@pytest.mark.slow
def test_soak_three_workers_killed_ten_times(tmp_path: Path) -> None:
    """3 workers on a 12-trial study; SIGKILL a random one every few seconds, ten times,
    restarting it each time. The study must end exactly right."""
    prep = prepare(tmp_path, n_trials=12)
    rng = random.Random(7)
    workers = [prep.start_worker(f"w{i}") for i in range(3)]
    time.sleep(8)  # let them import TensorFlow and start trials
    for kill in range(10):
        time.sleep(rng.uniform(2.0, 5.0))
        i = rng.randrange(3)
        workers[i].send_signal(signal.SIGKILL)
        workers[i].wait()
        workers[i] = prep.start_worker(f"w{i}-{kill}")
    finish(workers, timeout=1200)
    assert [w.returncode for w in workers] == [0, 0, 0]
    assert_consistent(prep, 12)
