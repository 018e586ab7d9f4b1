"""``tune run``, ``tune status``, ``tune best``, ``tune ui``, ``tune delete``."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from tuner.errors import StudyError
from tuner.study.storage import HEARTBEAT_GRACE, HEARTBEAT_INTERVAL
from tuner.study.workers import FAST_EXIT_ENV

STORAGE_HELP = "Study database URL (default: sqlite:///tuner.db here; env TUNE_STORAGE)."
TRACKING_HELP = "MLflow tracking URI (default: SQLite under ./mlruns; env MLFLOW_TRACKING_URI)."


def heartbeat_options(f: Any) -> Any:
    f = click.option(
        "--db-patience",
        type=click.FloatRange(min=0),
        default=60.0,
        show_default=True,
        help="Seconds a worker keeps retrying a study database that went away.",
    )(f)
    f = click.option(
        "--grace",
        type=click.IntRange(min=2),
        default=HEARTBEAT_GRACE,
        show_default=True,
        help="Seconds without a heartbeat before a worker's trial is failed and retried.",
    )(f)
    return click.option(
        "--heartbeat",
        type=click.IntRange(min=1),
        default=HEARTBEAT_INTERVAL,
        show_default=True,
        help="Seconds between a worker's heartbeats.",
    )(f)


@click.command()
@click.argument("space")
@click.option("--data", "data_path", help="Dataset root (Train/ and Test/); default: the space's.")
@click.option(
    "--val-data",
    help="Validate on this dataset (DIR/Train/<class> or DIR/<class>: say, writers you care "
    "about) instead of a split of Train; its classes must match.",
)
@click.option(
    "--writers-by-number",
    is_flag=True,
    help="Without writers.csv, take file n.png as writer n, so validation shares no writer "
    "with training (the course layout numbers files by writer).",
)
@click.option("--study-name", help="Default: the space's name.")
@click.option("--storage", help=STORAGE_HELP)
@click.option("--tracking-uri", help=TRACKING_HELP)
@click.option(
    "--sampler",
    type=click.Choice(["random", "tpe", "gp", "cmaes", "qmc"]),
    default="tpe",
    show_default=True,
    help="gp is Gaussian-process Bayesian optimisation.",
)
@click.option(
    "--pruner",
    type=click.Choice(["median", "hyperband", "none"]),
    help="Default: median; none with --sampler gp, which learns only from completed trials.",
)
@click.option("--seed", type=int, help="Seed for the sampler and the models (one worker).")
@click.option("--n-trials", type=click.IntRange(min=1), help="Total trials the study should have.")
@click.option(
    "--timeout",
    type=float,
    help="Seconds for this run: then no new trial starts, and a running one stops at the end "
    "of its epoch (kept as pruned).",
)
@click.option("--max-epochs", type=click.IntRange(min=1), help="Override the space's max epochs.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes on this machine, each with its share of the CPU threads (and one "
    "GPU each where there are several).",
)
@heartbeat_options
@click.option("--live/--no-live", default=True, help="Live trial table while it runs.")
def run(
    space: str,
    data_path: str | None,
    val_data: str | None,
    writers_by_number: bool,
    study_name: str | None,
    storage: str | None,
    tracking_uri: str | None,
    sampler: str,
    pruner: str | None,
    seed: int | None,
    n_trials: int | None,
    timeout: float | None,
    max_epochs: int | None,
    workers: int,
    heartbeat: int,
    grace: int,
    db_patience: float,
    live: bool,
) -> None:
    """Run (or resume) a study over SPACE: a name in search_spaces/ or a YAML file.

    Running the same command again resumes the study; --n-trials is the total it should have.
    """
    from rich.console import Console

    from tuner.space import load_space
    from tuner.study.components import default_pruner, pairing_advice
    from tuner.study.orchestrate import StudySettings
    from tuner.study.storage import resolve_storage_url
    from tuner.tracking.mlflow_tracker import resolve_tracking_uri

    search_space = load_space(space)
    if max_epochs is not None:
        search_space = dataclasses.replace(
            search_space,
            training=dataclasses.replace(search_space.training, max_epochs=max_epochs),
        )
    console = Console()
    if pruner is None:
        pruner = default_pruner(sampler)
    elif advice := pairing_advice(sampler, pruner):
        console.print(f"[yellow]note:[/yellow] {advice}")
    settings = StudySettings(
        space=search_space,
        storage_url=resolve_storage_url(storage),
        tracking_uri=resolve_tracking_uri(tracking_uri),
        study_name=study_name,
        sampler=sampler,
        pruner=pruner,
        seed=seed,
        n_trials=n_trials,
        timeout=timeout,
        data=str(Path(data_path).expanduser().resolve()) if data_path else None,
        val_data=str(Path(val_data).expanduser().resolve()) if val_data else None,
        writers_by_number=writers_by_number,
        heartbeat_interval=heartbeat,
        grace_period=max(grace, 2 * heartbeat),
        storage_patience_s=db_patience,
    )
    if workers > 1:
        _run_parallel(console, settings, workers, data_path, live)
    else:
        _run_here(console, settings, data_path, live, owns_parent_run=True)


@click.command()
@click.argument("study_name")
@click.option("--storage", help=STORAGE_HELP)
@click.option("--tracking-uri", help=TRACKING_HELP)
@click.option("--data", "data_path", help="Dataset root on this machine (default: the study's).")
@click.option("--seed", type=int, help="Seed for this worker's sampler and models.")
@click.option(
    "--timeout",
    type=float,
    help="Seconds for this run: then no new trial starts, and a running one stops at the end "
    "of its epoch (kept as pruned).",
)
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for TensorFlow.")
@heartbeat_options
@click.option("--live/--no-live", default=True, help="Live trial table while it runs.")
def worker(
    study_name: str,
    storage: str | None,
    tracking_uri: str | None,
    data_path: str | None,
    seed: int | None,
    timeout: float | None,
    threads: int | None,
    heartbeat: int,
    grace: int,
    db_patience: float,
    live: bool,
) -> None:
    """Join STUDY_NAME (made by `tune run`) from this terminal or another machine; stops when
    the study's trial budget is spent."""
    from rich.console import Console

    from tuner.study.orchestrate import settings_from_study
    from tuner.study.storage import resolve_storage_url
    from tuner.study.workers import configure_threads
    from tuner.tracking.mlflow_tracker import resolve_tracking_uri

    configure_threads(threads)
    settings = settings_from_study(
        resolve_storage_url(storage),
        study_name,
        resolve_tracking_uri(tracking_uri),
        data=str(Path(data_path).expanduser().resolve()) if data_path else None,
        seed=seed,
        timeout=timeout,
        heartbeat_interval=heartbeat,
        grace_period=max(grace, 2 * heartbeat),
    )
    settings.storage_patience_s = db_patience
    _run_here(Console(), settings, settings.data, live, owns_parent_run=False)
    if os.environ.get(FAST_EXIT_ENV) == "1":
        # A worker started by `tune run --workers`: its study is done and every write is
        # committed; skip the seconds TensorFlow takes to tear down at interpreter exit.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _quiet_optuna() -> None:
    """Optuna resets its logger to INFO when first imported, and TensorFlow prints start-up
    lines; our own lines say it better."""
    import optuna

    from tuner.models.quiet import import_tensorflow_quietly

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import_tensorflow_quietly()
    _quiet_heartbeat_thread()


def _quiet_heartbeat_thread() -> None:
    """Optuna's heartbeat thread dies with a traceback when the database goes away; the worker
    itself reports the outage in one line (and retries), so say nothing more here."""
    import threading

    default = threading.excepthook

    def hook(args: Any) -> None:
        if args.thread is not None and "_record_heartbeat" in args.thread.name:
            return
        default(args)

    threading.excepthook = hook


def _run_here(
    console: Any, settings: Any, data_path: str | None, live: bool, *, owns_parent_run: bool
) -> None:
    """One worker in this process, with the live view fed by its own trials."""
    _quiet_optuna()
    from tuner.study.data_source import load_for_space
    from tuner.study.orchestrate import budget_used, open_study, run_study
    from tuner.study.progress import LiveView

    study = open_study(settings)  # validates the space against a stored study before any work
    done_before = budget_used(study)
    if done_before >= settings.total_trials:
        _print_finished(console, settings.name, study, settings.total_trials)
        return
    data = load_for_space(
        settings.space,
        data_path,
        val_data=settings.val_data,
        writers_by_number=settings.writers_by_number,
        seed=0,  # the validation split is the study's, the same for every worker and seed
        notify=lambda m: console.print(f"[dim]{m}[/dim]"),
    )
    _print_start(console, settings, done_before, data.base)
    view = LiveView.for_study(settings, done_before, console)
    with view if live else contextlib.nullcontext(view):
        outcome = run_study(settings, data, observers=[view], owns_parent_run=owns_parent_run)
    _print_outcome(console, settings, outcome.counts, outcome.ran, outcome.elapsed_s,
                   outcome.interrupted, outcome.best_number, outcome.best_value)  # fmt: skip


def _run_parallel(
    console: Any, settings: Any, n_workers: int, data_path: str | None, live: bool
) -> None:
    """N worker processes on one study; this process only prepares it and watches."""
    _quiet_optuna()
    import time

    from tuner.study.data_source import load_for_space
    from tuner.study.orchestrate import (
        best_trial,
        budget_used,
        open_study,
        prepare_study,
        primary_value,
        state_counts,
    )
    from tuner.study.progress import LiveView
    from tuner.study.workers import failed_workers, launch_workers, watch_workers
    from tuner.tracking.mlflow_tracker import Tracker

    started = time.perf_counter()
    study = open_study(settings)
    done_before = budget_used(study)
    if done_before >= settings.total_trials:
        _print_finished(console, settings.name, study, settings.total_trials)
        return
    tracker = Tracker(settings.tracking_uri)
    study, _, parent_run_id = prepare_study(settings, tracker)
    # Build the data cache (and the default dataset) once, before the workers read it.
    data = load_for_space(
        settings.space,
        data_path,
        val_data=settings.val_data,
        writers_by_number=settings.writers_by_number,
        notify=lambda m: console.print(f"[dim]{m}[/dim]"),
    )
    _print_start(console, settings, done_before, data.base, n_workers)
    log_dir = Path("tune-out") / settings.name / "workers"
    workers = launch_workers(settings, n_workers, log_dir, data=str(data.base.root))
    view = LiveView.for_study(settings, done_before, console)
    with view if live else contextlib.nullcontext(view):
        interrupted = watch_workers(workers, study, view.sync)
    used = budget_used(study)
    tracker.end_run(parent_run_id, "KILLED" if interrupted else "FINISHED")
    for index, code, last in failed_workers(workers):
        console.print(f"[red]worker {index} exited with {code}[/red]: {last} (log in {log_dir})")
    best = best_trial(study)
    best_value = primary_value(best) if best else None
    _print_outcome(console, settings, state_counts(study), used - done_before,
                   time.perf_counter() - started, interrupted,
                   best.number if best else None, best_value)  # fmt: skip


def _print_start(
    console: Any, settings: Any, done_before: int, data: Any, n_workers: int = 1
) -> None:
    workers = f", {n_workers} workers" if n_workers > 1 else ""
    console.print(
        f"study [bold]{settings.name}[/bold]: {done_before}/{settings.total_trials} trials done, "
        f"sampler {settings.sampler}, pruner {settings.pruner}{workers}; data {data.root} "
        f"({len(data.classes)} classes, {len(data.train.labels)} train / "
        f"{len(data.val.labels)} val images)"
    )


def _print_outcome(
    console: Any,
    settings: Any,
    counts: dict[str, int],
    ran: int,
    elapsed_s: float,
    interrupted: bool,
    best_number: int | None,
    best_value: float | None,
) -> None:
    summary = ", ".join(f"{v} {k.lower()}" for k, v in sorted(counts.items()))
    if interrupted:
        console.print(
            f"[magenta]Interrupted.[/magenta] The running trial is recorded as interrupted "
            f"({summary}). Run the same command to resume."
        )
        sys.exit(130)
    console.print(f"ran {ran} trials in {elapsed_s / 60:.1f} min ({summary})")
    if best_number is not None and best_value is not None:
        console.print(
            f"best: trial {best_number}, {settings.space.objective.metric} {best_value:.4f}"
        )
    console.print(
        f"next: [bold]tune best {settings.name}[/bold]  |  [bold]tune status[/bold]  |  "
        f"[bold]tune ui[/bold] (MLflow: compare trials, overlay learning curves)"
    )


def _print_finished(console: Any, name: str, study: Any, total: int) -> None:
    from tuner.study.orchestrate import best_trial, primary_value

    best = best_trial(study)
    console.print(
        f"study [bold]{name}[/bold] is finished: it has its {total} trials "
        f"(ask for more with --n-trials N)."
    )
    if best is not None:
        console.print(
            f"best: trial {best.number}, value {primary_value(best):.4f}, params {best.params}"
        )


@click.command()
@click.option("--storage", help=STORAGE_HELP)
def status(storage: str | None) -> None:
    """List the studies in the database with trial counts by state and the best value."""
    from rich.console import Console
    from rich.table import Table

    from tuner.study.results import list_studies
    from tuner.study.storage import resolve_storage_url

    rows = list_studies(resolve_storage_url(storage))
    console = Console()
    if not rows:
        console.print("no studies yet: start one with  tune run casia_cnn")
        return
    table = Table(title="studies")
    for col in ("study", "budget", "complete", "pruned", "fail", "interrupted", "running", "best"):
        table.add_column(col, justify="left" if col == "study" else "right")
    for r in rows:
        c = r.counts
        table.add_row(
            r.name,
            str(r.n_trials or ""),
            str(c.get("COMPLETE", 0)),
            str(c.get("PRUNED", 0)),
            str(c.get("FAIL", 0)),
            str(c.get("INTERRUPTED", 0)),
            str(c.get("RUNNING", 0)),
            "" if r.best_value is None else f"{r.best_value:.4f} (#{r.best_number})",
        )
    console.print(table)


@click.command()
@click.argument("study_name")
@click.option("--storage", help=STORAGE_HELP)
@click.option("--tracking-uri", help=TRACKING_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def best(study_name: str, storage: str | None, tracking_uri: str | None, as_json: bool) -> None:
    """The best trial of STUDY_NAME: its params and metrics."""
    from tuner.study.results import best_trial_report
    from tuner.study.storage import resolve_storage_url
    from tuner.tracking.mlflow_tracker import resolve_tracking_uri

    report = best_trial_report(
        resolve_storage_url(storage), study_name, resolve_tracking_uri(tracking_uri)
    )
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"study [bold]{study_name}[/bold]: best trial {report['number']} "
        f"({report['metric']} {report['value']:.4f}), MLflow run {report.get('mlflow_run_id', '')}"
    )
    table = Table(show_header=True)
    table.add_column("param")
    table.add_column("value")
    for k, v in report["params"].items():
        table.add_row(k, str(v))
    console.print(table)
    if report["pareto_front"]:
        front = Table(title=f"Pareto front ({', '.join(report['directions'])})")
        front.add_column("trial", justify="right")
        front.add_column("values")
        front.add_column("params")
        for t in report["pareto_front"]:
            front.add_row(
                str(t["number"]),
                ", ".join(f"{v:.4g}" for v in t["values"]),
                " ".join(f"{k}={v}" for k, v in t["params"].items()),
            )
        console.print(front)
    if report.get("metrics"):
        console.print(
            "metrics: " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(report["metrics"].items()))
        )


@click.command()
@click.option("--tracking-uri", help=TRACKING_HELP)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def ui(tracking_uri: str | None, host: str, port: int) -> None:
    """Start the MLflow UI on the project's tracking store (Ctrl-C stops it)."""
    from tuner.tracking.mlflow_tracker import artifact_root_for, resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    cmd = [
        sys.executable, "-m", "mlflow", "ui",
        "--backend-store-uri", uri, "--host", host, "--port", str(port),
    ]  # fmt: skip
    root = artifact_root_for(uri)
    if root:
        cmd += ["--default-artifact-root", root]
    click.echo(f"MLflow UI on http://{host}:{port}  (store {uri}); Ctrl-C stops it")
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how the user stops it
        subprocess.run(cmd, check=False, env={**os.environ})


@click.command()
@click.argument("study_name")
@click.option("--storage", help=STORAGE_HELP)
@click.option("--yes", is_flag=True, help="Do not ask.")
def delete(study_name: str, storage: str | None, yes: bool) -> None:
    """Delete STUDY_NAME from the study database (its MLflow runs are kept)."""
    import optuna

    from tuner.study.storage import open_storage, resolve_storage_url

    url = resolve_storage_url(storage)
    if not yes:
        click.confirm(f"delete study {study_name!r} from {url}?", abort=True)
    try:
        optuna.delete_study(study_name=study_name, storage=open_storage(url, heartbeat=False))
    except KeyError:
        raise StudyError(f"no study {study_name!r} in {url}: see `tune status`") from None
    click.echo(f"deleted study {study_name}; its MLflow runs are kept")
