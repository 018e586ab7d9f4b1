"""The live view of a running study (rich), fed by trial-runner hooks and Optuna callbacks."""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    import optuna

    from tuner.study.orchestrate import StudySettings

KEY_PARAMS = (
    "n_blocks",
    "filters_1",
    "kernel_size",
    "pooling",
    "dense_units",
    "dropout",
    "learning_rate",
    "batch_size",
    "optimizer",
    "l2",
)
STATE_STYLE = {
    "RUNNING": "cyan",
    "COMPLETE": "green",
    "PRUNED": "yellow",
    "FAIL": "red",
    "INTERRUPTED": "magenta",
}


@dataclass
class _Row:
    number: int
    params: dict[str, Any]
    state: str = "RUNNING"
    epochs: int = 0
    best: float | None = None
    started: float = field(default_factory=time.perf_counter)
    duration: float | None = None
    note: str = ""


def _utcnow(like: datetime.datetime) -> datetime.datetime:
    return datetime.datetime.now(like.tzinfo) if like.tzinfo else datetime.datetime.now()


def _fmt_param(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


class LiveView:
    """Trials with state, key params, best metric and epochs; the best so far; elapsed and ETA."""

    def __init__(
        self,
        study_name: str,
        metric: str,
        maximize: bool,
        total: int,
        done_before: int,
        console: Console | None = None,
        max_rows: int = 12,
    ) -> None:
        self.study_name = study_name
        self.metric = metric
        self.maximize = maximize
        self.total = total
        self.done = done_before
        self.done_before = done_before
        self.rows: dict[int, _Row] = {}
        self.best: tuple[int, float] | None = None
        self.started = time.perf_counter()
        self.max_rows = max_rows
        self.console = console or Console()
        self.live = Live(
            console=self.console,
            get_renderable=self.render,
            refresh_per_second=2,
            transient=False,
        )

    @classmethod
    def for_study(cls, settings: StudySettings, done_before: int, console: Console) -> LiveView:
        objective = settings.space.objective
        return cls(
            settings.name,
            objective.metric,
            objective.direction == "maximize",
            settings.total_trials,
            done_before,
            console=console,
        )

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    # Hooks -----------------------------------------------------------------------------
    def trial_started(self, number: int, params: dict[str, Any]) -> None:
        self.rows[number] = _Row(number, params)

    def epoch_ended(self, number: int, epoch: int, logs: dict[str, float]) -> None:
        row = self.rows.get(number)
        if row is None or self.metric not in logs:
            return
        row.epochs = epoch
        value = logs[self.metric]
        if row.best is None or (value > row.best if self.maximize else value < row.best):
            row.best = value

    def trial_finished(self, trial: optuna.trial.FrozenTrial) -> None:
        from tuner.study.orchestrate import primary_value

        row = self.rows.setdefault(trial.number, _Row(trial.number, dict(trial.params)))
        row.state = "INTERRUPTED" if trial.user_attrs.get("interrupted") else trial.state.name
        row.duration = time.perf_counter() - row.started
        row.note = str(trial.user_attrs.get("fail_reason", ""))[:60]
        if trial.state.name in ("COMPLETE", "PRUNED", "FAIL") and not trial.user_attrs.get(
            "interrupted"
        ):
            self.done += 1
        value = primary_value(trial)
        if trial.state.name == "COMPLETE" and value is not None:
            row.best = value
            self._offer_best(trial.number, value)

    def sync(self, trials: list[optuna.trial.FrozenTrial]) -> None:
        """Rebuild the view from the study's trials (several worker processes, polled)."""
        from tuner.study.orchestrate import counts_toward_budget, display_state, primary_value

        now = time.perf_counter()
        self.done = sum(counts_toward_budget(t) for t in trials)
        for t in trials:
            if t.state.name == "WAITING":
                continue
            row = self.rows.setdefault(t.number, _Row(t.number, dict(t.params)))
            row.params = dict(t.params)
            row.state = display_state(t)
            row.epochs = len(t.intermediate_values)
            values = list(t.intermediate_values.values())
            value = primary_value(t)
            if value is not None:
                row.best = value
            elif values:
                row.best = max(values) if self.maximize else min(values)
            if t.datetime_start is not None:
                end = t.datetime_complete
                seconds = ((end or _utcnow(t.datetime_start)) - t.datetime_start).total_seconds()
                row.started = now - seconds
                row.duration = seconds if end else None
            row.note = str(t.user_attrs.get("fail_reason", ""))[:60]
            worker = t.user_attrs.get("worker")
            if worker:
                row.note = f"{row.note} @{worker}".strip()
            if t.state.name == "COMPLETE" and value is not None:
                self._offer_best(t.number, value)

    def _offer_best(self, number: int, value: float) -> None:
        if self.best is None or (value > self.best[1] if self.maximize else value < self.best[1]):
            self.best = (number, value)

    # Rendering -------------------------------------------------------------------------
    def render(self) -> Group:
        table = Table(title=f"study {self.study_name}", expand=False, show_lines=False)
        table.add_column("#", justify="right")
        table.add_column("state")
        table.add_column(self.metric, justify="right")
        table.add_column("epochs", justify="right")
        table.add_column("time", justify="right")
        table.add_column("params")
        for row in sorted(self.rows.values(), key=lambda r: r.number)[-self.max_rows :]:
            elapsed = (
                row.duration if row.duration is not None else time.perf_counter() - row.started
            )
            params = " ".join(
                f"{k}={_fmt_param(row.params[k])}" for k in KEY_PARAMS if k in row.params
            )
            if row.note:
                params = f"{params}  [red]{row.note}[/red]"
            table.add_row(
                str(row.number),
                Text(row.state.lower(), style=STATE_STYLE.get(row.state, "")),
                "" if row.best is None else f"{row.best:.4f}",
                str(row.epochs),
                f"{elapsed:.0f}s",
                params,
            )
        elapsed = time.perf_counter() - self.started
        ran = self.done - self.done_before
        remaining = max(self.total - self.done, 0)
        eta = f"~{elapsed / ran * remaining / 60:.1f} min left" if ran else "estimating..."
        best = (
            f"best so far: trial {self.best[0]}, {self.metric} {self.best[1]:.4f}"
            if self.best
            else "best so far: none yet"
        )
        footer = Text(
            f"{self.done}/{self.total} trials  |  {best}  |  "
            f"elapsed {elapsed / 60:.1f} min  |  {eta}"
        )
        return Group(table, footer)
