"""Study benchmark (issue 3): orchestration overhead, training throughput, memory over trials.

* overhead: a study of identical trials through ``run_study`` (SQLite study database and
  SQLite MLflow store in a temporary folder, one fixed configuration, no pruner), each sized to
  train about 30 s (the course CNN on synthetic 80x60 images; the epochs are calibrated),
  against the same model built and ``model.fit`` bare on the same arrays with the same epochs,
  batch size and seeds, ``clear_session`` before each as in a trial. The bare runs happen in
  between the trials (from the ``trial_finished`` observer hook, outside the trials' timing):
  bare, trial, bare, ..., trial, bare; each trial is compared with the mean of its two
  neighbours. On a shared machine the load moves a 30 s fit by seconds, so the verdict uses
  (a - b) with each run's own Keras training time subtracted (``keras.Model.fit`` minus its
  callback hooks, timed by wrapping them); the raw (a - b) is printed beside it. Target: at
  most 1 % of the trial. A table of timed calls (gc.collect, MLflow, Optuna storage, model
  save, build) shows where a trial's time outside training goes.
* throughput: inside ``model.fit`` a trial differs from a bare fit only by its callbacks
  (the per-epoch MLflow/Optuna reporter and early stopping), so the verdict uses each trial's
  own fit: its time less the callbacks' extra, over its time. Cross-checks, alternated:
  images/s of the epochs after the first inside the trials (epoch ends from the
  ``epoch_ended`` hook) against the bare fits around them, fastest epoch and median epoch.
  Target: at least 95 % of bare.
* memory: resident memory after trial 3 and after trial 30 of a study of tiny models
  (32x24 images, one epoch each, a small space sampled by TPE), sampled in ``trial_finished``.
  Target: within 10 % growth.

Prints the machine and Markdown tables, then one PASS/FAIL line per target (exit status 1 if
one fails).

    .venv/bin/python bench/bench_study.py            # all three, about 7 min on 2 cores
    .venv/bin/python bench/bench_study.py --quick    # shorter trials, fewer of them
    .venv/bin/python bench/bench_study.py --only overhead
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from machine import cpu_model, load_average  # bench/machine.py

from tuner.data.layout import Dataset, Split
from tuner.data.preprocess import Preprocessing

SEED = 1234
# The course's CNN: three conv blocks 16/32/64, 3x3, max pooling 2/2/4, dense 64, Adam 1e-3.
COURSE_CNN: dict[str, Any] = {
    "n_blocks": 3,
    "filters_1": 16,
    "filters_2": 32,
    "filters_3": 64,
    "kernel_size": 3,
    "pooling": "max",
    "pool_size_1": 2,
    "pool_size_2": 2,
    "pool_size_3": 4,
    "batch_norm": False,
    "dense_units": 64,
    "dropout": 0.0,
    "learning_rate": 0.001,
    "batch_size": 64,
    "optimizer": "adam",
}
# The memory study: tiny CNNs with a handful of searched settings (as tests/tiny.py).
TINY_PARAMS: dict[str, Any] = {
    "n_blocks": {"type": "int", "low": 1, "high": 2},
    "filters_1": {"type": "categorical", "choices": [4, 8, 16]},
    "filters_2": {"type": "categorical", "choices": [4, 8, 16], "when": "n_blocks >= 2"},
    "pool_size_1": {"type": "categorical", "choices": [2, 4]},
    "pool_size_2": {"type": "categorical", "choices": [2, 4], "when": "n_blocks >= 2"},
    "dense_units": {"type": "categorical", "choices": [0, 16, 32]},
    "learning_rate": {"type": "float", "low": 1.0e-4, "high": 3.0e-2, "log": True},
}


# ------------------------------------------------------------------------------ machine


def rss_bytes() -> int:
    """Resident memory of this process (psutil if installed, else /proc/self/status)."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def machine_rows() -> list[tuple[str, str]]:
    import keras
    import mlflow
    import optuna
    import tensorflow as tf

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        ("CPU", f"{cpu_model()}, nproc {cores}"),
        ("Python", platform.python_version()),
        (
            "Versions",
            f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
            f"Optuna {optuna.__version__}, MLflow {mlflow.__version__}",
        ),
        ("Load average at start (1/5/15 min)", load_average()),
    ]


# ------------------------------------------------------------------------------ data


def synthetic_dataset(
    n_train: int, n_val: int, n_classes: int, height: int, width: int, seed: int = 0
) -> Dataset:
    """Random-but-learnable images: each class is its own random ink pattern on light paper,
    drawn with per-image noise and a shift of up to 2 pixels."""
    rng = np.random.default_rng(seed)
    templates = rng.random((n_classes, height + 4, width + 4)) < 0.15

    def draw(count: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, n_classes, count).astype(np.int32)
        dy, dx = rng.integers(0, 5, count), rng.integers(0, 5, count)
        ink = np.stack(
            [
                templates[k, y : y + height, x : x + width]
                for k, y, x in zip(labels, dy, dx, strict=True)
            ]
        )
        ink &= rng.random(ink.shape) < 0.9
        paper = rng.integers(190, 256, ink.shape)
        return np.where(ink, rng.integers(0, 80, ink.shape), paper).astype(np.uint8), labels

    def split(count: int, prefix: str) -> Split:
        images, labels = draw(count)
        return Split(images, labels, None, [f"Train/{prefix}{i}.png" for i in range(count)])

    return Dataset(
        root=Path("memory"),
        classes=[f"c{k:03d}" for k in range(n_classes)],
        train=split(n_train, ""),
        val=split(n_val, "v"),
        test=None,
        preprocessing=Preprocessing(height=height, width=width),
    )


# ------------------------------------------------------------------------------ studies


def make_space(name: str, epochs: int, batch_size: int, fixed: dict[str, Any], params: Any) -> Any:
    from tuner.space import parse_space

    return parse_space(
        {
            "name": name,
            "model": "cnn",
            "objective": {"metric": "val_accuracy", "direction": "maximize"},
            # patience = epochs: early stopping never cuts a trial short of the bare fit.
            "training": {"max_epochs": epochs, "patience": epochs, "batch_size": batch_size},
            "budget": {"n_trials": 1},
            "fixed": fixed,
            "params": params,
        }
    )


def new_tracking_uri(folder: Path) -> tuple[str, float]:
    """A migrated MLflow SQLite store in ``folder``, and the seconds creating it took."""
    from tuner.tracking.mlflow_tracker import Tracker

    uri = f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"
    started = time.perf_counter()
    Tracker(uri).client.search_experiments()
    return uri, time.perf_counter() - started


def study_settings(folder: Path, space: Any, n_trials: int, sampler: str) -> Any:
    from tuner.study.orchestrate import StudySettings

    uri, _ = new_tracking_uri(folder)
    return StudySettings(
        space=space,
        storage_url=f"sqlite:///{folder / 'study.db'}",
        tracking_uri=uri,
        sampler=sampler,
        pruner="none",
        seed=SEED,
        n_trials=n_trials,
    )


@dataclass
class FitRecord:
    """One ``model.fit`` call: its wall time, and the part of it spent in Keras callbacks'
    train/epoch hooks (the trial's MLflow/Optuna reporter and early stopping run there)."""

    start: float = 0.0
    end: float = 0.0
    callbacks_s: float = 0.0

    @property
    def training_s(self) -> float:
        """model.fit without its callbacks: data setup, tracing, the epochs, validation."""
        return self.end - self.start - self.callbacks_s


class FitRecorder:
    """Times every ``model.fit`` in this process, and the callback hooks inside it, by wrapping
    ``keras.Model.fit`` and four ``CallbackList`` hooks (the bare fits and the trials alike)."""

    HOOKS = ("on_train_begin", "on_epoch_begin", "on_epoch_end", "on_train_end")

    def __init__(self) -> None:
        self.fits: list[FitRecord] = []

    def install(self) -> None:
        import keras

        recorder = self
        original_fit = keras.Model.fit

        def fit(model: Any, *args: Any, **kwargs: Any) -> Any:
            record = FitRecord(start=time.perf_counter())
            recorder.fits.append(record)
            try:
                return original_fit(model, *args, **kwargs)
            finally:
                record.end = time.perf_counter()

        keras.Model.fit = fit  # type: ignore[method-assign]
        for hook in self.HOOKS:
            original = getattr(keras.callbacks.CallbackList, hook)

            def timed(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return _original(self, *args, **kwargs)
                finally:
                    if recorder.fits:
                        recorder.fits[-1].callbacks_s += time.perf_counter() - started

            setattr(keras.callbacks.CallbackList, hook, timed)


RECORDER = FitRecorder()


class Stopwatch:
    """Time spent in named groups of calls while a study runs its trials (outermost call only,
    so a timed call inside another is not counted twice; paused during the bare runs)."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.active = False
        self.depth = 0

    def wrap(self, owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)
        watch = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            if not watch.active or watch.depth:
                return original(*args, **kwargs)
            watch.depth += 1
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                watch.depth -= 1
                watch.totals[label] = watch.totals.get(label, 0.0) + time.perf_counter() - started
                watch.counts[label] = watch.counts.get(label, 0) + 1

        setattr(owner, name, timed)

    def install(self) -> None:
        import gc

        import keras
        import optuna
        import optuna.study._optimize

        from tuner.models import artifacts, builder
        from tuner.study.trial_runner import TrialRunner
        from tuner.tracking.mlflow_tracker import Tracker

        self.wrap(gc, "collect", GC)
        for method in (
            "start_trial_run",
            "log_metrics",
            "set_tags",
            "log_params",
            "log_text",
            "log_artifacts",
            "end_run",
        ):
            self.wrap(Tracker, method, MLFLOW)
        for owner, method in (
            (optuna.Study, "ask"),
            (optuna.Study, "get_trials"),
            (optuna.study._optimize, "_tell_with_warning"),
            (optuna.storages, "fail_stale_trials"),
            (optuna.Trial, "report"),
            (optuna.Trial, "should_prune"),
            (optuna.Trial, "set_user_attr"),
        ):
            self.wrap(owner, method, OPTUNA)
        self.wrap(artifacts, "save_bundle", SAVE)
        self.wrap(builder, "build_model", BUILD)
        self.wrap(keras.Model, "summary", SUMMARY)
        original_call = TrialRunner.__call__
        watch = self

        def call(runner: Any, trial: Any) -> Any:
            watch.active = True  # from the first trial on: not the study's setup
            return original_call(runner, trial)

        TrialRunner.__call__ = call  # type: ignore[method-assign,assignment]


GC = "gc.collect (in clear_session, and Optuna's gc_after_trial)"
MLFLOW = "MLflow calls (Tracker: run, params, metrics, tags, text, artifacts)"
OPTUNA = "Optuna storage (ask, tell, report, should_prune, get_trials, user attrs, heartbeat)"
SAVE = "Model save (save_bundle: model.keras + meta.json)"
BUILD = "Model build + compile (a bare run builds too)"
SUMMARY = "model.summary for model_summary.txt"
STOPWATCH = Stopwatch()


@dataclass
class Timeline:
    """perf_counter times of one bare run or one trial: start, each epoch's end, end; and
    its model.fit."""

    start: float = 0.0
    epochs: list[float] = field(default_factory=list)
    end: float = 0.0
    fit: FitRecord = field(default_factory=FitRecord)

    @property
    def total_s(self) -> float:
        return self.end - self.start

    @property
    def non_training_s(self) -> float:
        """Everything but Keras training: for a trial, the orchestration."""
        return self.total_s - self.fit.training_s

    def epoch_s(self, how: str = "fastest") -> float:
        """Wall time of an epoch after the first (no tracing), callbacks included: the fastest
        (the least disturbed by other load on the machine) or the median."""
        if len(self.epochs) < 2:
            return float("nan")
        times = np.diff(self.epochs).tolist()
        return min(times) if how == "fastest" else statistics.median(times)

    def callbacks_per_epoch_s(self) -> float:
        return self.fit.callbacks_s / max(len(self.epochs), 1)


def bare_fit(data: Dataset, params: dict[str, Any], epochs: int, seed: int) -> Timeline:
    """What a hand-written loop does per configuration: clear, seed, build, fit."""
    import keras

    from tuner.models.builder import build_model

    was_active, STOPWATCH.active = STOPWATCH.active, False
    line = Timeline(start=time.perf_counter())

    class EpochClock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            line.epochs.append(time.perf_counter())

    keras.backend.clear_session(free_memory=True)
    keras.utils.set_random_seed(seed)
    h, w = data.train.images.shape[1:3]
    model = build_model("cnn", params, (h, w, 1), len(data.classes))
    model.fit(
        data.train.images[..., None],
        data.train.labels,
        validation_data=(data.val.images[..., None], data.val.labels),
        batch_size=int(params["batch_size"]),
        epochs=epochs,
        callbacks=[EpochClock()],
        verbose=0,
    )
    line.end = time.perf_counter()
    line.fit = RECORDER.fits[-1]
    STOPWATCH.active = was_active
    return line


class Probe:
    """A TrialObserver that times each trial, samples RSS after each trial, and can run a bare
    fit after each trial (between trials; its time is not charged to either)."""

    def __init__(self, between: Any = None, count_objects: bool = False) -> None:
        self.between = between
        self.count_objects = count_objects
        self.objects: dict[int, int] = {}  # objects the garbage collector tracks
        self.components: dict[int, dict[str, float]] = {}  # Stopwatch totals after trial n
        self.trials: dict[int, Timeline] = {}
        self.started: dict[int, float] = {}  # trial_started: sampled, MLflow run open
        self.resumed: dict[int, float] = {}  # when the work after trial n returned
        self.rss: dict[int, int] = {}
        self.states: dict[int, str] = {}
        self.bare: list[Timeline] = []

    def trial_started(self, number: int, params: dict[str, Any]) -> None:
        self.started[number] = time.perf_counter()
        self.trials[number] = Timeline()

    def epoch_ended(self, number: int, epoch: int, logs: dict[str, float]) -> None:
        self.trials[number].epochs.append(time.perf_counter())

    def trial_finished(self, trial: Any) -> None:
        now = time.perf_counter()
        self.components[trial.number] = dict(STOPWATCH.totals)
        line = self.trials.setdefault(trial.number, Timeline())
        line.end = now
        if RECORDER.fits:
            line.fit = RECORDER.fits[-1]
        self.states[trial.number] = trial.state.name
        self.rss[trial.number] = rss_bytes()
        if self.count_objects:
            self.objects[trial.number] = len(gc.get_objects())
        if self.between is not None:
            self.bare.append(self.between(trial.number + 1))
        self.resumed[trial.number] = time.perf_counter()


def warm_up(folder: Path) -> float:
    """One tiny study and one tiny bare fit, so lazy imports and TensorFlow's first-use
    initialisation are not charged to the first measured trial."""
    from tuner.study.orchestrate import run_study

    started = time.perf_counter()
    data = synthetic_dataset(64, 16, 4, 32, 24)
    fixed = {**COURSE_CNN, "n_blocks": 1, "batch_size": 32}
    space = make_space("warmup", 1, 32, fixed, {})
    run_study(study_settings(folder, space, 1, "random"), data)
    bare_fit(data, fixed, 1, SEED)
    return time.perf_counter() - started


# ------------------------------------------------------------------------------ overhead


@dataclass
class PairResult:
    """One trial and the mean of the two bare runs around it."""

    number: int
    trial: Timeline
    bare_s: float  # clear + build + fit
    bare_non_training_s: float  # clear + build + fit's own overhead beyond training
    bare_epoch_s: float  # the mean of the two runs' fastest epoch 2+
    bare_epoch_median_s: float
    bare_callbacks_per_epoch_s: float
    until_started_s: float  # loop, budget check, ask, sample, MLflow run: until trial_started
    after_fit_s: float  # fit's end to trial_finished: save, log, close run, gc, callbacks

    @property
    def extra_s(self) -> float:
        """What the study adds to a hand-written loop, each run's own training subtracted."""
        return self.trial.non_training_s - self.bare_non_training_s

    @property
    def raw_extra_s(self) -> float:
        return self.trial.total_s - self.bare_s


def calibrate(data: Dataset, target_s: float) -> tuple[int, float, float]:
    """Epochs for a ``target_s`` fit: a 2-epoch bare fit gives the first and a later epoch."""
    line = bare_fit(data, COURSE_CNN, 2, SEED)
    first = line.epochs[0] - line.start
    later = line.epochs[1] - line.epochs[0]
    epochs = max(2, round((target_s - (first - later)) / later))
    return epochs, first, later


def bench_overhead(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from tuner.study.orchestrate import run_study

    data = synthetic_dataset(args.train_images, args.val_images, 55, 80, 60)
    n_img = len(data.train)
    epochs, first, later = args.epochs, float("nan"), float("nan")
    if epochs is None:
        epochs, first, later = calibrate(data, args.trial_seconds)
    print(
        f"overhead: {n_img} + {len(data.val)} images 80x60, 55 classes, course CNN, batch 64, "
        f"{epochs} epochs (calibration: first epoch {first:.1f} s, later {later:.1f} s), "
        f"{args.trials} trials",
        file=sys.stderr,
    )
    space = make_space("bench_fixed", epochs, 64, dict(COURSE_CNN), {})
    folder = tmp / "overhead"
    folder.mkdir()
    settings = study_settings(folder, space, args.trials, "random")
    _, store_s = new_tracking_uri(tmp / "store-timing")

    probe = Probe(between=lambda k: bare_fit(data, COURSE_CNN, epochs, SEED + k))
    probe.bare.append(bare_fit(data, COURSE_CNN, epochs, SEED))  # bare 0, before trial 0
    wall_start = datetime.datetime.now()
    t0 = time.perf_counter()
    STOPWATCH.active = False  # until the first trial starts
    STOPWATCH.totals.clear()
    STOPWATCH.counts.clear()
    outcome = run_study(settings, data, observers=[probe])
    STOPWATCH.active = False
    total = time.perf_counter() - t0
    if outcome.counts.get("COMPLETE") != args.trials:
        raise SystemExit(f"expected {args.trials} complete trials, got {outcome.counts}")

    import optuna

    from tuner.study.storage import open_storage

    frozen = optuna.load_study(
        study_name=settings.name, storage=open_storage(settings.storage_url, heartbeat=False)
    ).get_trials()
    # Setup: open the study, MLflow experiment and parent run, until trial 0 was created.
    first_start = frozen[0].datetime_start or wall_start
    setup_s = (first_start - wall_start).total_seconds()
    pairs = []
    for i in range(args.trials):
        line = probe.trials[i]
        line.start = t0 + setup_s if i == 0 else probe.resumed[i - 1]
        around = (probe.bare[i], probe.bare[i + 1])
        pairs.append(
            PairResult(
                number=i,
                trial=line,
                bare_s=statistics.mean(b.total_s for b in around),
                bare_non_training_s=statistics.mean(b.non_training_s for b in around),
                bare_epoch_s=statistics.mean(b.epoch_s() for b in around),
                bare_epoch_median_s=statistics.mean(b.epoch_s("median") for b in around),
                bare_callbacks_per_epoch_s=statistics.mean(
                    b.callbacks_per_epoch_s() for b in around
                ),
                until_started_s=probe.started[i] - line.start,
                after_fit_s=line.end - line.fit.end,
            )
        )
    in_study = total - sum(b.total_s for b in probe.bare[1:])
    return {
        "epochs": epochs,
        "n_images": n_img,
        "pairs": pairs,
        "bare": probe.bare,
        "setup_s": setup_s,
        "store_s": store_s,
        "run_study_s": in_study,
        "components": [probe.components[i] for i in range(args.trials)],
        "component_counts": dict(STOPWATCH.counts),
    }


# ------------------------------------------------------------------------------ memory


def bench_memory(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from tuner.study.orchestrate import run_study

    data = synthetic_dataset(400, 100, 8, 32, 24, seed=1)
    space = make_space(
        "bench_memory",
        1,
        32,
        {"kernel_size": 3, "pooling": "max", "batch_norm": False, "optimizer": "adam"},
        TINY_PARAMS,
    )
    folder = tmp / "memory"
    folder.mkdir()
    probe = Probe(count_objects=True)
    print(f"memory: {args.memory_trials} tiny trials", file=sys.stderr)
    started = time.perf_counter()
    run_study(study_settings(folder, space, args.memory_trials, "tpe"), data, observers=[probe])
    elapsed = time.perf_counter() - started
    numbers = sorted(probe.rss)
    return {
        "rss": [probe.rss[n] for n in numbers],
        "states": [probe.states[n] for n in numbers],
        "objects": [probe.objects[n] for n in numbers],
        "elapsed_s": elapsed,
    }


# ------------------------------------------------------------------------------ report


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def verdict(ok: bool, text: str) -> str:
    return f"{'PASS' if ok else 'FAIL'} {text}"


def report_overhead(res: dict[str, Any], verdicts: list[str]) -> list[tuple[str, ...]]:
    pairs: list[PairResult] = res["pairs"]
    n_img = res["n_images"]

    def mean(values: Any) -> float:
        return statistics.mean(list(values))

    trial = mean(p.trial.total_s for p in pairs)
    bare = mean(p.bare_s for p in pairs)
    extra = mean(p.extra_s for p in pairs)
    raw = mean(p.raw_extra_s for p in pairs)
    strict = mean(p.trial.non_training_s for p in pairs)
    share = extra / trial
    t_epoch = mean(p.trial.epoch_s() for p in pairs)
    b_epoch = mean(p.bare_epoch_s for p in pairs)
    ratio = mean(p.bare_epoch_s / p.trial.epoch_s() for p in pairs)
    ratio_median = mean(p.bare_epoch_median_s / p.trial.epoch_s("median") for p in pairs)
    cb_trial = mean(p.trial.callbacks_per_epoch_s() for p in pairs)
    cb_bare = mean(p.bare_callbacks_per_epoch_s for p in pairs)
    # Inside model.fit a trial differs from a bare fit only by its callbacks (same process,
    # model, arrays, batch size, seeds), so each trial's own fit gives its throughput
    # relative to bare: fit time without the callbacks' extra over fit time. No other run is
    # compared, so load on the machine between runs does not enter.
    ratio_fit = mean(
        1.0
        - (p.trial.fit.callbacks_s - p.bare_callbacks_per_epoch_s * len(p.trial.epochs))
        / (p.trial.fit.end - p.trial.fit.start)
        for p in pairs
    )
    n = len(pairs)
    rows: list[tuple[str, ...]] = [
        (
            f"Trial through run_study, mean of {n} ({res['epochs']} epochs, {n_img} images "
            "80x60, course CNN)",
            f"{trial:.2f} s",
            "about 30 s",
            "",
        ),
        ("Bare clear_session + build + model.fit, same seeds, in between", f"{bare:.2f} s", "", ""),
        (
            "**Orchestration overhead per trial**: (a − b) / a, each run's own model.fit "
            "training time subtracted",
            f"**{share:+.2%}** (**{extra:+.2f} s** per trial)",
            "≤ 1 %",
            "PASS" if share <= 0.01 else "FAIL",
        ),
        (
            "The same, raw wall times (a − b) / a (load noise between runs included)",
            f"{raw / trial:+.2%} ({raw:+.2f} s)",
            "",
            "info",
        ),
        (
            "Everything in a trial but Keras training (also clear_session, build, fit setup)",
            f"{strict / trial:.2%} ({strict:.2f} s)",
            "",
            "info",
        ),
        (
            "Study setup per run_study call (open study, experiment, parent run)",
            f"{res['setup_s']:.2f} s",
            "",
            "info",
        ),
        (
            "New MLflow SQLite store (once per store: schema migration)",
            f"{res['store_s']:.2f} s",
            "",
            "info",
        ),
        (
            "**Training throughput in a trial / bare**: the trial's model.fit time less its "
            "callbacks' extra, over its model.fit time",
            f"**{ratio_fit:.1%}** (callbacks {cb_trial * 1000:.0f} ms per epoch in a trial, "
            f"{cb_bare * 1000:.0f} ms bare)",
            "≥ 95 %",
            "PASS" if ratio_fit >= 0.95 else "FAIL",
        ),
        (
            "Cross-check, alternated: fastest epoch 2+ of each trial vs of the bare runs around it",
            f"{ratio:.1%} ({n_img / t_epoch:,.0f} vs {n_img / b_epoch:,.0f} images/s)",
            "",
            "info",
        ),
        (
            "Cross-check, alternated, median epochs (load noise included)",
            f"{ratio_median:.1%}",
            "",
            "info",
        ),
    ]
    verdicts.append(
        verdict(
            share <= 0.01,
            f"overhead: {share:+.2%} of a {trial:.1f} s trial ({extra:+.2f} s per trial; "
            f"raw wall-time difference {raw:+.2f} s; target <= 1 %)",
        )
    )
    verdicts.append(
        verdict(
            ratio_fit >= 0.95,
            f"throughput: {ratio_fit:.1%} of bare model.fit inside a trial (callbacks "
            f"{cb_trial * 1000:.0f} ms per epoch; alternated epochs: fastest {ratio:.1%}, "
            f"median {ratio_median:.1%}; target >= 95 %)",
        )
    )
    return rows


def detail_overhead(res: dict[str, Any]) -> str:
    rows = []
    for p in res["pairs"]:
        t = p.trial
        rows.append(
            (
                str(p.number),
                f"{t.total_s:.2f}",
                f"{p.bare_s:.2f}",
                f"{t.fit.training_s:.2f}",
                f"{t.non_training_s:.2f} / {p.bare_non_training_s:.2f}",
                f"{p.extra_s:+.2f}",
                f"{p.until_started_s:.2f}",
                f"{t.fit.start - p.trial.start - p.until_started_s:.2f}",
                f"{t.fit.callbacks_s:.2f}",
                f"{p.after_fit_s:.2f}",
                f"{t.epoch_s():.2f} / {p.bare_epoch_s:.2f}",
                f"{t.epoch_s('median'):.2f} / {p.bare_epoch_median_s:.2f}",
            )
        )
    bare = ", ".join(f"{b.total_s:.2f} (training {b.fit.training_s:.2f})" for b in res["bare"])
    return (
        table(
            rows,
            (
                "trial",
                "trial s",
                "bare s",
                "trial training s",
                "not training s: trial / bare",
                "extra s",
                "to trial_started s",
                "trial_started to fit s",
                "callbacks in fit s",
                "fit end to finished s",
                "fastest epoch s: trial / bare",
                "median epoch s: trial / bare",
            ),
        )
        + f"\n\nBare runs in order, s: {bare}\n\n"
        + components_table(res)
    )


def components_table(res: dict[str, Any]) -> str:
    """Where each trial's time outside training goes (the study's setup excluded; trial 0
    misses its own ``ask``)."""
    snapshots: list[dict[str, float]] = res["components"]
    counts: dict[str, int] = res["component_counts"]
    n = len(snapshots)
    per_trial = [
        {k: v - (snapshots[i - 1].get(k, 0.0) if i else 0.0) for k, v in snap.items()}
        for i, snap in enumerate(snapshots)
    ]
    labels = sorted(snapshots[-1], key=snapshots[-1].__getitem__, reverse=True)
    rows = [
        (
            label,
            *(f"{t.get(label, 0.0):.3f}" for t in per_trial),
            f"{counts.get(label, 0) / n:.1f}",
        )
        for label in labels
    ]
    rows.append(
        (
            "(the study's extra time, from above)",
            *(f"{p.extra_s:.3f}" for p in res["pairs"]),
            "",
        )
    )
    return "Timed calls inside the study, s:\n\n" + table(
        rows, ("calls", *(f"trial {i}" for i in range(n)), "calls per trial")
    )


def report_memory(res: dict[str, Any], verdicts: list[str]) -> list[tuple[str, ...]]:
    rss = res["rss"]
    n = len(rss)
    first, last = rss[2], rss[-1]
    growth = (last - first) / first
    ok = growth <= 0.10
    verdicts.append(
        verdict(
            ok,
            f"memory: RSS {mib(first)} after trial 3 -> {mib(last)} after trial {n} "
            f"({growth:+.1%}; target <= +10 %)",
        )
    )
    objects = res["objects"]
    states: dict[str, int] = {}
    for state in res["states"]:
        states[state] = states.get(state, 0) + 1
    return [
        (
            f"**RSS after trial 3 → after trial {n}** (tiny models, 1 epoch)",
            f"{mib(first)} → {mib(last)} (**{growth:+.1%}**)",
            "≤ +10 %",
            "PASS" if ok else "FAIL",
        ),
        (
            f"Objects tracked by the garbage collector, after trial 3 → {n}",
            f"{objects[2]:,} → {objects[-1]:,} "
            f"({(objects[-1] - objects[2]) / (n - 3):+,.0f} per trial)",
            "",
            "info",
        ),
        (
            f"Memory study wall time ({n} trials: "
            + ", ".join(f"{c} {s.lower()}" for s, c in sorted(states.items()))
            + ")",
            f"{res['elapsed_s']:.1f} s ({res['elapsed_s'] / n:.2f} s/trial)",
            "",
            "info",
        ),
    ]


def quiet() -> None:
    """Keep stderr to progress lines: no deprecation notes, no INFO logs from the libraries."""
    import logging

    import mlflow  # noqa: F401  (configures its loggers on import: quiet them after)
    import optuna

    warnings.simplefilter("ignore", FutureWarning)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.WARNING)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("overhead", "throughput", "memory"))
    parser.add_argument("--quick", action="store_true", help="short trials, fewer of them")
    parser.add_argument("--trials", type=int, help="measured trials (default 3; quick 2)")
    parser.add_argument("--epochs", type=int, help="epochs per trial (default: calibrated)")
    parser.add_argument("--trial-seconds", type=float, help="trial length to calibrate for")
    parser.add_argument("--train-images", type=int, default=2400)
    parser.add_argument("--val-images", type=int, default=600)
    parser.add_argument("--memory-trials", type=int, help="default 30; quick 12")
    args = parser.parse_args()
    args.trials = args.trials or (2 if args.quick else 3)
    args.trial_seconds = args.trial_seconds or (10.0 if args.quick else 30.0)
    args.memory_trials = args.memory_trials or (12 if args.quick else 30)
    if args.memory_trials < 4:
        parser.error("--memory-trials must be at least 4")

    quiet()
    started = time.perf_counter()
    machine = machine_rows()
    rows: list[tuple[str, ...]] = []
    verdicts: list[str] = []
    details = ""
    with tempfile.TemporaryDirectory(prefix="tuner-bench-study-") as name:
        tmp = Path(name)
        RECORDER.install()
        STOPWATCH.install()
        warm = warm_up(tmp / "warmup")
        if args.only in (None, "memory"):
            rows += report_memory(bench_memory(args, tmp), verdicts)
        if args.only in (None, "overhead", "throughput"):
            res = bench_overhead(args, tmp)
            rows = report_overhead(res, verdicts) + rows
            details = detail_overhead(res)
    machine.append(("Load average at end", load_average()))
    machine.append(("Process warm-up (imports, first tiny study)", f"{warm:.1f} s"))
    machine.append(("Benchmark wall time", f"{time.perf_counter() - started:.0f} s"))
    command = "python bench/bench_study.py " + " ".join(sys.argv[1:])
    print(f"## Study benchmark\n\n`{command.strip()}`\n")
    print(table(machine, ("Machine", "")))
    print()
    print(table(rows, ("Measurement", "Figure", "Target", "Verdict")))
    if details:
        print("\nPer trial:\n")
        print(details)
    print()
    if args.only in ("overhead", "throughput"):
        verdicts = [v for v in verdicts if v.split()[1].startswith(args.only)]
    for line in verdicts:
        print(line)
    return 0 if all(v.startswith("PASS") for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
