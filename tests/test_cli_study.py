"""``tune run / status / best / delete`` through Click's CliRunner, on a tiny PNG dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.tiny import fresh_tracking_uri, write_tiny_layout, write_tiny_space
from tuner.cli import main


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TUNER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", fresh_tracking_uri(tmp_path))
    monkeypatch.delenv("TUNE_STORAGE", raising=False)
    write_tiny_layout(tmp_path / "data")
    write_tiny_space(tmp_path, epochs=1)
    return tmp_path


def tune(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_run_resume_status_best(workdir: Path) -> None:
    first = tune(
        "run", "tiny.yaml", "--data", "data", "--n-trials", "2", "--no-live", "--seed", "0"
    )
    assert first.exit_code == 0, first.output
    assert "ran 2 trials" in first.output and "tune best tiny" in first.output
    assert (workdir / "tuner.db").exists(), "the default storage is an SQLite file here"

    again = tune("run", "tiny.yaml", "--data", "data", "--n-trials", "2", "--no-live")
    assert again.exit_code == 0 and "is finished" in again.output

    more = tune("run", "tiny.yaml", "--data", "data", "--n-trials", "3", "--no-live")
    assert more.exit_code == 0 and "ran 1 trials" in more.output

    status = tune("status")
    assert status.exit_code == 0 and "tiny" in status.output

    best = tune("best", "tiny", "--json")
    assert best.exit_code == 0
    report = json.loads(best.output)
    assert report["study"] == "tiny" and "learning_rate" in report["params"]
    assert "val_accuracy" in report["metrics"]


def test_gp_runs_unpruned_by_default_and_a_named_pruner_is_kept_with_a_note(
    workdir: Path,
) -> None:
    import optuna

    from tuner.study.orchestrate import ATTR_PRUNER

    common = ["--data", "data", "--n-trials", "1", "--no-live", "--sampler", "gp"]
    plain = tune("run", "tiny.yaml", "--study-name", "gp_plain", *common)
    assert plain.exit_code == 0, plain.output
    assert "pruner none" in plain.output and "note:" not in plain.output
    named = tune("run", "tiny.yaml", "--study-name", "gp_median", *common, "--pruner", "median")
    assert named.exit_code == 0, named.output
    assert "pruner median" in named.output and "note:" in named.output
    storage = f"sqlite:///{workdir / 'tuner.db'}"
    recorded = {
        name: optuna.load_study(study_name=name, storage=storage).user_attrs[ATTR_PRUNER]
        for name in ("gp_plain", "gp_median")
    }
    assert recorded == {"gp_plain": "none", "gp_median": "median"}, "workers read it back"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "no_such_space"], "no search space named 'no_such_space'"),
        (["run", "tiny.yaml", "--data", "missing"], "missing"),
        (["best", "nothing"], "no study 'nothing'"),
        (["run", "tiny.yaml", "--storage", "postgresql://u:secret@127.0.0.1:1/db"], "***"),
    ],
)
def test_bad_input_is_one_line_without_traceback(
    workdir: Path, args: list[str], expected: str
) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith("Error:") and expected in lines[-1]
    assert "Traceback" not in result.output
    assert "secret" not in result.output


@pytest.mark.slow
def test_real_ctrl_c_records_the_trial_as_interrupted_and_the_command_resumes(
    workdir: Path,
) -> None:
    import os
    import signal
    import subprocess
    import sys

    import optuna
    from mlflow.tracking import MlflowClient
    from optuna.trial import TrialState

    from tests.workers_util import wait_for
    from tuner.study.storage import open_storage

    # 60 epochs with no early stop: long enough to be stopped mid-training on any machine.
    write_tiny_space(workdir, epochs=60, patience=60)
    cmd = [sys.executable, "-m", "tuner", "run", "tiny.yaml", "--data", "data",
           "--n-trials", "2", "--no-live"]  # fmt: skip
    storage = open_storage(f"sqlite:///{workdir / 'tuner.db'}", heartbeat=False)
    proc = subprocess.Popen(cmd, cwd=workdir, env=dict(os.environ), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)  # fmt: skip

    def training() -> bool:
        if not (workdir / "tuner.db").exists():
            return False
        try:
            trials = optuna.load_study(study_name="tiny", storage=storage).get_trials()
        except KeyError:
            return False
        return any(t.state == TrialState.RUNNING and t.intermediate_values for t in trials)

    wait_for(training, 600, "a trial in training")
    proc.send_signal(signal.SIGINT)
    output = " ".join(proc.communicate(timeout=300)[0].decode().split())
    assert proc.returncode == 130, output
    assert "Run the same command to resume" in output and "Traceback" not in output
    trials = optuna.load_study(study_name="tiny", storage=storage).get_trials()
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    stopped = [t for t in trials if t.user_attrs.get("interrupted")]
    assert len(stopped) == 1
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    assert client.get_run(stopped[0].user_attrs["mlflow_run_id"]).info.status == "KILLED"

    write_tiny_space(workdir, epochs=1)  # epochs are not part of the space's fingerprint
    resumed = subprocess.run(cmd, cwd=workdir, env=dict(os.environ), capture_output=True)
    assert resumed.returncode == 0, resumed.stdout.decode()
    trials = optuna.load_study(study_name="tiny", storage=storage).get_trials()
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 2
