"""Worker benchmark: trials per hour with 1 worker against 2 workers on the same study.

Each configuration gets a fresh SQLite study database and a fresh SQLite MLflow store, both
made exactly as ``tune run`` makes them (``prepare_study``), and then real ``tune worker``
processes (the command ``tune run --workers N`` launches, from ``worker_command``), each with
its share of the machine's threads: 1 worker with ``--threads 2``, 2 workers with
``--threads 1`` each (``--threads-total`` changes the 2). The study is fixed: one CNN
architecture with only the learning rate searched (random sampler, pruner none, patience =
epochs), so every trial costs the same, on a few hundred synthetic character PNGs (32x24,
stretched to the study's 80x60 as every dataset is). The decoded-array cache is built once
before the runs, so no run pays for decoding.

Per run:

* wall: from launching the workers to the last worker's exit (Python, TensorFlow, MLflow start-up
  and the idle wait of a worker whose study is finished elsewhere included: users pay them);
* steady: trials / (last trial complete - first trial start) from the study's own timestamps;
* start-up (launch to first trial start), tail (last trial complete to last exit), mean trial
  duration, CPU seconds of the workers (getrusage of the children), their share of the
  machine's cores, and each worker's peak thread count (from /proc).

The order alternates (1w, 2w, 1w, 2w, ...) to cancel drift in the machine's load. On a
shared machine with autogroup scheduling (Linux's default) the CPU is split between sessions
before processes, so this benchmark's workers, 1 or 2, share one session's slice: "cores busy"
shows what they got. ``--nice -10`` (root) raises the session's priority so they get the
machine, as on a machine of one's own; the previous niceness is restored at the end. Prints the
machine and Markdown tables, then PASS/FAIL for 2 workers >= 1.3x the trials/hour of 1 (wall,
start-up included; exit status 1 on FAIL).

    .venv/bin/python bench/bench_workers.py                  # 8 trials, 2 repeats: ~5 min
    .venv/bin/python bench/bench_workers.py --trials 12 --repeats 3
    .venv/bin/python bench/bench_workers.py --quick          # 4 trials, 1 repeat
    .venv/bin/python bench/bench_workers.py --nice -10       # as root, on a shared machine
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from machine import cpu_model, load_average, nproc  # bench/machine.py

TARGET = 1.3
CLASSES = ["大", "天", "夫", "人", "口", "日", "月", "木"]
IMG_H, IMG_W = 32, 24


# ------------------------------------------------------------------------------ machine


def machine_rows() -> list[tuple[str, str]]:
    import mlflow
    import optuna

    from tuner.study.workers import threads_per_worker

    return [
        ("CPU", f"{cpu_model()}, nproc {nproc()}, os.cpu_count {os.cpu_count()}"),
        ("threads_per_worker(1), (2)", f"{threads_per_worker(1)}, {threads_per_worker(2)}"),
        ("Python", platform.python_version()),
        ("Versions", f"Optuna {optuna.__version__}, MLflow {mlflow.__version__}"),
        ("Load average at start (1/5/15 min)", load_average()),
        ("Scheduling", scheduling()),
    ]


def scheduling() -> str:
    enabled = Path("/proc/sys/kernel/sched_autogroup_enabled")
    group = Path("/proc/self/autogroup")
    if enabled.exists() and enabled.read_text().strip() == "1" and group.exists():
        return (
            f"autogroup on: CPU shared by session first; this session {group.read_text().strip()}"
        )
    return f"no autogroup; process niceness {os.getpriority(os.PRIO_PROCESS, 0)}"


# ------------------------------------------------------------------------------ study


def write_dataset(root: Path, n_per_class: int, seed: int = 0) -> Path:
    """Class k: a dark stroke block at its own place on light paper, noise and small shifts."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, count in (("Train", n_per_class), ("Test", max(n_per_class // 5, 2))):
        for k, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                img = rng.integers(200, 256, size=(IMG_H, IMG_W)).astype(np.uint8)
                top = 2 + (k // 4) * 14 + int(rng.integers(-2, 3))
                left = 1 + (k % 4) * 5 + int(rng.integers(-1, 2))
                img[max(top, 0) : top + 10, max(left, 0) : left + 5] = int(rng.integers(0, 60))
                Image.fromarray(img).save(folder / f"{i + 1}.png")
    return root


def space_dict(epochs: int, batch_size: int) -> dict[str, Any]:
    return {
        "name": "bench_workers",
        "description": "fixed small CNN, learning rate searched: every trial costs the same",
        "dataset": "default",
        "model": "cnn",
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "training": {"max_epochs": epochs, "patience": epochs, "batch_size": batch_size},
        "budget": {"n_trials": 8},
        "fixed": {
            "n_blocks": 2,
            "filters_1": 16,
            "filters_2": 32,
            "kernel_size": 3,
            "pooling": "max",
            "pool_size_1": 2,
            "pool_size_2": 2,
            "batch_norm": False,
            "dense_units": 32,
            "dropout": 0.0,
            "optimizer": "adam",
        },
        "params": {"learning_rate": {"type": "float", "low": 1.0e-3, "high": 1.0e-2, "log": True}},
    }


# ------------------------------------------------------------------------------ one run


@dataclass
class Run:
    workers: int
    threads: int
    n_trials: int
    wall_s: float
    steady_s: float
    startup_s: float
    tail_s: float
    trial_s: list[float]
    cpu_s: float
    exit_codes: list[int]
    states: dict[str, int]
    peak_threads: list[int]
    worker_cpu_share: list[float]  # each worker's CPU seconds / its lifetime
    load_before: str
    startup_cpu_s: float  # the workers' CPU seconds before their first trial started
    steady_cpu_s: float  # their CPU seconds from their first trial's start to their last's end
    steady_busy_s: float  # summed over workers: first trial start to last trial end
    log_tails: list[str] = field(default_factory=list)

    @property
    def completed(self) -> int:
        return self.states.get("COMPLETE", 0)

    @property
    def per_hour_wall(self) -> float:
        return 3600 * self.completed / self.wall_s

    @property
    def per_hour_steady(self) -> float:
        return 3600 * self.completed / self.steady_s if self.steady_s > 0 else 0.0

    @property
    def cpu_per_trial(self) -> float:
        return self.steady_cpu_s / max(self.completed, 1)

    @property
    def cores_busy(self) -> float:
        """Cores kept busy while the workers ran trials (2.0 is all of a 2-core machine)."""
        return self.steady_cpu_s / self.steady_s if self.steady_s > 0 else 0.0


def _proc_cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def _proc_threads(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_once(
    folder: Path,
    data_root: Path,
    n_workers: int,
    threads: int,
    n_trials: int,
    epochs: int,
    batch_size: int,
    timeout_s: float,
) -> Run:
    import optuna

    from tuner.space import parse_space
    from tuner.study.orchestrate import StudySettings, prepare_study
    from tuner.study.storage import open_storage
    from tuner.study.workers import worker_command
    from tuner.tracking.mlflow_tracker import Tracker

    folder.mkdir(parents=True)
    settings = StudySettings(
        space=parse_space(space_dict(epochs, batch_size)),
        storage_url=f"sqlite:///{folder / 'tuner.db'}",
        tracking_uri=f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}",
        sampler="random",
        pruner="none",
        n_trials=n_trials,
        data=str(data_root),
    )
    prepare_study(settings, Tracker(settings.tracking_uri))  # what `tune run` does first
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    load_before = load_average()
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    logs = [folder / f"worker-{i + 1}.log" for i in range(n_workers)]
    launched_at = time.time()
    t0 = time.perf_counter()
    procs = []
    for log in logs:
        with log.open("wb") as out:
            procs.append(
                subprocess.Popen(
                    worker_command(settings, threads=threads, seed=None, data=str(data_root)),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            )
    born = [time.perf_counter()] * n_workers
    ended: list[float | None] = [None] * n_workers
    cpu_seen = [0.0] * n_workers
    series: list[list[tuple[float, float]]] = [[] for _ in range(n_workers)]  # (time, CPU s)
    peak_threads = [0] * n_workers
    while any(e is None for e in ended):
        now = time.perf_counter()
        for i, p in enumerate(procs):
            if ended[i] is not None:
                continue
            if p.poll() is not None:
                ended[i] = now
                continue
            cpu = _proc_cpu_s(p.pid)
            if cpu is not None:
                cpu_seen[i] = cpu
                series[i].append((now, cpu))
            peak_threads[i] = max(peak_threads[i], _proc_threads(p.pid))
        if now - t0 > timeout_s:
            for p in procs:
                p.kill()
        time.sleep(0.2)
    wall = max(e for e in ended if e is not None) - t0
    usage_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (usage_after.ru_utime - usage_before.ru_utime) + (
        usage_after.ru_stime - usage_before.ru_stime
    )

    study = optuna.load_study(
        study_name=settings.name, storage=open_storage(settings.storage_url, heartbeat=False)
    )
    trials = study.get_trials(deepcopy=False)
    states: dict[str, int] = {}
    for t in trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    done = [t for t in trials if t.datetime_start and t.datetime_complete]
    starts = [t.datetime_start.timestamp() for t in done if t.datetime_start]
    completes = [t.datetime_complete.timestamp() for t in done if t.datetime_complete]
    durations = [c - s for s, c in zip(starts, completes, strict=True)]
    first_start = min(starts) if starts else launched_at
    last_complete = max(completes) if completes else launched_at
    codes = [p.returncode for p in procs]

    def cpu_at(i: int, wall_ts: float) -> float:
        """Worker i's CPU seconds at a wall-clock instant (the sample just before it)."""
        at = t0 + (wall_ts - launched_at)
        before = [c for t, c in series[i] if t <= at]
        return before[-1] if before else 0.0

    startup_cpu = steady_cpu = busy = 0.0
    for i, p in enumerate(procs):
        own = [t for t in done if t.user_attrs.get("worker", "").endswith(f":{p.pid}")]
        own_starts = [t.datetime_start.timestamp() for t in own if t.datetime_start]
        own_ends = [t.datetime_complete.timestamp() for t in own if t.datetime_complete]
        if not own_starts:
            continue
        startup_cpu += cpu_at(i, min(own_starts))
        steady_cpu += cpu_at(i, max(own_ends)) - cpu_at(i, min(own_starts))
        busy += max(own_ends) - min(own_starts)
    tails = []
    for code, log in zip(codes, logs, strict=True):
        if code != 0:
            lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
            tails.append(f"{log.name} (exit {code}): " + " / ".join(lines[-3:]))
    return Run(
        workers=n_workers,
        threads=threads,
        n_trials=n_trials,
        wall_s=wall,
        steady_s=last_complete - first_start,
        startup_s=first_start - launched_at,
        tail_s=(launched_at + wall) - last_complete,
        trial_s=durations,
        cpu_s=cpu_s,
        exit_codes=codes,
        states=states,
        peak_threads=peak_threads,
        worker_cpu_share=[
            cpu_seen[i] / max((ended[i] or t0) - born[i], 1e-9) for i in range(n_workers)
        ],
        load_before=load_before,
        startup_cpu_s=startup_cpu,
        steady_cpu_s=steady_cpu,
        steady_busy_s=busy,
        log_tails=tails,
    )


# ------------------------------------------------------------------------------ report


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def run_row(i: int, r: Run, cores: int) -> tuple[str, ...]:
    mean_trial = statistics.mean(r.trial_s) if r.trial_s else 0.0
    return (
        str(i),
        f"{r.workers} x --threads {r.threads}",
        f"{r.completed}/{r.n_trials}",
        f"{r.wall_s:.1f}",
        f"{r.per_hour_wall:,.0f}",
        f"{r.steady_s:.1f}",
        f"{r.per_hour_steady:,.0f}",
        f"{r.startup_s:.1f}",
        f"{r.tail_s:.1f}",
        f"{mean_trial:.1f}",
        f"{r.cpu_s:.0f} ({100 * r.cpu_s / (r.wall_s * cores):.0f} %)",
        f"{r.startup_cpu_s / r.workers:.1f}",
        f"{r.cpu_per_trial:.1f}",
        f"{r.cores_busy:.2f}",
        " / ".join(f"{100 * s:.0f} %" for s in r.worker_cpu_share),
        " / ".join(str(t) for t in r.peak_threads),
        r.load_before.split()[0],
    )


def summary(runs: list[Run]) -> tuple[str, float, float, float]:
    one = [r for r in runs if r.workers == 1]
    two = [r for r in runs if r.workers == 2]

    def mean(values: list[float]) -> float:
        return statistics.mean(values) if values else float("nan")

    rows = []
    for label, group in (("1 worker", one), ("2 workers", two)):
        trial_means = [statistics.mean(r.trial_s) for r in group if r.trial_s]
        rows.append(
            (
                label,
                f"{mean([r.per_hour_wall for r in group]):,.0f}",
                f"{mean([r.per_hour_steady for r in group]):,.0f}",
                f"{mean([r.startup_s for r in group]):.1f}",
                f"{mean([r.tail_s for r in group]):.1f}",
                f"{mean(trial_means):.1f}",
                f"{mean([r.startup_cpu_s / r.workers for r in group]):.1f}",
                f"{mean([r.cpu_per_trial for r in group]):.1f}",
                f"{mean([r.cores_busy for r in group]):.2f}",
            )
        )
    wall_ratio = mean([r.per_hour_wall for r in two]) / mean([r.per_hour_wall for r in one])
    steady_ratio = mean([r.per_hour_steady for r in two]) / mean([r.per_hour_steady for r in one])
    pairs = [b.per_hour_wall / a.per_hour_wall for a, b in zip(one, two, strict=False)]
    text = table(
        rows,
        (
            "config",
            "trials/h (wall)",
            "trials/h (steady)",
            "start-up s",
            "tail s",
            "mean trial s",
            "start-up CPU s / worker",
            "CPU s / trial (steady)",
            "cores busy (steady)",
        ),
    )
    text += (
        f"\n\nratio 2w / 1w: wall {wall_ratio:.2f}x, steady {steady_ratio:.2f}x; "
        f"per repeat (wall): {', '.join(f'{p:.2f}x' for p in pairs)}"
    )
    return text, wall_ratio, steady_ratio, min(pairs) if pairs else float("nan")


def quiet() -> None:
    import logging

    import mlflow  # noqa: F401  (configures its loggers on import: quiet them after)
    import optuna

    warnings.simplefilter("ignore", FutureWarning)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def set_priority(nice: int) -> Callable[[], None]:
    """Give this benchmark's scheduling group the niceness ``nice``; returns the undo.

    With autogroup scheduling (``/proc/sys/kernel/sched_autogroup_enabled``, the default on
    most distributions) the CPU is shared fairly between sessions first, then between the
    processes of a session: a process's own niceness does nothing against other sessions'
    load, the session group's does. The workers stay in this session, as ``tune run
    --workers`` keeps them in the user's: 1 worker and 2 workers get the same group share.
    """
    group = Path("/proc/self/autogroup")
    enabled = Path("/proc/sys/kernel/sched_autogroup_enabled")
    if group.exists() and enabled.exists() and enabled.read_text().strip() == "1":
        before = int(group.read_text().split("nice")[1])
        group.write_text(str(nice))
        print(
            f"autogroup niceness {before} -> {nice} ({group.read_text().strip()})", file=sys.stderr
        )

        def undo() -> None:
            group.write_text(str(before))

        return undo
    before = os.getpriority(os.PRIO_PROCESS, 0)
    os.setpriority(os.PRIO_PROCESS, 0, nice)  # the workers inherit it
    print(f"process niceness {before} -> {nice}", file=sys.stderr)
    return lambda: os.setpriority(os.PRIO_PROCESS, 0, before)


def measure_all(
    args: argparse.Namespace, n_trials: int, repeats: int, cores: int, total_threads: int
) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    os.environ["TUNER_CACHE_DIR"] = str(tmp / "cache")  # the workers inherit it
    machine = machine_rows()
    data_root = write_dataset(tmp / "data", args.per_class)
    from tuner.data.layout import load_dataset

    data = load_dataset(data_root)  # builds the decoded-array cache the workers then read
    print(
        f"dataset: {len(data.classes)} classes, {len(data.train.labels)} train / "
        f"{len(data.val.labels)} val images ({IMG_H}x{IMG_W} PNGs, studied at "
        f"{data.preprocessing.height}x{data.preprocessing.width}); {args.epochs} epochs, "
        f"batch {args.batch_size}; {n_trials} trials per study; {repeats} repeats; "
        f"scheduling niceness {args.nice}",
        file=sys.stderr,
    )
    runs: list[Run] = []
    plan = [n for _ in range(repeats) for n in (1, 2)]
    for i, n in enumerate(plan, 1):
        threads = max(1, total_threads // n)
        print(f"run {i}/{len(plan)}: {n} worker(s) x --threads {threads} ...", file=sys.stderr)
        run = run_once(
            tmp / f"run-{i}-{n}w",
            data_root,
            n,
            threads,
            n_trials,
            args.epochs,
            args.batch_size,
            timeout_s=max(600.0, 60.0 * n_trials),
        )
        print(
            f"  wall {run.wall_s:.1f} s, {run.completed} complete, "
            f"{run.per_hour_wall:,.0f} trials/h",
            file=sys.stderr,
        )
        for tail in run.log_tails:
            print(f"  {tail}", file=sys.stderr)
        runs.append(run)

    print("## Workers: trials per hour, 1 worker vs 2 workers\n")
    print(table(machine, ("machine", "")))
    print()
    header = (
        "#",
        "workers",
        "complete",
        "wall s",
        "trials/h (wall)",
        "steady s",
        "trials/h (steady)",
        "start-up s",
        "tail s",
        "mean trial s",
        "CPU s (of cores x wall)",
        "start-up CPU s / worker",
        "CPU s / trial (steady)",
        "cores busy (steady)",
        "CPU per worker",
        "peak threads",
        "load before",
    )
    print(table([run_row(i, r, cores) for i, r in enumerate(runs, 1)], header))
    print()
    text, wall_ratio, steady_ratio, worst = summary(runs)
    print(text)
    print()
    bad = [r for r in runs if r.completed != r.n_trials or any(c != 0 for c in r.exit_codes)]
    ok = wall_ratio >= TARGET and not bad
    print(
        f"{'PASS' if ok else 'FAIL'} 2 workers: {wall_ratio:.2f}x the trials/hour of 1 worker "
        f"(wall clock, start-up included; target >= {TARGET}x; steady {steady_ratio:.2f}x; "
        f"worst pair {worst:.2f}x)"
    )
    if bad:
        print(f"FAIL {len(bad)} run(s) did not complete every trial or had a worker exit badly")
    if args.keep:
        print(f"\nkept {tmp}")
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, help="trials per study (default 8; quick 4)")
    parser.add_argument("--repeats", type=int, help="(1w, 2w) pairs (default 2; quick 1)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per trial")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--per-class", type=int, default=60, help="training PNGs per class (x8)")
    parser.add_argument(
        "--threads-total", type=int, help="threads shared out (default: nproc, 2 here)"
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="niceness of this benchmark's scheduling group (negative, as root: ahead of the "
        "other sessions' load on a shared machine; see the docstring)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    n_trials = args.trials or (4 if args.quick else 8)
    repeats = args.repeats or (1 if args.quick else 2)
    cores = nproc()
    total_threads = args.threads_total or cores

    quiet()
    restore = set_priority(args.nice) if args.nice else None
    try:
        return measure_all(args, n_trials, repeats, cores, total_threads)
    finally:
        if restore is not None:
            restore()


if __name__ == "__main__":
    sys.exit(main())
