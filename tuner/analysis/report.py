"""``tune report``: Optuna's matplotlib plots of a study, its trials as CSV, a Markdown summary.

Files written to the output folder (and logged to the study's MLflow parent run under
``report/``):

============================  =============================================================
optimization_history.png      objective per trial and best so far
intermediate_values.png       the objective per epoch of every trial (learning curves)
param_importances.png         fANOVA importances (needs 2 or more completed trials)
parallel_coordinate.png       each trial's parameters as a line, coloured by objective
slice.png                     objective against each parameter
trials.csv                    ``study.trials_dataframe()``
summary.md                    best trial, counts by state, top 5 trials, the plots
============================  =============================================================

A plot that cannot be drawn (too few trials, no parameters that vary) is skipped, and the
summary says why.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuner.analysis import plots
from tuner.analysis.fonts import plot_style
from tuner.analysis.source import load_context, mlflow_log_folder
from tuner.study.orchestrate import (
    ATTR_N_TRIALS,
    best_trial,
    pareto_front,
    primary_value,
    state_counts,
)

if TYPE_CHECKING:
    import optuna

TOP = 5


@dataclass
class ReportResult:
    study: str
    out: Path
    files: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # plot -> why
    counts: dict[str, int] = field(default_factory=dict)
    best_number: int | None = None
    best_value: float | None = None
    logged_run_id: str | None = None
    log_problem: str | None = None


def _figure_of(axes: Any) -> Any:
    import numpy as np

    first = np.ravel(np.asarray(axes, dtype=object))[0] if not hasattr(axes, "figure") else axes
    return first.figure


def _tidy(fig: Any, name: str, n_params: int) -> None:
    """Readable log axes (no crowded minor labels); room for every parallel-coordinate axis."""
    from matplotlib.ticker import NullFormatter

    for ax in fig.axes:
        if ax.get_xscale() == "log":
            ax.xaxis.set_minor_formatter(NullFormatter())
        if ax.get_yscale() == "log":
            ax.yaxis.set_minor_formatter(NullFormatter())
    if name == "parallel_coordinate":
        fig.set_size_inches(max(6.4, 1.3 * (n_params + 1) + 2.0), 5.0)


def objective_names(study: optuna.Study, metric: str) -> list[str]:
    """The study's objectives by metric name (the first is ``metric``)."""
    space = study.user_attrs.get("space", {})
    objective = space.get("objective") if isinstance(space, dict) else None
    if isinstance(objective, list) and len(objective) == len(study.directions):
        return [str(o.get("metric", f"objective {i}")) for i, o in enumerate(objective)]
    return [metric] + [f"objective {i}" for i in range(1, len(study.directions))]


def _plots(study: optuna.Study, metric: str) -> dict[str, Callable[[], Any]]:
    import optuna.visualization.matplotlib as vis

    # Multi-objective studies: the per-parameter plots show the first objective.
    target = (lambda t: t.values[0]) if len(study.directions) > 1 else None
    plots = {
        "optimization_history": lambda: vis.plot_optimization_history(
            study, target=target, target_name=metric
        ),
        "intermediate_values": lambda: vis.plot_intermediate_values(study),
        "param_importances": lambda: vis.plot_param_importances(
            study, target=target, target_name=metric
        ),
        "parallel_coordinate": lambda: vis.plot_parallel_coordinate(
            study, target=target, target_name=metric
        ),
        "slice": lambda: vis.plot_slice(study, target=target, target_name=metric),
    }
    if len(study.directions) > 1:
        names = objective_names(study, metric)
        plots["pareto_front"] = lambda: vis.plot_pareto_front(study, target_names=names)
    return plots


def _why_not(name: str, complete: int, intermediate: bool) -> str | None:
    if name == "param_importances" and complete < 2:
        return f"needs at least 2 completed trials (the study has {complete})"
    if name in ("parallel_coordinate", "slice", "optimization_history") and complete < 1:
        return "needs a completed trial"
    if name == "intermediate_values" and not intermediate:
        return "no trial reported per-epoch values"
    return None


def write_plots(
    study: optuna.Study, out: Path, metric: str
) -> tuple[dict[str, Path], dict[str, str]]:
    """Optuna's matplotlib plots as PNG files; (files, skipped plots with the reason)."""
    import matplotlib.pyplot as plt
    import optuna
    from optuna.trial import TrialState

    files: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    trials = study.get_trials(deepcopy=False)
    complete = sum(t.state == TrialState.COMPLETE for t in trials)
    intermediate = any(t.intermediate_values for t in trials)
    n_params = len({k for t in trials if t.state == TrialState.COMPLETE for k in t.params})
    labels = [study.study_name, metric]
    with plot_style(labels), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)
        for name, draw in _plots(study, metric).items():
            reason = _why_not(name, complete, intermediate)
            if reason is not None:
                skipped[name] = reason
                continue
            try:
                fig = _figure_of(draw())
            except Exception as exc:  # e.g. importances when no parameter varies
                text = str(exc).strip().splitlines()
                skipped[name] = f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
                plt.close("all")
                continue
            _tidy(fig, name, n_params)
            files[name] = plots.save(fig, out / f"{name}.png", tight=True)
            plt.close(fig)
    return files, skipped


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value).replace("|", "\\|")


def summary_markdown(
    study: optuna.Study, metric: str, files: dict[str, Path], skipped: dict[str, str]
) -> str:
    from optuna.trial import TrialState

    counts = state_counts(study)
    best = best_trial(study)
    direction = study.directions[0].name.lower()
    budget = study.user_attrs.get(ATTR_N_TRIALS)
    lines = [f"# Study `{study.study_name}`", ""]
    lines.append(f"- objective: **{metric}** ({direction})")
    counted = ", ".join(f"{v} {k.lower()}" for k, v in sorted(counts.items())) or "no trials"
    lines.append(f"- trials: {counted}" + (f" (budget {budget})" if budget else ""))
    if best is not None:
        run = best.user_attrs.get("mlflow_run_id", "")
        lines.append(
            f"- best: trial {best.number}, {metric} **{_fmt(primary_value(best))}**"
            + (f", MLflow run `{run}`" if run else "")
        )
        lines += ["", "## Best parameters", "", "| parameter | value |", "| --- | --- |"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in best.params.items()]
    else:
        lines.append("- best: none yet (no completed trial)")
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    complete.sort(
        key=lambda t: primary_value(t) or 0.0, reverse=study.directions[0].name == "MAXIMIZE"
    )
    if complete:
        names = sorted({k for t in complete[:TOP] for k in t.params})
        lines += ["", f"## Top {min(TOP, len(complete))} trials", ""]
        lines.append("| trial | " + metric + " | epochs | seconds | " + " | ".join(names) + " |")
        lines.append("| --- " * (4 + len(names)) + "|")
        for t in complete[:TOP]:
            seconds = t.duration.total_seconds() if t.duration else None
            cells = [
                str(t.number),
                _fmt(primary_value(t)),
                _fmt(t.user_attrs.get("epochs")),
                _fmt(seconds),
                *(_fmt(t.params.get(n)) for n in names),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    if len(study.directions) > 1:
        names = objective_names(study, metric)
        front = pareto_front(study)
        lines += ["", f"## Pareto front ({len(front)} trials)", ""]
        lines.append("| trial | " + " | ".join(names) + " |")
        lines.append("| --- " * (1 + len(names)) + "|")
        lines += [
            "| " + " | ".join([str(t.number), *(_fmt(v) for v in t.values)]) + " |" for t in front
        ]
    lines += ["", "## Plots", ""]
    lines += [f"![{name}]({path.name})" for name, path in files.items() if path.suffix == ".png"]
    for name, why in skipped.items():
        lines.append(f"- {name}: not drawn, {why}")
    lines += ["", "All trials: [trials.csv](trials.csv)", ""]
    return "\n".join(lines)


def write_report(
    storage_url: str,
    study_name: str,
    out: Path | None = None,
    tracking_uri: str | None = None,
    *,
    log: bool = True,
) -> ReportResult:
    ctx = load_context(storage_url, study_name, tracking_uri, need_best=False)
    study = ctx.study
    out = out or ctx.default_out("report")
    out.mkdir(parents=True, exist_ok=True)
    files, skipped = write_plots(study, out, ctx.metric)
    frame = study.trials_dataframe()
    files["trials"] = out / "trials.csv"
    frame.to_csv(files["trials"], index=False)
    files["summary"] = out / "summary.md"
    files["summary"].write_text(
        summary_markdown(study, ctx.metric, files, skipped), encoding="utf-8"
    )
    best = best_trial(study)
    result = ReportResult(
        study=study_name,
        out=out,
        files=files,
        skipped=skipped,
        counts=state_counts(study),
        best_number=best.number if best else None,
        best_value=primary_value(best) if best else None,
    )
    if log:
        result.log_problem = mlflow_log_folder(ctx.tracking_uri, ctx.parent_run_id, out, "report")
        if result.log_problem is None:
            result.logged_run_id = ctx.parent_run_id
    return result
