"""Against real services on loopback: PostgreSQL as the shared study database (its outage
included) and an MLflow tracking server that workers log to over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from tests.workers_util import prepare, wait_for

POSTGRES_ENV = "TUNER_TEST_POSTGRES_URL"


def _admin_connect(url: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the server named by TUNER_TEST_POSTGRES_URL, dropped afterwards."""
    server = os.environ.get(POSTGRES_ENV)
    if not server:
        pytest.skip(f"set {POSTGRES_ENV}=postgresql://user@host:port/db to run PostgreSQL tests")
    name = f"tuner_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = _admin_connect(server)
    except Exception as exc:  # the server is not there: say so, as a skip
        pytest.skip(f"PostgreSQL at {server} is not reachable: {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    base = server.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def set_connections(server: str, database: str, allowed: bool) -> None:
    """Make the database go away (refuse and cut every connection) or come back."""
    admin = _admin_connect(server)
    admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}')
    if not allowed:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (database,),
        )
    admin.close()


def completed(prep) -> int:  # type: ignore[no-untyped-def]
    return sum(t.state == TrialState.COMPLETE for t in prep.study().get_trials())


@pytest.mark.postgres
@pytest.mark.slow
def test_two_workers_on_a_postgresql_study(tmp_path: Path, postgres_url: str) -> None:
    prep = prepare(tmp_path, n_trials=4, storage_url=postgres_url, sampler="tpe")
    workers = [prep.start_worker(f"pg{i}") for i in range(2)]
    for w in workers:
        w.wait(timeout=900)
    assert [w.returncode for w in workers] == [0, 0]
    trials = prep.study().get_trials()
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 4
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert len({t.user_attrs["worker"] for t in trials}) == 2


@pytest.mark.postgres
@pytest.mark.slow
def test_a_worker_rides_out_a_short_database_outage(tmp_path: Path, postgres_url: str) -> None:
    server, database = os.environ[POSTGRES_ENV], postgres_url.rsplit("/", 1)[1]
    prep = prepare(tmp_path, n_trials=4, storage_url=postgres_url)
    worker = prep.start_worker("outage", extra=("--db-patience", "60"))
    wait_for(lambda: completed(prep) >= 1, 600, "a first completed trial")
    set_connections(server, database, allowed=False)
    time.sleep(6)
    set_connections(server, database, allowed=True)
    try:
        worker.wait(timeout=900)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
    assert worker.returncode == 0, what_happened(prep, tmp_path / "outage.log")
    assert completed(prep) == 4, "it resumed and finished; nothing recorded was lost"


def what_happened(prep, log: Path) -> str:  # type: ignore[no-untyped-def]
    """For a failure message: the worker's log tail and every trial's state and reason."""
    trials = [
        f"{t.number} {t.state.name} {t.user_attrs.get('fail_reason', '')}"
        for t in prep.study().get_trials()
    ]
    return "\n".join([*log.read_text(errors="replace").splitlines()[-40:], *trials])


@pytest.mark.postgres
@pytest.mark.slow
def test_a_worker_stops_with_one_line_when_the_database_stays_away(
    tmp_path: Path, postgres_url: str
) -> None:
    server, database = os.environ[POSTGRES_ENV], postgres_url.rsplit("/", 1)[1]
    prep = prepare(tmp_path, n_trials=50, storage_url=postgres_url)
    worker = prep.start_worker("gone", extra=("--db-patience", "5"))
    wait_for(lambda: completed(prep) >= 1, 600, "a first completed trial")
    done_before = completed(prep)
    set_connections(server, database, allowed=False)
    try:
        worker.wait(timeout=300)
    finally:
        set_connections(server, database, allowed=True)
    log = (tmp_path / "gone.log").read_text()
    assert worker.returncode == 2
    last = [ln for ln in log.splitlines() if ln.strip()][-1]
    assert last.startswith("Error: lost the study database") and "Traceback" not in log
    assert "run the same command to resume" in last
    assert completed(prep) >= done_before, "finished trials are kept"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """A real MLflow tracking server on loopback, backed by a database, serving artifacts."""
    port = free_port()
    log = (tmp_path / "mlflow-server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            (tmp_path / "server-artifacts").as_uri(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return proc.poll() is not None  # stop waiting if it died

    wait_for(healthy, 300, "the MLflow server")
    assert proc.poll() is None, (tmp_path / "mlflow-server.log").read_text()[-2000:]
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.mark.mlflow_server
@pytest.mark.slow
def test_workers_log_to_a_tracking_server_over_http(tmp_path: Path, mlflow_server: str) -> None:
    prep = prepare(tmp_path, n_trials=2, tracking_uri=mlflow_server)
    worker = prep.start_worker("http")
    worker.wait(timeout=900)
    assert worker.returncode == 0, (tmp_path / "http.log").read_text()[-3000:]
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("soak")
    runs = client.search_runs([experiment.experiment_id])
    trials = [r for r in runs if r.data.tags.get("tuner.role") == "trial"]
    assert len(trials) == 2 and all(r.info.status == "FINISHED" for r in trials)
    assert {r.data.tags["mlflow.parentRunId"] for r in trials} == {prep.parent_run_id}
    artifacts = [a.path for a in client.list_artifacts(trials[0].info.run_id, "model")]
    assert "model/model.keras" in artifacts, "the model bundle went over HTTP too"
