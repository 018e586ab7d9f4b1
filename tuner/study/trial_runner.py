"""The one place that runs a trial and maps its outcome to a state (as Optuna's ``_run_trial``).

A trial: sample the space, open its MLflow run, clear the Keras session, build, fit with
per-epoch reporting (pruning, MLflow metrics, the live view) and early stopping, then close the
run with the state the trial ended in:

=================  ==============  ===========================================
outcome            Optuna state    MLflow run
=================  ==============  ===========================================
finished           COMPLETE        FINISHED, tag tuner.state=COMPLETE
pruned             PRUNED          FINISHED, tag tuner.state=PRUNED
raised             FAIL            FAILED, tag tuner.fail_reason (study goes on)
Ctrl-C             FAIL            KILLED, user attr interrupted (study stops)
=================  ==============  ===========================================
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import optuna

    from tuner.data.layout import Dataset
    from tuner.space.spec import SearchSpace
    from tuner.study.trial_data import TrialData
    from tuner.tracking.mlflow_tracker import Tracker

#: How often a trial asks a pruner that looks at time whether to stop, within an epoch.
WITHIN_EPOCH_CHECK_S = 5.0
EPOCH_METRICS = (
    "loss",
    "accuracy",
    "top5_accuracy",
    "val_loss",
    "val_accuracy",
    "val_top5_accuracy",
)


def _forget_custom_gradients() -> None:
    """Drop the gradient functions TensorFlow registered while tracing earlier trials.

    Keras' optimizer traces through ``tf.custom_gradient``, which adds an entry to TF's global
    gradient registry on every trace and never removes it; each entry holds a whole traced
    training graph, so without this a long study grows by megabytes per trial (keras#17458,
    tensorflow#61791). Private API, hence the guard: at worst memory grows as before.
    """
    try:
        from tensorflow.python.framework import ops

        registry = ops.gradient_registry._registry
        for name in [k for k in registry if str(k).startswith("CustomGradient-")]:
            del registry[name]
    except Exception:
        pass


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class TrialObserver(Protocol):
    """Hooks for a progress view; called in the worker's process."""

    def trial_started(self, number: int, params: dict[str, Any]) -> None: ...

    def epoch_ended(self, number: int, epoch: int, logs: dict[str, float]) -> None: ...

    def trial_finished(self, trial: optuna.trial.FrozenTrial) -> None: ...


@dataclass
class TrialContext:
    """Everything a trial needs, passed explicitly (no global state)."""

    space: SearchSpace
    data: Dataset
    tracker: Tracker
    experiment_id: str
    parent_run_id: str
    trial_data: TrialData | None = None  # per-trial data (searched preprocessing, mixing)
    budget_total: int | None = None
    seed: int | None = None
    observers: Sequence[TrialObserver] = field(default_factory=tuple)
    worker: str = field(default_factory=worker_id)
    verbose: int = 0


def _epoch_callback(
    trial: optuna.Trial, ctx: TrialContext, run_id: str, deadline: float | None = None
) -> Any:
    import keras

    metric = ctx.space.objective.metric

    class EpochReporter(keras.callbacks.Callback):
        """Reports the objective to Optuna (pruning) and every metric to MLflow, per epoch."""

        def __init__(self) -> None:
            super().__init__()
            self.pruned_at: int | None = None
            self.pruned_because: str | None = None
            self.epochs_run = 0
            # Optuna prunes single-objective studies only; a multi-objective one trains on.
            self.prunable = not ctx.space.multi_objective
            # A pruner that looks at time (pruners.SlowTrialPruner) is asked within epochs too.
            self.within_epochs = self.prunable and getattr(
                trial.study.pruner, "checks_within_epochs", False
            )
            self.checked_at = time.monotonic()

        def _prune(self, epoch: int) -> None:
            self.pruned_at = epoch
            self.pruned_because = getattr(trial.study.pruner, "last_reason", None)
            self.model.stop_training = True

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            if self.pruned_at is not None:
                return
            now = time.monotonic()
            if deadline is not None and now >= deadline:  # not a whole slow epoch past it
                self._stop_at_deadline(self.epochs_run + 1)
                return
            if not self.within_epochs:
                return
            if now - self.checked_at >= WITHIN_EPOCH_CHECK_S:
                self.checked_at = now
                if trial.should_prune():  # Keras stops after this batch
                    self._prune(self.epochs_run + 1)

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            logs = {k: float(v) for k, v in (logs or {}).items() if k in EPOCH_METRICS}
            self.epochs_run = epoch + 1
            ctx.tracker.log_metrics(run_id, logs, step=epoch + 1)
            for observer in ctx.observers:
                observer.epoch_ended(trial.number, epoch + 1, logs)
            stopped_within = self.pruned_at is not None  # its metrics are of part of an epoch
            if self.prunable and not stopped_within and math.isfinite(logs.get(metric, math.nan)):
                trial.report(logs[metric], epoch + 1)
                self.checked_at = time.monotonic()
                if trial.should_prune():
                    self._prune(epoch + 1)
            # The study's time is up: stop here rather than train on past the budget; the
            # trial is kept as pruned, with the epochs it reported.
            if deadline is not None and self.pruned_at is None and time.monotonic() >= deadline:
                self._stop_at_deadline(epoch + 1)

        def _stop_at_deadline(self, epoch: int) -> None:
            trial.set_user_attr("stopped_at_deadline", True)
            self.pruned_at = epoch
            self.model.stop_training = True

    return EpochReporter()


class TrialRunner:
    """Optuna objective: ``study.optimize(TrialRunner(ctx), ...)``."""

    def __init__(self, ctx: TrialContext) -> None:
        self.ctx = ctx
        # time.monotonic() of the study's deadline (--timeout): a trial still training then
        # stops after its current batch. Set by the loop that runs the trials.
        self.deadline: float | None = None

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        import optuna

        ctx = self.ctx
        started = time.perf_counter()
        trial.set_user_attr("worker", ctx.worker)
        self._check_budget(trial)
        params = ctx.space.suggest(trial)
        run_id = ctx.tracker.start_trial_run(
            ctx.experiment_id,
            ctx.parent_run_id,
            trial.number,
            params,
            tags={"tuner.worker": ctx.worker, "tuner.study": ctx.space.name},
        )
        trial.set_user_attr("mlflow_run_id", run_id)
        for observer in ctx.observers:
            observer.trial_started(trial.number, params)
        try:
            data = ctx.trial_data.dataset(params) if ctx.trial_data else ctx.data
            model, value, epochs, pruned_at, pruned_because = self._fit(trial, params, run_id, data)
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            self._close(run_id, "KILLED", "INTERRUPTED", started, {"tuner.fail_reason": "Ctrl-C"})
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:500]
            trial.set_user_attr("fail_reason", reason)
            self._close(run_id, "FAILED", "FAIL", started, {"tuner.fail_reason": reason})
            raise
        trial.set_user_attr("epochs", epochs)
        if pruned_at is not None:
            tags: dict[str, Any] = {"tuner.pruned_at_epoch": pruned_at}
            if pruned_because:
                trial.set_user_attr("pruned_because", pruned_because)
                tags["tuner.pruned_because"] = pruned_because
            self._close(run_id, "FINISHED", "PRUNED", started, tags)
            raise optuna.TrialPruned(f"pruned at epoch {pruned_at}")
        self._log_model(model, trial.number, params, run_id, data)
        extras = {
            o.metric: self._secondary(o.metric, model, data) for o in ctx.space.extra_objectives
        }
        best = {f"best_{ctx.space.objective.metric}": value, **extras}
        self._close(run_id, "FINISHED", "COMPLETE", started, {}, best)
        return (value, *extras.values()) if extras else value

    def _secondary(self, metric: str, model: Any, data: Dataset) -> float:
        """A further objective, measured once on the trained model."""
        if metric == "n_params":
            return float(model.count_params())
        if metric == "inference_ms":
            batch = data.val.images[:256, ..., None]
            model.predict(batch, verbose=0)  # warm-up: the first call builds the graph
            timings = []
            for _ in range(3):
                t0 = time.perf_counter()
                model.predict(batch, verbose=0)
                timings.append(time.perf_counter() - t0)
            return 1000.0 * min(timings) / max(len(batch), 1)
        raise ValueError(f"unknown objective metric {metric!r}")

    def _check_budget(self, trial: optuna.Trial) -> None:
        """Two workers can start a trial at the same moment for the last slot of the budget;
        the later one (higher number) steps aside."""
        from optuna.trial import TrialState

        from tuner.study.orchestrate import BudgetSpent, counts_toward_budget

        if self.ctx.budget_total is None:
            return
        earlier = [t for t in trial.study.get_trials(deepcopy=False) if t.number < trial.number]
        taken = sum(counts_toward_budget(t) or t.state == TrialState.RUNNING for t in earlier)
        if taken >= self.ctx.budget_total:
            trial.set_user_attr("surplus", True)
            raise BudgetSpent(f"budget of {self.ctx.budget_total} trials already taken")

    def _fit(
        self, trial: optuna.Trial, params: dict[str, Any], run_id: str, data: Dataset
    ) -> tuple[Any, float, int, int | None, str | None]:
        import keras

        from tuner.models.builder import build_model

        ctx = self.ctx
        # Free the previous trial's graph and layers: memory stays flat over long studies.
        keras.backend.clear_session(free_memory=True)
        _forget_custom_gradients()
        if ctx.seed is not None:
            keras.utils.set_random_seed(ctx.seed + trial.number)
        h, w = data.train.images.shape[1:3]
        model = build_model(ctx.space.model, params, (h, w, 1), len(data.classes))
        summary: list[str] = []
        model.summary(print_fn=lambda line, *a, **k: summary.append(line))
        n_params = int(model.count_params())
        trial.set_user_attr("n_params", n_params)
        ctx.tracker.log_params(run_id, {"n_params": n_params, "trial_number": trial.number})
        ctx.tracker.log_text(run_id, "\n".join(summary), "model_summary.txt")

        training = ctx.space.training
        objective = ctx.space.objective
        reporter = _epoch_callback(trial, ctx, run_id, self.deadline)
        stopper = keras.callbacks.EarlyStopping(
            monitor=objective.metric,
            mode="max" if objective.direction == "maximize" else "min",
            patience=training.patience,
            min_delta=training.min_delta,
            restore_best_weights=True,
        )
        history = model.fit(
            data.train.images[..., None],
            data.train.labels,
            validation_data=(data.val.images[..., None], data.val.labels),
            batch_size=int(params.get("batch_size", training.batch_size)),
            epochs=training.max_epochs,
            callbacks=[reporter, stopper],
            verbose=ctx.verbose,
        )
        values = [v for v in history.history.get(objective.metric, []) if math.isfinite(v)]
        if not values:
            raise RuntimeError(f"training produced no finite {objective.metric}")
        best = max(values) if objective.direction == "maximize" else min(values)
        return model, float(best), reporter.epochs_run, reporter.pruned_at, reporter.pruned_because

    def _log_model(
        self,
        model: Any,
        trial_number: int,
        params: dict[str, Any],
        run_id: str,
        data: Dataset,
    ) -> None:
        """The trained weights (best epoch restored) with class names and preprocessing."""
        import tempfile
        from pathlib import Path

        from tuner.models.artifacts import ARTIFACT_DIR, ModelMeta, save_bundle

        ctx = self.ctx
        meta = ModelMeta(
            classes=list(data.classes),
            preprocessing=data.preprocessing.key(),
            family=ctx.space.model,
            params=params,
            space=ctx.space.name,
            trial_number=trial_number,
        )
        with tempfile.TemporaryDirectory(prefix="tuner-model-") as tmp:
            folder = save_bundle(model, Path(tmp) / ARTIFACT_DIR, meta)
            ctx.tracker.log_artifacts(run_id, folder, ARTIFACT_DIR)

    def _close(
        self,
        run_id: str,
        status: str,
        state: str,
        started: float,
        tags: dict[str, Any],
        metrics: dict[str, float] | None = None,
    ) -> None:
        duration = time.perf_counter() - started
        try:
            self.ctx.tracker.log_batch(
                run_id,
                metrics={"duration_s": duration, **(metrics or {})},
                tags={"tuner.state": state, **tags},
            )
            self.ctx.tracker.end_run(run_id, status)
        except Exception:  # tracking must not turn a finished trial into a failed one
            pass
