"""``tune compare-samplers``: the same budget under each sampler, repeated with other seeds.

Every (sampler, repeat) is its own study, ``<space>-cmp-<sampler>-r<k>``, in an SQLite
database in the output folder (so an interrupted comparison resumes), with its MLflow runs in
``<out>/mlruns`` unless another tracking URI is given. Repeat k uses seed ``seed + k - 1`` for
every sampler, so the samplers see the same model initialisations.

Files written:

======================  ==================================================================
compare.db              the studies
compare.csv             one row per trial: sampler, repeat, value, best so far, elapsed time
compare_summary.csv     per sampler: final best (mean, std, min, max), time
compare.png             best so far against trial number and against wall time, mean of the
                        repeats with their min-max band
======================  ==================================================================

Wall time is the running sum of trial durations (sampling included), so pauses between
resumed runs do not count.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tuner.analysis import plots
from tuner.errors import TunerError
from tuner.study.orchestrate import primary_value

if TYPE_CHECKING:
    import optuna

    from tuner.data.layout import Dataset
    from tuner.space.spec import SearchSpace
    from tuner.study.trial_data import TrialData

DB_FILE = "compare.db"


@dataclass
class Curve:
    sampler: str
    repeat: int
    study: str
    seed: int
    numbers: list[int] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)  # NaN where the trial has no value
    elapsed_s: list[float] = field(default_factory=list)
    best_so_far: list[float] = field(default_factory=list)  # NaN before the first value

    @property
    def final(self) -> float:
        finite = [v for v in self.best_so_far if math.isfinite(v)]
        return finite[-1] if finite else math.nan


@dataclass
class Comparison:
    out: Path
    storage_url: str
    tracking_uri: str
    metric: str
    curves: list[Curve]
    files: dict[str, Path] = field(default_factory=dict)

    def by_sampler(self) -> dict[str, list[Curve]]:
        grouped: dict[str, list[Curve]] = {}
        for c in self.curves:
            grouped.setdefault(c.sampler, []).append(c)
        return grouped


def study_name_for(space: str, sampler: str, repeat: int) -> str:
    return f"{space}-cmp-{sampler}-r{repeat}"


def parse_samplers(text: str | Sequence[str]) -> list[str]:
    from tuner.study.components import SAMPLERS

    names = [s.strip() for s in text.split(",")] if isinstance(text, str) else list(text)
    names = [n for n in names if n]
    unknown = [n for n in names if n not in SAMPLERS]
    if unknown or not names:
        raise TunerError(
            f"unknown sampler {', '.join(unknown) or '(none given)'}: give a comma-separated "
            f"list of {', '.join(SAMPLERS)}, like random,tpe,gp"
        )
    return list(dict.fromkeys(names))


def with_max_epochs(space: SearchSpace, max_epochs: int | None) -> SearchSpace:
    if max_epochs is None:
        return space
    return dataclasses.replace(
        space, training=dataclasses.replace(space.training, max_epochs=max_epochs)
    )


def curve_of(study: optuna.Study, sampler: str, repeat: int, seed: int, maximize: bool) -> Curve:
    """Best-so-far of one study, trial by trial (finished trials only)."""
    from optuna.trial import TrialState

    curve = Curve(sampler, repeat, study.study_name, seed)
    trials = sorted(
        (t for t in study.get_trials(deepcopy=False) if t.datetime_complete is not None),
        key=lambda t: t.number,
    )
    elapsed = 0.0
    best = math.nan
    for t in trials:
        elapsed += t.duration.total_seconds() if t.duration else 0.0
        primary = primary_value(t)
        value = (
            float(primary) if t.state == TrialState.COMPLETE and primary is not None else math.nan
        )
        if math.isfinite(value) and (
            not math.isfinite(best) or (value > best if maximize else value < best)
        ):
            best = value
        curve.numbers.append(t.number + 1)
        curve.states.append(t.state.name)
        curve.values.append(value)
        curve.elapsed_s.append(elapsed)
        curve.best_so_far.append(best)
    return curve


def compare_samplers(
    space: SearchSpace,
    samplers: Sequence[str],
    n_trials: int,
    repeats: int,
    data: Dataset | TrialData,
    out: Path,
    *,
    tracking_uri: str | None = None,
    pruner: str = "none",
    seed: int = 0,
    data_spec: str | None = None,
    notify: Callable[[str], None] | None = None,
) -> Comparison:
    """Run (or resume) every (sampler, repeat) study, then write the CSVs and the plot.

    ``data_spec`` is what the studies record as their dataset (``--data`` as given, or None
    for the space's own).
    """
    from tuner.study.orchestrate import StudySettings, run_study
    from tuner.study.results import load_existing

    samplers = parse_samplers(samplers)
    if n_trials < 1 or repeats < 1:
        raise TunerError("--n-trials and --repeats must be at least 1")
    out.mkdir(parents=True, exist_ok=True)
    storage_url = f"sqlite:///{(out / DB_FILE).resolve()}"
    tracking = tracking_uri or f"sqlite:///{(out / 'mlruns' / 'mlflow.db').resolve()}"
    maximize = space.objective.direction == "maximize"
    curves: list[Curve] = []
    for sampler in samplers:
        for k in range(1, repeats + 1):
            settings = StudySettings(
                space=space,
                storage_url=storage_url,
                tracking_uri=tracking,
                study_name=study_name_for(space.name, sampler, k),
                sampler=sampler,
                pruner=pruner,
                seed=seed + k - 1,
                n_trials=n_trials,
                data=data_spec,
            )
            if notify:
                notify(f"{settings.name}: {sampler}, seed {settings.seed}, {n_trials} trials")
            outcome = run_study(settings, data)
            if outcome.interrupted:
                raise KeyboardInterrupt
            study = load_existing(storage_url, settings.name)
            curves.append(curve_of(study, sampler, k, seed + k - 1, maximize))
    result = Comparison(out, storage_url, tracking, space.objective.metric, curves)
    result.files = write_comparison(result)
    return result


def write_comparison(result: Comparison) -> dict[str, Path]:
    out = result.out
    files: dict[str, Path] = {}
    files["trials"] = out / "compare.csv"
    with files["trials"].open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ("sampler", "repeat", "study", "seed", "trial", "state", "value", "best_so_far",
             "elapsed_s")
        )  # fmt: skip
        for c in result.curves:
            for i, number in enumerate(c.numbers):
                writer.writerow(
                    (c.sampler, c.repeat, c.study, c.seed, number, c.states[i],
                     _num(c.values[i]), _num(c.best_so_far[i]), f"{c.elapsed_s[i]:.2f}")
                )  # fmt: skip
    files["summary"] = out / "compare_summary.csv"
    with files["summary"].open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ("sampler", "repeats", "trials", "best_mean", "best_std", "best_min", "best_max",
             "time_mean_s")
        )  # fmt: skip
        for sampler, group in result.by_sampler().items():
            finals = np.array([c.final for c in group], dtype=float)
            finite = finals[np.isfinite(finals)]
            times = [c.elapsed_s[-1] if c.elapsed_s else 0.0 for c in group]
            writer.writerow(
                (
                    sampler,
                    len(group),
                    max((len(c.numbers) for c in group), default=0),
                    _num(float(finite.mean()) if finite.size else math.nan),
                    _num(float(finite.std()) if finite.size else math.nan),
                    _num(float(finite.min()) if finite.size else math.nan),
                    _num(float(finite.max()) if finite.size else math.nan),
                    f"{float(np.mean(times)):.2f}",
                )
            )
    series = {
        sampler: [
            (np.asarray(c.numbers), np.asarray(c.elapsed_s), np.asarray(c.best_so_far))
            for c in group
        ]
        for sampler, group in result.by_sampler().items()
    }
    files["plot"] = plots.plot_best_so_far(series, result.metric, out / "compare.png")
    return files


def _num(value: float) -> str:
    return "" if not math.isfinite(value) else f"{value:.6g}"
