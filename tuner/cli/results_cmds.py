"""``tune evaluate``, ``export``, ``predict``, ``report``, ``compare-samplers``, ``dashboard``:
from a finished study to answers. The work is in :mod:`tuner.analysis`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from tuner.cli.study_cmds import STORAGE_HELP, TRACKING_HELP

if TYPE_CHECKING:
    from rich.console import Console

OUT_TYPE = click.Path(file_okay=False, path_type=Path)


@click.command()
@click.argument("study_name")
@click.option(
    "--data",
    "data_path",
    help="Dataset root whose Test/ to evaluate on; default: the study's dataset.",
)
@click.option("--storage", help=STORAGE_HELP)
@click.option("--tracking-uri", help=TRACKING_HELP)
@click.option(
    "--out", type=OUT_TYPE, help="Folder for the files (default tune-out/STUDY/evaluate)."
)
@click.option(
    "--retrain",
    is_flag=True,
    help="Train the best configuration on train+validation first, instead of using its model.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for --retrain.")
@click.option("--log/--no-log", default=True, help="Log the files to the study's MLflow run.")
@click.option(
    "--writers-by-number",
    is_flag=True,
    help="Without writers.csv: file n.png in every class folder is writer n (the course layout).",
)
def evaluate(
    study_name: str,
    data_path: str | None,
    storage: str | None,
    tracking_uri: str | None,
    out: Path | None,
    retrain: bool,
    seed: int,
    log: bool,
    writers_by_number: bool,
) -> None:
    """Evaluate STUDY_NAME's best model on the test split, with an error analysis.

    Shows test loss, accuracy and top-5 accuracy beside the validation accuracy (the gap is the
    "writer gap"), the most confused pairs, the writers read worst (where writers are known),
    and writes per-character and per-writer accuracy, confusions and plots to --out.
    """
    from rich.console import Console
    from rich.table import Table

    from tuner.analysis.evaluate import evaluate_study
    from tuner.study.storage import resolve_storage_url

    console = Console()
    result = evaluate_study(
        resolve_storage_url(storage),
        study_name,
        tracking_uri,
        data=data_path,
        out=out,
        retrain=retrain,
        seed=seed,
        log=log,
        writers_by_number=writers_by_number,
        notify=lambda m: console.print(f"[dim]{m}[/dim]"),
    )
    model = "retrained best configuration" if result.retrained else "logged model"
    console.print(
        f"study [bold]{study_name}[/bold], trial {result.trial} ({model}) on {result.data_root}: "
        f"{result.test.n} test images, {result.n_classes} classes"
    )
    table = Table(show_header=True)
    for col in ("", "accuracy", "top-5 accuracy", "loss"):
        table.add_column(col, justify="left" if not col else "right")
    if result.val_accuracy is not None:
        table.add_row("validation (during the study)", f"{result.val_accuracy:.4f}", "", "")
    t = result.test
    table.add_row("test", f"{t.accuracy:.4f}", f"{t.top5_accuracy:.4f}", f"{t.loss:.4f}")
    console.print(table)
    if result.writer_gap is not None:
        console.print(
            f"writer gap (validation - test accuracy): [bold]{result.writer_gap:+.4f}[/bold]"
        )
    if result.confusions:
        console.print("most confused pairs (true → predicted):")
        for c in result.confusions[:10]:
            console.print(f"  {c.true} → {c.predicted}  {c.count:4d}  ({c.rate:.0%} of {c.true})")
    else:
        console.print("no mistakes on the test set")
    worst = [r for r in result.per_class[:10] if r.accuracy < 1.0]
    if worst:
        console.print("least legible: " + "  ".join(f"{r.cls} {r.accuracy:.0%}" for r in worst))
    if result.per_writer:
        rows = result.per_writer
        lowest, highest = rows[0].accuracy, rows[-1].accuracy
        console.print(
            f"{len(rows)} writers, accuracy from {lowest:.0%} to {highest:.0%}; read worst: "
            + "  ".join(f"{r.writer} {r.accuracy:.0%}" for r in rows[:5])
        )
    console.print(f"files in {result.out}")
    _print_logging(console, result.logged_run_id, result.log_problem, log)


def _print_logging(console: Console, run_id: str | None, problem: str | None, log: bool) -> None:
    if not log:
        return
    if run_id:
        console.print(f"logged to the study's MLflow run {run_id}")
    elif problem:
        console.print(f"[yellow]not logged to MLflow ({problem}); the files are on disk[/yellow]")


@click.command()
@click.argument("study_name")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The .keras file to write (default tune-out/STUDY/STUDY.keras); FILE.json beside it.",
)
@click.option("--storage", help=STORAGE_HELP)
@click.option("--tracking-uri", help=TRACKING_HELP)
@click.option("--model-name", help="Registered model name in MLflow (default: the study name).")
@click.option("--register/--no-register", default=True, help="Register in MLflow's registry.")
def export(
    study_name: str,
    out: Path | None,
    storage: str | None,
    tracking_uri: str | None,
    model_name: str | None,
    register: bool,
) -> None:
    """Write STUDY_NAME's best model to one .keras file and register it in MLflow.

    Class names and preprocessing go inside the .keras file (tuner.json) and beside it
    (FILE.json); `tune predict FILE.keras IMAGE...` uses them.
    """
    from tuner.analysis.export import export_best
    from tuner.analysis.source import DEFAULT_OUT
    from tuner.study.storage import resolve_storage_url

    target = out or DEFAULT_OUT / study_name / f"{study_name}.keras"
    result = export_best(
        resolve_storage_url(storage),
        study_name,
        target,
        tracking_uri,
        register=register,
        model_name=model_name,
    )
    meta = result.meta
    pp = meta.get("preprocessing", {})
    click.echo(
        f"exported trial {result.trial} of {study_name} ({len(meta['classes'])} classes, "
        f"input {pp.get('height')}x{pp.get('width')}) to {result.path}; metadata in "
        f"{result.sidecar} and inside the .keras file"
    )
    if result.registered_name:
        click.echo(
            f"registered in MLflow as {result.registered_name!r} version "
            f"{result.registered_version} (source runs:/{result.run_id}/model)"
        )
    elif register and result.register_problem:
        click.secho(f"not registered in MLflow ({result.register_problem})", fg="yellow")
    click.echo(f"next: tune predict {result.path} IMAGE...")


@click.command()
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--top", "k", type=click.IntRange(1, 50), default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def predict(model: Path, images: tuple[Path, ...], k: int, as_json: bool) -> None:
    """The top characters, with probabilities, for each image (files or folders).

    MODEL is a file written by `tune export` (or a trial's downloaded model/ folder); images
    are preprocessed as in training.
    """
    import json

    from tuner.analysis.export import predict_files

    results = predict_files(model, list(images), k)
    if as_json:
        data = [
            {"image": str(r.path), "top": [{"class": c, "probability": p} for c, p in r.top]}
            for r in results
        ]
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    for r in results:
        ranked = "  ".join(f"{c} {p:.1%}" for c, p in r.top)
        click.echo(f"{r.path}: {ranked}")


@click.command()
@click.argument("study_name")
@click.option("--out", type=OUT_TYPE, help="Folder for the files (default tune-out/STUDY/report).")
@click.option("--storage", help=STORAGE_HELP)
@click.option("--tracking-uri", help=TRACKING_HELP)
@click.option("--log/--no-log", default=True, help="Log the files to the study's MLflow run.")
def report(
    study_name: str, out: Path | None, storage: str | None, tracking_uri: str | None, log: bool
) -> None:
    """Plots of STUDY_NAME (history, importances, parallel coordinates, slices), its trials
    as CSV and a Markdown summary."""
    from rich.console import Console

    from tuner.analysis.report import write_report
    from tuner.study.storage import resolve_storage_url

    console = Console()
    result = write_report(resolve_storage_url(storage), study_name, out, tracking_uri, log=log)
    counts = ", ".join(f"{v} {k.lower()}" for k, v in sorted(result.counts.items()))
    console.print(f"study [bold]{study_name}[/bold]: {counts or 'no trials'}")
    if result.best_number is not None:
        console.print(f"best: trial {result.best_number}, value {result.best_value:.4f}")
    for name, path in result.files.items():
        console.print(f"  {name}: {path}")
    for name, why in result.skipped.items():
        console.print(f"  [yellow]{name}: not drawn, {why}[/yellow]")
    _print_logging(console, result.logged_run_id, result.log_problem, log)


@click.command("compare-samplers")
@click.argument("space")
@click.option(
    "--samplers",
    default="random,tpe,gp",
    show_default=True,
    help="Comma-separated: random, tpe, gp, cmaes, qmc.",
)
@click.option("--n-trials", type=click.IntRange(min=1), required=True, help="Trials per study.")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--data", "data_path", help="Dataset root; default: the space's.")
@click.option("--max-epochs", type=click.IntRange(min=1), help="Override the space's max epochs.")
@click.option(
    "--pruner",
    type=click.Choice(["median", "hyperband", "none"]),
    default="none",
    show_default=True,
    help="none compares the samplers alone.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the first repeat.")
@click.option("--tracking-uri", help="MLflow tracking URI (default: SQLite under OUT/mlruns).")
@click.option("--out", type=OUT_TYPE, required=True, help="Folder for the studies and results.")
def compare_samplers_cmd(
    space: str,
    samplers: str,
    n_trials: int,
    repeats: int,
    data_path: str | None,
    max_epochs: int | None,
    pruner: str,
    seed: int,
    tracking_uri: str | None,
    out: Path,
) -> None:
    """Run SPACE with the same budget under each sampler, --repeats times with other seeds,
    and plot best-so-far against trials and wall time.

    Running it again resumes the comparison.
    """
    from rich.console import Console

    from tuner.analysis.compare import compare_samplers, parse_samplers, with_max_epochs
    from tuner.space import load_space
    from tuner.study.data_source import load_for_space
    from tuner.tracking.mlflow_tracker import resolve_tracking_uri

    console = Console()
    names = parse_samplers(samplers)
    search_space = with_max_epochs(load_space(space), max_epochs)
    data = load_for_space(
        search_space, data_path, seed=seed, notify=lambda m: console.print(f"[dim]{m}[/dim]")
    )
    result = compare_samplers(
        search_space,
        names,
        n_trials,
        repeats,
        data,
        out,
        tracking_uri=resolve_tracking_uri(tracking_uri) if tracking_uri else None,
        pruner=pruner,
        seed=seed,
        data_spec=str(Path(data_path).expanduser().resolve()) if data_path else None,
        notify=lambda m: console.print(f"[dim]{m}[/dim]"),
    )
    console.print(f"best {result.metric} after {n_trials} trials (mean over {repeats} repeats):")
    for sampler, group in result.by_sampler().items():
        finals = [c.final for c in group]
        shown = ", ".join(f"{v:.4f}" for v in finals)
        console.print(f"  {sampler:8s} {sum(finals) / len(finals):.4f}  ({shown})")
    for name, path in result.files.items():
        console.print(f"  {name}: {path}")


@click.command()
@click.option("--storage", help=STORAGE_HELP)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but loopback exposes the studies to the network.",
)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
def dashboard(storage: str | None, host: str, port: int) -> None:
    """Start optuna-dashboard on the study database (Ctrl-C stops it)."""
    from tuner.analysis.dashboard import LOOPBACK, address, make_server, serve
    from tuner.study.storage import redact, resolve_storage_url

    url = resolve_storage_url(storage)
    server = make_server(url, host, port)
    if host not in LOOPBACK:
        click.secho(
            f"warning: listening on {host}: anyone who can reach it can read and change the "
            "studies (there is no login)",
            fg="yellow",
            err=True,
        )
    click.echo(
        f"Optuna dashboard on {address(server)}  (studies in {redact(url)}); Ctrl-C stops it"
    )
    serve(server)
    click.echo("dashboard stopped")


COMMANDS = (evaluate, export, predict, report, compare_samplers_cmd, dashboard)
