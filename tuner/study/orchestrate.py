"""Create or resume a study and run trials until its total budget is spent."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuner.errors import StudyError
from tuner.study.storage import open_storage, redact

if TYPE_CHECKING:
    import optuna

    from tuner.data.layout import Dataset
    from tuner.space.spec import SearchSpace
    from tuner.study.trial_runner import TrialObserver
    from tuner.tracking.mlflow_tracker import Tracker

ATTR_FINGERPRINT = "space_fingerprint"
ATTR_SPACE = "space"
ATTR_PARENT_RUN = "mlflow_parent_run_id"
ATTR_EXPERIMENT = "mlflow_experiment_id"
ATTR_TRACKING_URI = "mlflow_tracking_uri"
ATTR_N_TRIALS = "n_trials"


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


def state_counts(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        name = "INTERRUPTED" if t.user_attrs.get("interrupted") else t.state.name
        counts[name] = counts.get(name, 0) + 1
    return counts


def budget_used(study: optuna.Study) -> int:
    return sum(counts_toward_budget(t) for t in study.get_trials(deepcopy=False))


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:
        return None


def open_study(settings: StudySettings) -> optuna.Study:
    """Create the study, or resume it after checking it was made from the same space."""
    import optuna

    from tuner.study.components import make_pruner, make_sampler

    space = settings.space
    storage = open_storage(settings.storage_url)
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
    direction = space.objective.direction
    try:
        study = optuna.create_study(
            study_name=settings.name,
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            direction=direction,
            load_if_exists=True,  # another worker may create it at the same moment
        )
    except optuna.exceptions.DuplicatedStudyError:  # pragma: no cover - load_if_exists handles it
        study = optuna.load_study(study_name=settings.name, storage=storage, sampler=sampler)
    if study.user_attrs.get(ATTR_FINGERPRINT) is None:
        study.set_user_attr(ATTR_FINGERPRINT, fingerprint)
        study.set_user_attr(ATTR_SPACE, space.to_dict())
        study.set_user_attr("objective_metric", space.objective.metric)
        for params in space.enqueue:
            study.enqueue_trial(dict(params), skip_if_exists=True)
    return study


class _BudgetStop:
    """Stops ``optimize`` once the study's total (across all workers) is reached."""

    def __init__(self, total: int) -> None:
        self.total = total

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        from optuna.trial import TrialState

        trials = study.get_trials(deepcopy=False)
        running = sum(t.state == TrialState.RUNNING for t in trials)
        if sum(counts_toward_budget(t) for t in trials) + running >= self.total:
            study.stop()


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
                self.parent_run_id, {"best_value": float(best.value or 0.0)}, step=trial.number
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


def run_study(
    settings: StudySettings,
    data: Dataset,
    *,
    observers: Sequence[TrialObserver] = (),
    tracker: Tracker | None = None,
) -> StudyOutcome:
    """Run trials until the study holds ``settings.total_trials`` finished trials.

    Running it again resumes: the budget is the study's total, not a count per call.
    """
    import optuna

    from tuner.study.trial_runner import TrialContext, TrialRunner
    from tuner.tracking.mlflow_tracker import Tracker

    started = time.perf_counter()
    study = open_study(settings)
    study.set_user_attr(ATTR_N_TRIALS, settings.total_trials)
    tracker = tracker or Tracker(settings.tracking_uri)
    experiment_id, parent_run_id = prepare_tracking(study, settings, tracker)
    before = budget_used(study)
    already_finished = before >= settings.total_trials
    interrupted = False
    if not already_finished:
        runner = TrialRunner(
            TrialContext(
                space=settings.space,
                data=data,
                tracker=tracker,
                experiment_id=experiment_id,
                parent_run_id=parent_run_id,
                seed=settings.seed,
                observers=observers,
            )
        )
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        try:
            study.optimize(
                runner,
                n_trials=None,
                timeout=settings.timeout
                if settings.timeout is not None
                else settings.space.budget.timeout,
                callbacks=[
                    _ParentRunUpdater(tracker, parent_run_id),
                    _ObserverForwarder(observers),
                    _BudgetStop(settings.total_trials),
                ],
                catch=(Exception,),
                gc_after_trial=True,
            )
        except KeyboardInterrupt:
            interrupted = True
    best = best_trial(study)
    used = budget_used(study)
    # The parent run is reopened (RUNNING) when the study resumes.
    tracker.end_run(parent_run_id, "KILLED" if interrupted else "FINISHED")
    return StudyOutcome(
        study_name=settings.name,
        storage_url=settings.storage_url,
        tracking_uri=settings.tracking_uri,
        counts=state_counts(study),
        ran=used - before,
        already_finished=already_finished,
        best_number=best.number if best else None,
        best_value=best.value if best else None,
        best_params=dict(best.params) if best else {},
        parent_run_id=parent_run_id,
        interrupted=interrupted,
        elapsed_s=time.perf_counter() - started,
    )
