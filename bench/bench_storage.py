"""Storage benchmark: the study database and the MLflow store under concurrent worker processes.

For each worker count in the sweep (default 1, 2, 4, 8), that many processes hammer one store
for ``--seconds`` (or ``--ops`` each), all released at the same instant by a barrier:

* Optuna study database, through ``tuner.study.storage.open_storage`` (heartbeat on, as the
  workers open it), each operation one trial's life as a worker drives it: ``study.ask()``,
  two ``suggest_*``, ``trial.report`` at steps 1 and 2, ``study.tell(trial, value)``;
  (a) on SQLite (WAL, 60 s busy timeout: tuner's settings), a fresh file per worker count;
  (b) on PostgreSQL, a fresh database ``bench_storage_*`` per worker count, dropped after.
* MLflow run store, through ``tuner.tracking.mlflow_tracker.Tracker``, each operation one
  trial's tracking as ``TrialRunner`` does it: create the run with 8 params and its tags,
  log 2 params, 6 metrics per epoch for 5 epochs, the best value, the state tag, terminate; then
  the study's parent-run update (``best_value`` metric and count tags, every worker writing the
  same parent run). Artifacts are left out (files, not the database).
  (c) on one SQLite file (WAL, tuner's "database is locked" retry), (d) through a local
  ``mlflow server`` (HTTP, on a free loopback port, SQLite behind it), started for the
  sweep and stopped after.

Reported per worker count: operations, operations/s (all workers together, from the barrier
to the last worker's end), p50/p95/max latency of one operation, failures (an operation that
raised), and how many of them were "database is locked". For the MLflow store over SQLite also
the number of "database is locked" errors that ``Tracker``'s retry absorbed (hidden as
latency). Target: no failure on SQLite with 4 workers. Prints the machine and Markdown
tables, then PASS/FAIL lines (exit status 1 on FAIL).

    .venv/bin/python bench/bench_storage.py                   # 10 s per point: ~6 min
    .venv/bin/python bench/bench_storage.py --seconds 5 --only sqlite,mlflow
    .venv/bin/python bench/bench_storage.py --quick           # 4 s per point, 1/4/8 workers
    .venv/bin/python bench/bench_storage.py --nice -10        # as root, on a shared machine
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import multiprocessing
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from machine import cpu_model, load_average, nproc  # bench/machine.py

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"
BACKENDS = ("sqlite", "postgres", "mlflow", "mlflow-http")
TITLES = {
    "sqlite": "(a) Optuna study database on SQLite (WAL): trial ask/report/tell",
    "postgres": "(b) Optuna study database on PostgreSQL: trial ask/report/tell",
    "mlflow": "(c) MLflow store on SQLite (WAL) through Tracker: one trial's run",
    "mlflow-http": "(d) MLflow store via `mlflow server` (HTTP, SQLite behind): one trial's run",
}
EPOCH_METRICS = ("loss", "accuracy", "top5_accuracy", "val_loss", "val_accuracy", "val_top5")
LOCKED = "database is locked"


# ------------------------------------------------------------------------------ machine


def postgres_version() -> str:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return f"PostgreSQL {row[0] if row else '?'} (psycopg {psycopg.__version__})"
    except Exception as exc:
        return f"unavailable ({type(exc).__name__})"


def machine_rows() -> list[tuple[str, str]]:
    import mlflow
    import optuna
    import sqlalchemy

    return [
        ("CPU", f"{cpu_model()}, nproc {nproc()}"),
        ("Python", platform.python_version()),
        (
            "Versions",
            f"Optuna {optuna.__version__}, MLflow {mlflow.__version__}, "
            f"SQLAlchemy {sqlalchemy.__version__}, SQLite {sqlite3.sqlite_version}",
        ),
        ("PostgreSQL", postgres_version()),
        ("Load average at start (1/5/15 min)", load_average()),
        ("Scheduling", scheduling()),
    ]


def scheduling() -> str:
    enabled = Path("/proc/sys/kernel/sched_autogroup_enabled")
    group = Path("/proc/self/autogroup")
    if enabled.exists() and enabled.read_text().strip() == "1" and group.exists():
        session = group.read_text().strip()
        return f"autogroup on: CPU shared by session first; this session {session}"
    return f"no autogroup; process niceness {os.getpriority(os.PRIO_PROCESS, 0)}"


def set_priority(nice: int) -> Callable[[], None]:
    """This benchmark's scheduling group at niceness ``nice`` (see bench_workers.py); returns
    the undo. The workers and the ``mlflow server`` stay in this session; PostgreSQL's server
    processes are in their own."""
    group = Path("/proc/self/autogroup")
    enabled = Path("/proc/sys/kernel/sched_autogroup_enabled")
    if group.exists() and enabled.exists() and enabled.read_text().strip() == "1":
        before = int(group.read_text().split("nice")[1])
        group.write_text(str(nice))

        def undo() -> None:
            group.write_text(str(before))

        return undo
    before = os.getpriority(os.PRIO_PROCESS, 0)
    os.setpriority(os.PRIO_PROCESS, 0, nice)
    return lambda: os.setpriority(os.PRIO_PROCESS, 0, before)


# ------------------------------------------------------------------------------ workers


def quiet() -> None:
    import logging

    import mlflow  # noqa: F401  (configures its loggers on import: quiet them after)
    import optuna

    warnings.simplefilter("ignore")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    for name in ("mlflow", "alembic", "sqlalchemy", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)


def failure_kind(exc: BaseException) -> str:
    """'database is locked' if it appears anywhere in the exception chain, else the type and
    the first line of the message."""
    seen: BaseException | None = exc
    while seen is not None:
        if LOCKED in str(seen):
            return LOCKED
        seen = seen.__cause__ or seen.__context__
    first = (str(exc).strip().splitlines() or [""])[0][:90]
    return f"{type(exc).__name__}: {first}"


@dataclass
class Job:
    backend: str
    url: str
    index: int
    seconds: float
    max_ops: int | None
    study_name: str = ""
    experiment_id: str = ""
    parent_run_id: str = ""


@dataclass
class WorkerResult:
    latencies: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    failed_latencies: list[float] = field(default_factory=list)
    hidden_locks: int = 0
    started: float = 0.0
    ended: float = 0.0
    setup_error: str = ""


def _optuna_op(job: Job) -> tuple[Callable[[int], None], Callable[[], int]]:
    import optuna

    from tuner.study.storage import open_storage

    study = optuna.load_study(
        study_name=job.study_name,
        storage=open_storage(job.url),
        sampler=optuna.samplers.RandomSampler(seed=job.index),
    )

    def op(n: int) -> None:
        trial = study.ask()
        x = trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
        trial.suggest_int("n_blocks", 1, 5)
        trial.report(x, 1)
        trial.report(x / 2, 2)
        study.tell(trial, x)

    return op, lambda: 0


class _CountingClient:
    """Between Tracker's retry and MlflowClient: counts the "database is locked" errors that
    the retry then waits out (they cost latency, not failures)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.locked = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attr(*args, **kwargs)
            except Exception as exc:
                if LOCKED in str(exc):
                    self.locked += 1
                raise

        return call


def _mlflow_op(job: Job) -> tuple[Callable[[int], None], Callable[[], int]]:
    from tuner.tracking.mlflow_tracker import Tracker

    tracker = Tracker(job.url)
    retrying: Any = tracker.client  # Tracker's _LockRetrying around the MlflowClient
    counting = _CountingClient(retrying._client)
    retrying._client = counting
    params = {
        "n_blocks": 3,
        "filters_1": 16,
        "filters_2": 32,
        "filters_3": 64,
        "kernel_size": 3,
        "pooling": "max",
        "dense_units": 64,
        "learning_rate": 0.001,
    }

    def op(n: int) -> None:
        number = job.index * 1_000_000 + n
        run_id = tracker.start_trial_run(
            job.experiment_id,
            job.parent_run_id,
            number,
            params,
            tags={"tuner.worker": f"bench:{os.getpid()}", "tuner.study": "bench_storage"},
        )
        tracker.log_params(run_id, {"n_params": 12345, "trial_number": number})
        for epoch in range(1, 6):
            tracker.log_metrics(
                run_id, {k: 1.0 / (epoch + i) for i, k in enumerate(EPOCH_METRICS)}, step=epoch
            )
        tracker.log_metrics(run_id, {"best_val_accuracy": 0.5, "duration_s": 1.0})
        tracker.set_tags(run_id, {"tuner.state": "COMPLETE"})
        tracker.end_run(run_id, "FINISHED")
        # The study's parent run, updated after every trial by every worker.
        tracker.log_metrics(job.parent_run_id, {"best_value": 0.5}, step=number)
        tracker.set_tags(job.parent_run_id, {"tuner.n_complete": n, "tuner.best_trial": number})

    return op, lambda: counting.locked


def worker_main(job: Job, barrier: Any, queue: Any) -> None:
    result = WorkerResult()
    # MlflowClient prints run links to stdout after every run over HTTP: keep them (and their
    # cost) but out of the report.
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    try:
        quiet()
        op, hidden = (_mlflow_op if job.backend.startswith("mlflow") else _optuna_op)(job)
    except Exception as exc:
        result.setup_error = failure_kind(exc)
        with contextlib.suppress(Exception):
            barrier.abort()
        queue.put(result)
        return
    barrier.wait()
    result.started = time.monotonic()
    deadline = result.started + job.seconds
    n = 0
    while time.monotonic() < deadline and (job.max_ops is None or n < job.max_ops):
        t = time.perf_counter()
        try:
            op(n)
            result.latencies.append(time.perf_counter() - t)
        except Exception as exc:
            kind = failure_kind(exc)
            result.failures[kind] = result.failures.get(kind, 0) + 1
            result.failed_latencies.append(time.perf_counter() - t)
        n += 1
    result.ended = time.monotonic()
    result.hidden_locks = hidden()
    queue.put(result)


# ------------------------------------------------------------------------------ stores


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    import psycopg

    name = f"bench_storage_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.format(db=name)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def mlflow_server(folder: Path, server_workers: int) -> Iterator[str]:
    """``mlflow server`` on a free loopback port over a fresh SQLite file; stopped after."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
        "--default-artifact-root", (folder / "artifacts").as_uri(),
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(server_workers),
    ]  # fmt: skip
    log = (folder / "server.log").open("wb")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen(  # its own process group (to stop), in this session (for the CPU)
        cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT, env=env, process_group=0
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                tail = (folder / "server.log").read_text(errors="replace")[-500:]
                raise RuntimeError(f"mlflow server exited ({proc.returncode}): {tail}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not answer /health within 180 s")
            time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # the server and its own workers
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def prepare_optuna(url: str) -> str:
    import optuna

    from tuner.study.storage import open_storage

    name = "bench_storage"
    optuna.create_study(study_name=name, storage=open_storage(url), direction="maximize")
    return name


def prepare_mlflow(url: str) -> tuple[str, str]:
    from tuner.tracking.mlflow_tracker import Tracker

    tracker = Tracker(url)  # for SQLite: creates the schema and sets WAL
    experiment_id = tracker.experiment_for_study("bench_storage")
    parent = tracker.open_parent_run(experiment_id, "bench_storage", None, tags={})
    return experiment_id, parent


# ------------------------------------------------------------------------------ measure


@dataclass
class Point:
    backend: str
    workers: int
    ops: int
    wall_s: float
    latencies: list[float]
    failures: dict[str, int]
    hidden_locks: int
    setup_errors: list[str]
    load_before: str

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def locked(self) -> int:
        return self.failures.get(LOCKED, 0)

    @property
    def per_s(self) -> float:
        return self.ops / self.wall_s if self.wall_s > 0 else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(
    ctx: multiprocessing.context.ForkServerContext,
    backend: str,
    n_workers: int,
    url: str,
    args: argparse.Namespace,
    **ids: str,
) -> Point:
    barrier = ctx.Barrier(n_workers + 1, timeout=600)
    queue = ctx.Queue()
    jobs = [Job(backend, url, i, args.seconds, args.ops, **ids) for i in range(n_workers)]
    procs = [ctx.Process(target=worker_main, args=(j, barrier, queue)) for j in jobs]
    for p in procs:
        p.start()
    load_before = load_average()
    with contextlib.suppress(Exception):  # broken by a worker that could not set up
        barrier.wait()
    started = time.monotonic()
    results: list[WorkerResult] = [queue.get(timeout=args.seconds + 900) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    ended = max((r.ended for r in results if r.ended), default=started)
    failures: collections.Counter[str] = collections.Counter()
    for r in results:
        failures.update(r.failures)
    return Point(
        backend=backend,
        workers=n_workers,
        ops=sum(len(r.latencies) for r in results),
        wall_s=ended - started,
        latencies=[x for r in results for x in r.latencies],
        failures=dict(failures),
        hidden_locks=sum(r.hidden_locks for r in results),
        setup_errors=[r.setup_error for r in results if r.setup_error],
        load_before=load_before,
    )


def sweep(
    ctx: multiprocessing.context.ForkServerContext,
    backend: str,
    args: argparse.Namespace,
    tmp: Path,
) -> list[Point]:
    points = []
    for n in args.workers:
        folder = tmp / f"{backend}-{n}"
        folder.mkdir(parents=True)
        print(f"{backend}: {n} worker(s) ...", file=sys.stderr)
        if backend == "sqlite":
            url = f"sqlite:///{folder / 'study.db'}"
            point = measure(ctx, backend, n, url, args, study_name=prepare_optuna(url))
        elif backend == "postgres":
            with postgres_database() as url:
                point = measure(ctx, backend, n, url, args, study_name=prepare_optuna(url))
        elif backend == "mlflow":
            url = f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"
            exp, parent = prepare_mlflow(url)
            point = measure(ctx, backend, n, url, args, experiment_id=exp, parent_run_id=parent)
        else:
            with mlflow_server(folder, args.server_workers) as url:
                exp, parent = prepare_mlflow(url)
                point = measure(ctx, backend, n, url, args, experiment_id=exp, parent_run_id=parent)
        setup = f", setup: {point.setup_errors[0]}" if point.setup_errors else ""
        print(
            f"  {point.ops} ops in {point.wall_s:.1f} s ({point.per_s:.1f}/s), "
            f"{point.failed} failed{setup}",
            file=sys.stderr,
        )
        points.append(point)
    return points


# ------------------------------------------------------------------------------ report


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def ms(seconds: float) -> str:
    return f"{1000 * seconds:,.0f}" if seconds == seconds else "-"  # NaN: no operation


def report(backend: str, points: list[Point]) -> str:
    unit = "runs" if backend.startswith("mlflow") else "trials"
    header: tuple[str, ...] = (
        "workers",
        unit,
        f"{unit}/s",
        "p50 ms",
        "p95 ms",
        "max ms",
        "failures",
        f"'{LOCKED}'",
    )
    if backend == "mlflow":
        header += ("locks retried by Tracker",)
    header += ("load before",)
    rows = []
    for p in points:
        row: tuple[str, ...] = (
            str(p.workers),
            f"{p.ops:,}",
            f"{p.per_s:,.1f}",
            ms(p.pct(0.50)),
            ms(p.pct(0.95)),
            ms(max(p.latencies) if p.latencies else float("nan")),
            str(p.failed) + (f" (+{len(p.setup_errors)} setup)" if p.setup_errors else ""),
            str(p.locked),
        )
        if backend == "mlflow":
            row += (str(p.hidden_locks),)
        rows.append((*row, p.load_before.split()[0]))
    text = f"### {TITLES[backend]}\n\n" + table(rows, header)
    other = collections.Counter[str]()
    for p in points:
        other.update({k: v for k, v in p.failures.items() if k != LOCKED})
        other.update(p.setup_errors)
    if other:
        text += "\n\nother failures: " + "; ".join(f"{v} x {k}" for k, v in other.most_common(5))
    return text


def measure_all(args: argparse.Namespace, backends: list[str]) -> int:
    machine = machine_rows()
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(
        ["optuna", "sqlalchemy", "mlflow", "tuner.study.storage", "tuner.tracking.mlflow_tracker"]
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    results: dict[str, list[Point]] = {}
    try:
        for backend in backends:
            results[backend] = sweep(ctx, backend, args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("## Storage: trials and runs per second under concurrent workers\n")
    print(table(machine, ("machine", "")))
    limit = f"{args.seconds:g} s per point" + (
        f", at most {args.ops} per worker" if args.ops else ""
    )
    print(f"\n{limit}; latency is one whole operation (a trial's ask to tell, or one run).\n")
    for backend, points in results.items():
        print(report(backend, points))
        print()
    verdicts = []
    for backend in ("sqlite", "mlflow"):
        at4 = [p for p in results.get(backend, []) if p.workers == 4]
        if at4:
            p = at4[0]
            ok = p.failed == 0 and not p.setup_errors
            verdicts.append(ok)
            print(
                f"{'PASS' if ok else 'FAIL'} {TITLES[backend].split(':')[0]} with 4 workers: "
                f"{p.failed} failed operations ({p.locked} '{LOCKED}'), "
                f"{len(p.setup_errors)} workers failed to start (target: none)"
            )
    return 0 if all(verdicts) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, help="seconds per point (default 10; quick 4)")
    parser.add_argument("--ops", type=int, help="stop each worker after this many operations")
    parser.add_argument("--workers", help="worker counts to sweep (default 1,2,4,8; quick 1,4,8)")
    parser.add_argument(
        "--only", help=f"comma-separated backends among {', '.join(BACKENDS)} (default: all)"
    )
    parser.add_argument(
        "--server-workers", type=int, default=2, help="`mlflow server --workers` (default 2)"
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="niceness of this benchmark's scheduling group (negative, as root, on a shared "
        "machine: see bench_workers.py)",
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    args.seconds = args.seconds or (4.0 if args.quick else 10.0)
    args.workers = [
        int(x) for x in (args.workers or ("1,4,8" if args.quick else "1,2,4,8")).split(",")
    ]
    backends = args.only.split(",") if args.only else list(BACKENDS)
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(sorted(unknown))}")

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    quiet()
    restore = set_priority(args.nice) if args.nice else None
    try:
        return measure_all(args, backends)
    finally:
        if restore is not None:
            restore()


if __name__ == "__main__":
    sys.exit(main())
