"""A guard in wall time around Optuna's median pruner (``--pruner median``; Hyperband is left
unwrapped, since Optuna's samplers look for a HyperbandPruner itself).

Optuna's median and Hyperband pruners compare trials at the same epoch, so they cannot stop
a model whose epochs are very slow (a wide network without pooling can take minutes an epoch
where the course's CNN takes a second) until those epochs are done. In a short study one such
trial can take most of the budget. Ray Tune's ASHA makes the same point by counting training
time, not epochs, as the resource. This guard keeps Optuna's pruner and adds one rule, in
time: a trial that has already run longer than ``slower_than`` times the slowest finished
trial took in all (and at least ``at_least_s``), and whose best value so far is worse than
the median of theirs, stops.
The trial runner also asks within an epoch (every few seconds), so a first epoch that would
take minutes is cut short too.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

#: How many times the slowest finished trial a trial may run before the guard looks at it.
SLOWER_THAN = 2.0
#: ... and never before this many seconds: seconds-long trials differ by load, not by model.
AT_LEAST_S = 10.0
#: What the runner records (MLflow tag, user attr) for a trial the guard stopped.
SLOW_REASON = "slow"


class SlowTrialPruner(optuna.pruners.BasePruner):
    """``inner``'s pruning, plus: stop a trial slower than ``slower_than`` x the slowest
    finished trial and worse than their median (see the module's docstring)."""

    #: The runner checks within epochs only for pruners that look at time.
    checks_within_epochs = True

    def __init__(
        self,
        inner: optuna.pruners.BasePruner,
        slower_than: float = SLOWER_THAN,
        at_least_s: float = AT_LEAST_S,
    ) -> None:
        self.inner = inner
        self.slower_than = slower_than
        self.at_least_s = at_least_s
        self.last_reason: str | None = None  # why the last prune() said yes

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        self.last_reason = None
        if trial.last_step is not None and self.inner.prune(study, trial):
            self.last_reason = type(self.inner).__name__
            return True
        if self.too_slow(study, trial):
            self.last_reason = SLOW_REASON
            return True
        return False

    def too_slow(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        if len(study.directions) > 1 or trial.datetime_start is None:
            return False
        finished = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.datetime_start and t.datetime_complete and t.value is not None
        ]
        if not finished:
            return False
        slowest = max(_seconds(t) for t in finished)
        now = dt.datetime.now(trial.datetime_start.tzinfo)
        allowed = max(self.slower_than * slowest, self.at_least_s)
        if (now - trial.datetime_start).total_seconds() <= allowed:
            return False
        maximize = study.direction == StudyDirection.MAXIMIZE
        median = statistics.median(float(t.value) for t in finished)  # type: ignore[arg-type]
        values = [v for v in trial.intermediate_values.values() if math.isfinite(v)]
        if not values:  # not one epoch in twice the time the slowest trial took for all
            return True
        best = max(values) if maximize else min(values)
        return best < median if maximize else best > median


def _seconds(trial: FrozenTrial) -> float:
    assert trial.datetime_start is not None and trial.datetime_complete is not None
    return (trial.datetime_complete - trial.datetime_start).total_seconds()
