"""Create or resume a study and run trials until its total budget is spent.

Any number of workers (processes or machines) may run :func:`run_study` on one study at once:
the budget is the study's total across all of them, counted from the database before every
trial, and a trial whose worker died is found by Optuna's heartbeat, failed and retried.
"""

from __future__ import annotations

import gc
import json
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuner.errors import StorageError, StudyError
from tuner.study.storage import HEARTBEAT_GRACE, HEARTBEAT_INTERVAL, open_storage, redact

if TYPE_CHECKING:
    import optuna

    from tuner.data.layout import Dataset
    from tuner.space.spec import SearchSpace
    from tuner.study.trial_data import TrialData
    from tuner.study.trial_runner import TrialObserver
    from tuner.tracking.mlflow_tracker import Tracker

ATTR_FINGERPRINT = "space_fingerprint"
ATTR_SPACE = "space"
ATTR_PARENT_RUN = "mlflow_parent_run_id"
ATTR_EXPERIMENT = "mlflow_experiment_id"
ATTR_TRACKING_URI = "mlflow_tracking_uri"
ATTR_N_TRIALS = "n_trials"
ATTR_DATA = "data_root"
ATTR_VAL_DATA = "val_data_root"
ATTR_WRITERS_BY_NUMBER = "writers_by_number"
ATTR_SAMPLER = "sampler"
ATTR_PRUNER = "pruner"


@dataclass
class StudySettings:
    space: SearchSpace
    storage_url: str
    tracking_uri: str
    study_name: str | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int | None = None
    n_trials: int | None = None  # the total the study should have; None: the space's budget
    timeout: float | None = None  # seconds for this invocation; None: the space's budget
    data: str | None = None  # the dataset the study trains on, recorded for joining workers
    val_data: str | None = None  # a separate validation set instead of a split of Train
    writers_by_number: bool = False  # file n.png is writer n (writer-disjoint validation)
    heartbeat_interval: int = HEARTBEAT_INTERVAL
    grace_period: int = HEARTBEAT_GRACE
    storage_patience_s: float = 60.0  # how long a worker waits for a database that went away

    @property
    def name(self) -> str:
        return self.study_name or self.space.name

    @property
    def total_trials(self) -> int:
        return self.n_trials if self.n_trials is not None else self.space.budget.n_trials


@dataclass
class StudyOutcome:
    study_name: str
    storage_url: str
    tracking_uri: str
    counts: dict[str, int]
    ran: int  # trials this invocation ran
    already_finished: bool
    best_number: int | None
    best_value: float | None
    best_params: dict[str, Any] = field(default_factory=dict)
    parent_run_id: str = ""
    interrupted: bool = False
    elapsed_s: float = 0.0


class BudgetSpent(Exception):
    """Raised at the start of a trial that another worker's trial made surplus."""


def counts_toward_budget(trial: optuna.trial.FrozenTrial) -> bool:
    """Finished trials count; a trial interrupted by Ctrl-C or failed because its worker died
    (no recorded reason: the heartbeat failed it) is redone, so it does not."""
    from optuna.trial import TrialState

    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return (
        trial.state == TrialState.FAIL
        and "fail_reason" in trial.user_attrs
        and not trial.user_attrs.get("interrupted")
    )


def display_state(trial: optuna.trial.FrozenTrial) -> str:
    if trial.user_attrs.get("interrupted"):
        return "INTERRUPTED"
    if trial.user_attrs.get("surplus"):
        return "SKIPPED"
    if trial.state.name == "FAIL" and "fail_reason" not in trial.user_attrs:
        return "LOST"  # its worker died; the heartbeat failed it and a live worker retries it
    return trial.state.name


def state_counts(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        name = display_state(t)
        counts[name] = counts.get(name, 0) + 1
    return counts


def budget_used(study: optuna.Study) -> int:
    return sum(counts_toward_budget(t) for t in study.get_trials(deepcopy=False))


def primary_value(trial: optuna.trial.FrozenTrial) -> float | None:
    """The trial's value on the study's first objective (the validation metric)."""
    return trial.values[0] if trial.values else None


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best trial; in a multi-objective study, the Pareto-front trial that is best on the
    first objective (the validation metric)."""
    from optuna.study import StudyDirection

    if len(study.directions) == 1:
        try:
            return study.best_trial
        except ValueError:
            return None
    front = study.best_trials
    if not front:
        return None
    maximize = study.directions[0] == StudyDirection.MAXIMIZE
    return (max if maximize else min)(front, key=lambda t: t.values[0])


def pareto_front(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The trials no other trial beats on every objective (all best trials if single)."""
    if len(study.directions) == 1:
        best = best_trial(study)
        return [best] if best else []
    return sorted(study.best_trials, key=lambda t: t.number)


def _storage(settings: StudySettings) -> optuna.storages.RDBStorage:
    return open_storage(
        settings.storage_url,
        heartbeat_interval=settings.heartbeat_interval,
        grace_period=settings.grace_period,
    )


def open_study(settings: StudySettings) -> optuna.Study:
    """Create the study, or resume it after checking it was made from the same space."""
    import optuna

    from tuner.study.components import make_pruner, make_sampler

    space = settings.space
    storage = _storage(settings)
    sampler = make_sampler(settings.sampler, settings.seed)
    pruner = make_pruner(settings.pruner, space.training.max_epochs)
    fingerprint = space.fingerprint()
    try:
        existing = optuna.load_study(study_name=settings.name, storage=storage)
    except KeyError:
        existing = None
    if existing is not None:
        theirs = existing.user_attrs.get(ATTR_FINGERPRINT)
        if theirs != fingerprint:
            raise StudyError(
                f"study {settings.name!r} in {redact(settings.storage_url)} was made from a "
                f"different search space (fingerprint {theirs} != {fingerprint}); start a new "
                f"study with --study-name NEW_NAME, or remove the old one with "
                f"`tune delete {settings.name}`"
            )
        return optuna.load_study(
            study_name=settings.name, storage=storage, sampler=sampler, pruner=pruner
        )
    study = optuna.create_study(
        study_name=settings.name,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        directions=[o.direction for o in space.objectives],
        load_if_exists=True,  # another worker may create it at the same moment
    )
    if study.user_attrs.get(ATTR_FINGERPRINT) is None:
        study.set_user_attr(ATTR_FINGERPRINT, fingerprint)
        study.set_user_attr(ATTR_SPACE, space.to_dict())
        study.set_user_attr("objective_metric", space.objective.metric)
        study.set_user_attr(ATTR_SAMPLER, settings.sampler)
        study.set_user_attr(ATTR_PRUNER, settings.pruner)
        study.set_user_attr(ATTR_DATA, settings.data or space.dataset)
        study.set_user_attr(ATTR_VAL_DATA, settings.val_data)
        study.set_user_attr(ATTR_WRITERS_BY_NUMBER, settings.writers_by_number)
        for params in space.enqueue:
            study.enqueue_trial(dict(params), skip_if_exists=True)
    return study


def settings_from_study(
    storage_url: str,
    study_name: str,
    tracking_uri: str,
    *,
    data: str | None = None,
    val_data: str | None = None,
    seed: int | None = None,
    timeout: float | None = None,
    heartbeat_interval: int = HEARTBEAT_INTERVAL,
    grace_period: int = HEARTBEAT_GRACE,
) -> StudySettings:
    """What a joining worker needs, read back from the study itself: its space, sampler,
    pruner, budget and data (which ``data`` overrides, for a machine with another path)."""
    from tuner.space import parse_space
    from tuner.study.results import load_existing

    study = load_existing(storage_url, study_name)
    attrs = study.user_attrs
    if ATTR_SPACE not in attrs:
        raise StudyError(
            f"study {study_name!r} was not made by `tune run` (no search space recorded); "
            "start it with  tune run SPACE --study-name NAME"
        )
    return StudySettings(
        space=parse_space(attrs[ATTR_SPACE]),
        storage_url=storage_url,
        tracking_uri=tracking_uri,
        study_name=study_name,
        sampler=attrs.get(ATTR_SAMPLER, "tpe"),
        pruner=attrs.get(ATTR_PRUNER, "median"),
        seed=seed,
        n_trials=attrs.get(ATTR_N_TRIALS),
        timeout=timeout,
        data=data or attrs.get(ATTR_DATA),
        val_data=val_data or attrs.get(ATTR_VAL_DATA),
        writers_by_number=bool(attrs.get(ATTR_WRITERS_BY_NUMBER, False)),
        heartbeat_interval=heartbeat_interval,
        grace_period=grace_period,
    )


class _ParentRunUpdater:
    """Keeps the study's parent run showing the best trial and the state counts."""

    def __init__(self, tracker: Tracker, parent_run_id: str) -> None:
        self.tracker = tracker
        self.parent_run_id = parent_run_id

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        best = best_trial(study)
        tags: dict[str, Any] = {f"tuner.n_{k.lower()}": v for k, v in state_counts(study).items()}
        if best is not None:
            tags.update(
                {
                    "tuner.best_trial": best.number,
                    "tuner.best_params": json.dumps(best.params, default=str),
                    "tuner.best_run_id": best.user_attrs.get("mlflow_run_id", ""),
                }
            )
            self.tracker.log_metrics(
                self.parent_run_id,
                {"best_value": float(primary_value(best) or 0.0)},
                step=trial.number,
            )
        self.tracker.set_tags(self.parent_run_id, tags)


class _ObserverForwarder:
    def __init__(self, observers: Sequence[TrialObserver]) -> None:
        self.observers = observers

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        for observer in self.observers:
            observer.trial_finished(trial)


def prepare_tracking(
    study: optuna.Study, settings: StudySettings, tracker: Tracker
) -> tuple[str, str]:
    """The study's MLflow experiment and parent run (resumed, not duplicated)."""
    experiment_id = tracker.experiment_for_study(settings.name)
    parent_run_id = tracker.open_parent_run(
        experiment_id,
        settings.name,
        study.user_attrs.get(ATTR_PARENT_RUN),
        tags={
            "tuner.study": settings.name,
            "tuner.space": settings.space.name,
            "tuner.storage": redact(settings.storage_url),
        },
    )
    if study.user_attrs.get(ATTR_PARENT_RUN) != parent_run_id:
        study.set_user_attr(ATTR_PARENT_RUN, parent_run_id)
        study.set_user_attr(ATTR_EXPERIMENT, experiment_id)
        study.set_user_attr(ATTR_TRACKING_URI, redact(settings.tracking_uri))
        tracker.log_dict(parent_run_id, settings.space.to_dict(), "search_space.json")
        tracker.set_tags(
            parent_run_id,
            {"tuner.sampler": settings.sampler, "tuner.pruner": settings.pruner},
        )
    return experiment_id, parent_run_id


class _OrphanRunCloser:
    """Closes, as FAILED, the MLflow runs left RUNNING by workers that died mid-trial: any
    trial run still RUNNING whose Optuna trial has finished (the heartbeat failed it)."""

    def __init__(self, tracker: Tracker, experiment_id: str) -> None:
        self.tracker = tracker
        self.experiment_id = experiment_id

    def __call__(self, study: optuna.Study) -> None:
        from optuna.trial import TrialState

        try:
            runs = self.tracker.client.search_runs(
                [self.experiment_id],
                filter_string="attributes.status = 'RUNNING' and tags.`tuner.role` = 'trial'",
                max_results=1000,
            )
        except Exception:  # the run store may be briefly unavailable; try next round
            return
        if not runs:
            return
        states = {t.number: t for t in study.get_trials(deepcopy=False)}
        for run in runs:
            number = int(run.data.tags.get("tuner.trial_number", -1))
            trial = states.get(number)
            if trial is None or trial.state in (TrialState.RUNNING, TrialState.WAITING):
                continue
            worker = trial.user_attrs.get("worker", run.data.tags.get("tuner.worker", "?"))
            self.tracker.set_tags(
                run.info.run_id,
                {
                    "tuner.state": "FAIL",
                    "tuner.fail_reason": f"worker {worker} stopped (no heartbeat); "
                    "the trial is retried",
                },
            )
            self.tracker.end_run(run.info.run_id, "FAILED")


def prepare_study(settings: StudySettings, tracker: Tracker) -> tuple[optuna.Study, str, str]:
    """Create or resume the study and its MLflow parent run, record the budget: what a
    coordinator does once before workers join. Returns the study, experiment and parent run."""
    study = open_study(settings)
    if settings.n_trials is not None or ATTR_N_TRIALS not in study.user_attrs:
        study.set_user_attr(ATTR_N_TRIALS, settings.total_trials)
    experiment_id, parent_run_id = prepare_tracking(study, settings, tracker)
    return study, experiment_id, parent_run_id


def _transient_storage_errors() -> tuple[type[BaseException], ...]:
    import optuna
    import sqlalchemy.exc

    return (sqlalchemy.exc.OperationalError, optuna.exceptions.StorageInternalError)


def _storage_cause(
    exc: BaseException, transient: tuple[type[BaseException], ...]
) -> BaseException | None:
    """The storage error behind ``exc`` (itself, its cause or context), if there is one: the
    deepest, which says what happened (Optuna's own wrapper only says a commit failed)."""
    seen: set[int] = set()
    found: BaseException | None = None
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, transient):
            found = current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return found


class _LastTrialState:
    """Optuna callback: the state of the last trial this worker finished."""

    def __init__(self) -> None:
        self.state: optuna.trial.TrialState | None = None

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.state = trial.state


def _work(
    study: optuna.Study,
    settings: StudySettings,
    runner: Any,
    callbacks: list[Any],
    closer: _OrphanRunCloser,
) -> None:
    """Run one trial at a time until the study's total is reached (by any worker).

    Checking the database before every trial (rather than giving Optuna a count) is what makes
    N workers asked for 20 trials make 20. While the remaining trials are all running
    elsewhere, wait: one of them may die and need redoing.
    """
    import optuna
    from optuna.trial import TrialState

    timeout = settings.timeout if settings.timeout is not None else settings.space.budget.timeout
    deadline = time.monotonic() + timeout if timeout else None
    runner.deadline = deadline
    transient = _transient_storage_errors()
    outage_since: float | None = None
    last_error_at = -math.inf
    last = _LastTrialState()
    closed_at = -math.inf
    while True:
        try:
            if time.monotonic() - closed_at >= min(settings.grace_period, 30):
                closer(study)  # an MLflow query: not before every trial
                closed_at = time.monotonic()
            trials = study.get_trials(deepcopy=False)
            done = sum(counts_toward_budget(t) for t in trials)
            running = sum(t.state == TrialState.RUNNING for t in trials)
            if done >= settings.total_trials or (deadline and time.monotonic() >= deadline):
                return
            if done + running >= settings.total_trials:
                # The rest are running elsewhere; fail any whose worker died, then look again.
                # (Before each trial Optuna's own heartbeat check does this.)
                with warnings.catch_warnings():  # "experimental" since Optuna 2.9
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(study)
                closed_at = -math.inf
                time.sleep(1.0)
                continue
            # No gc_after_trial: the next trial's clear_session collects anyway.
            last.state = None
            study.optimize(runner, n_trials=1, callbacks=[*callbacks, last], catch=(Exception,))
            if last.state in (TrialState.COMPLETE, TrialState.PRUNED):
                # Only a trial that got somewhere ends an outage: a storage error that comes
                # back between failed trials must still run out the patience, not loop forever.
                outage_since = None
        except Exception as exc:
            # Optuna can surface a lost connection as another error (an UnboundLocalError in
            # its own clean-up, chained to the storage error); look down the chain.
            lost = _storage_cause(exc, transient)
            if lost is None:
                raise
            now = time.monotonic()
            if outage_since is None or now - last_error_at > settings.storage_patience_s:
                outage_since = now  # a new outage (not one resumed between failed trials)
            last_error_at = now
            if now - outage_since > settings.storage_patience_s:
                reason = str(getattr(lost, "orig", lost)).strip().splitlines()[0]
                raise StorageError(
                    f"lost the study database {redact(settings.storage_url)} ({reason}) and it "
                    f"did not come back within {settings.storage_patience_s:.0f} s; check the "
                    "server, then run the same command to resume (finished trials are kept)"
                ) from None
            time.sleep(min(2.0, settings.storage_patience_s / 10))


def run_study(
    settings: StudySettings,
    data: Dataset | TrialData,
    *,
    observers: Sequence[TrialObserver] = (),
    tracker: Tracker | None = None,
    owns_parent_run: bool = True,
) -> StudyOutcome:
    """Run trials until the study holds ``settings.total_trials`` finished trials.

    Running it again resumes: the budget is the study's total, not a count per call.
    ``owns_parent_run``: this call started the study (``tune run``), so it closes the parent
    run; a joining worker closes it only when the study's budget is spent.
    """
    import optuna

    from tuner.study.trial_data import TrialData
    from tuner.study.trial_runner import TrialContext, TrialRunner
    from tuner.tracking.mlflow_tracker import Tracker

    trial_data = data if isinstance(data, TrialData) else None
    base = data.base if isinstance(data, TrialData) else data

    started = time.perf_counter()
    tracker = tracker or Tracker(settings.tracking_uri)
    study, experiment_id, parent_run_id = prepare_study(settings, tracker)
    before = budget_used(study)
    already_finished = before >= settings.total_trials
    interrupted = False
    if not already_finished:
        runner = TrialRunner(
            TrialContext(
                space=settings.space,
                data=base,
                trial_data=trial_data,
                tracker=tracker,
                experiment_id=experiment_id,
                parent_run_id=parent_run_id,
                budget_total=settings.total_trials,
                seed=settings.seed,
                observers=observers,
            )
        )
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        # Everything alive now (TensorFlow, Keras, the data) lives for the whole study: take
        # it out of the collector's sight so each trial's collection stays short.
        gc.collect()
        gc.freeze()
        callbacks = [_ParentRunUpdater(tracker, parent_run_id), _ObserverForwarder(observers)]
        try:
            _work(study, settings, runner, callbacks, _OrphanRunCloser(tracker, experiment_id))
        except KeyboardInterrupt:
            interrupted = True
    best = best_trial(study)
    used = budget_used(study)
    if interrupted and owns_parent_run:
        tracker.end_run(parent_run_id, "KILLED")  # reopened (RUNNING) when the study resumes
    elif owns_parent_run or used >= settings.total_trials:
        tracker.end_run(parent_run_id, "FINISHED")
    return StudyOutcome(
        study_name=settings.name,
        storage_url=settings.storage_url,
        tracking_uri=settings.tracking_uri,
        counts=state_counts(study),
        ran=used - before,
        already_finished=already_finished,
        best_number=best.number if best else None,
        best_value=primary_value(best) if best else None,
        best_params=dict(best.params) if best else {},
        parent_run_id=parent_run_id,
        interrupted=interrupted,
        elapsed_s=time.perf_counter() - started,
    )
