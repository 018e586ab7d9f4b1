"""This tool against Keras Tuner, side by side: same space, same data, same model code, same clock.

    nice -n 10 .venv/bin/python bench/vs_keras_tuner.py                 # the full comparison
    .venv/bin/python bench/vs_keras_tuner.py --quick                    # a tiny end-to-end check
    .venv/bin/python bench/vs_keras_tuner.py --report-only              # redo table and plot
    .venv/bin/python bench/vs_keras_tuner.py --out bench/results/vs_keras_tuner/600s --report-only

(Keras Tuner is the optional ``bench`` extra: ``pip install -e '.[bench]'``.)

What is compared
  * One search space, written once: ``search_spaces/casia_cnn.yaml``. Keras Tuner gets it
    translated programmatically (``bench/vs_kt_space.py``: hp.Int / hp.Float(sampling="log") /
    hp.Choice, ``when`` conditions as conditional scopes), and its ``build(hp)`` calls OUR
    ``tuner.models.builder.build_model`` with the sampled dict: both sides train the identical
    network for the same values. Searched data parameters (``preprocess_*``) act through our
    ``TrialData`` on both sides (the hypermodel's ``fit``). The space's ``enqueue`` (the
    course's CNN as trial 0) is left out unless ``--enqueue``, since Keras Tuner has no way to
    start from a given point; searched synthetic mixing (``synth_ratio``) is fixed at 0 unless
    ``--with-mixing`` (see MIXING_PARAMS).
  * The same arrays: both sides load the dataset with ``tuner.data.layout.load_dataset(root,
    seed=SEED)`` (what ``tune run --seed SEED`` does), so train/validation/test are identical.
  * The same training: max epochs, early stopping (val_accuracy, same patience, restore best
    weights), batch size from the sampled values; a trial's value is its best epoch.
  * The same clock: every run is a fresh process started by this script; its clock starts when
    the process is started (imports, data loading, start-up included) and the process is
    stopped (SIGINT, then SIGKILL) when the budget is spent. Only trials finished within the
    budget count. Runs are interleaved by seed (configurations in a different order for each
    seed) to spread drift in the machine's load.

Configurations
  ours: ``tune run`` (the real CLI) with sampler random / tpe / gp, each without pruning and
  with the median pruner, and TPE + median with ``--workers 2`` (two worker processes, one
  CPU thread each). Keras Tuner: RandomSearch, BayesianOptimization (5 initial random points,
  as our TPE and GP), Hyperband (max_epochs = the runs' max epochs, factor 3).

Recorded
  For every run, each finished trial's time and value, hence the best validation accuracy
  reached against wall time; the test accuracy of each run's winner (ours: the model our tool
  logged to MLflow for that trial; Keras Tuner: ``tuner.get_best_models()``). Headline: the time
  our tool needs to reach a target validation accuracy (within ``--margin`` of the best any
  run found) divided by the time the best Keras Tuner configuration needs (medians over seeds;
  a run that never reaches the target counts as the full budget).

Outputs in ``--out`` (default bench/out/vs_keras_tuner/): ``timeseries.csv``, ``runs.csv``,
``results.md``, ``best_val_vs_time.png``, and ``runs/<config>/seed<k>/`` (logs, raw events).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import vs_kt_report  # noqa: E402  (sibling module, found through the line above)

DEFAULT_OUT = REPO / "bench" / "out" / "vs_keras_tuner"
CASIA_SAMPLE = Path("/work/shared/data/casia-hwdb-sample")
STUDY_NAME = "casia_cnn"
#: How long a stopped run gets to exit after SIGINT before SIGKILL (not part of its budget).
STOP_GRACE_S = 5.0


@dataclass(frozen=True)
class Config:
    name: str
    side: str  # "ours" or "kt"
    label: str
    sampler: str = ""  # ours
    pruner: str = "none"  # ours
    workers: int = 1  # ours
    algo: str = ""  # kt


CONFIGS: dict[str, Config] = {
    c.name: c
    for c in (
        Config("ours-random", "ours", "ours: random", sampler="random"),
        Config("ours-random-median", "ours", "ours: random + median", "random", "median"),
        Config("ours-tpe", "ours", "ours: TPE", sampler="tpe"),
        Config("ours-tpe-median", "ours", "ours: TPE + median (tune run default)", "tpe", "median"),
        Config("ours-gp", "ours", "ours: GP", sampler="gp"),
        Config("ours-gp-median", "ours", "ours: GP + median", "gp", "median"),
        Config("ours-tpe-median-2w", "ours", "ours: TPE + median, 2 workers", "tpe", "median", 2),
        Config("kt-random", "kt", "Keras Tuner: RandomSearch", algo="random"),
        Config("kt-bayes", "kt", "Keras Tuner: BayesianOptimization", algo="bayes"),
        Config("kt-hyperband", "kt", "Keras Tuner: Hyperband", algo="hyperband"),
    )
}
#: Run order within a seed (reversed for every other seed): the two sides alternate.
ORDER = (
    "kt-random",
    "ours-random",
    "kt-bayes",
    "ours-tpe",
    "kt-hyperband",
    "ours-tpe-median",
    "ours-random-median",
    "ours-gp",
    "ours-gp-median",
    "ours-tpe-median-2w",
)
#: The configuration the headline speaks for: what ``tune run`` does without options.
OUR_DEFAULT = "ours-tpe-median"


# --- machine ----------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 1024**2, 1)
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "nproc": nproc,
        "cpu_model": model,
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "nice": os.nice(0) if hasattr(os, "nice") else 0,
    }


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("tensorflow", "keras", "keras-tuner", "optuna", "mlflow", "torch"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def the_command() -> str:
    python = os.path.relpath(sys.executable, Path.cwd())
    script = os.path.relpath(Path(__file__).resolve(), Path.cwd())
    cmd = shlex.join([python, script, *sys.argv[1:]])
    nice = os.nice(0) if hasattr(os, "nice") else 0
    return f"nice -n {nice} {cmd}" if nice else cmd


# --- data -------------------------------------------------------------------------------------


def _class_view(src: Path, classes: list[str], dest: Path) -> Path:
    """A dataset folder holding only ``classes`` of ``src``: symlinks to its class folders (no
    image is copied), its own classes.txt, and writers.csv rows of those classes."""
    stamp = dest / ".view.json"
    wanted = {"src": str(src.resolve()), "classes": classes}
    if stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")) == wanted:
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    for split in ("Train", "Test"):
        if not (src / split).is_dir():
            continue
        (dest / split).mkdir(parents=True)
        for cls in classes:
            (dest / split / cls).symlink_to((src / split / cls).resolve(), True)
    (dest / "classes.txt").write_text("".join(f"{c}\n" for c in classes), encoding="utf-8")
    writers = src / "writers.csv"
    if writers.is_file():
        lines = writers.read_text(encoding="utf-8").splitlines()
        keep = set(classes)
        rows = [ln for ln in lines[1:] if ln.split(",")[1:2] and ln.split(",")[1] in keep]
        (dest / "writers.csv").write_text("\n".join([lines[0], *rows]) + "\n", encoding="utf-8")
    stamp.write_text(json.dumps(wanted, ensure_ascii=False), encoding="utf-8")
    return dest


def _synth_with_cli(dest: Path, train_writers: int, test_writers: int) -> Path | None:
    """``tune data synth --chars course55 ...`` into ``dest``; None if the command fails."""
    if (dest / "Train").is_dir() and (dest / "classes.txt").is_file():
        return dest
    cmd = [
        sys.executable, "-m", "tuner", "data", "synth", "--chars", "course55", "--out", str(dest),
        "--train-writers", str(train_writers), "--test-writers", str(test_writers),
    ]  # fmt: skip
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"  tune data synth failed to run: {exc}")
        return None
    if done.returncode != 0 or not (dest / "Train").is_dir():
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        print(f"  tune data synth is not usable here ({last[0][:160]})")
        shutil.rmtree(dest, ignore_errors=True)
        return None
    return dest


def resolve_data(args: argparse.Namespace, out: Path) -> tuple[Path, str]:
    """The dataset folder both sides train on, and a line saying where it comes from."""
    from tuner.data.layout import read_class_order

    if args.data:
        src, what = Path(args.data).expanduser().resolve(), f"--data {args.data}"
    else:
        src, what = None, ""
        try:
            from tuner.synth.default import default_dataset_root  # type: ignore[import-not-found]

            src, what = Path(default_dataset_root()), "the embedded synthetic default"
        except ImportError:
            print("  tuner.synth.default is not there yet; trying `tune data synth`")
            folder = out / "data" / f"synth-course55-w{args.train_writers}-t{args.test_writers}"
            made = _synth_with_cli(folder, args.train_writers, args.test_writers)
            if made is not None:
                src, what = made, f"`tune data synth` course55 ({args.train_writers} writers)"
        if src is None:
            src = CASIA_SAMPLE
            what = "real CASIA sample (fallback: no synthetic generator available yet)"
            print(f"  falling back to {src}")
    classes = read_class_order(src)
    if args.classes and args.classes < len(classes):
        view = out / "data" / f"view-{src.name}-{args.classes}c"
        root = _class_view(src, classes[: args.classes], view)
        return root, f"{what}, first {args.classes} of its {len(classes)} classes ({src})"
    return src, f"{what}, all {len(classes)} classes ({src})"


def describe_data(root: Path) -> dict[str, Any]:
    """Load (and cache) the study's splits once, before any run is timed. Every run, of either
    tool and any seed, trains and validates on these splits (``tune run``'s, made with seed 0)."""
    from tuner.data.layout import load_dataset

    d = load_dataset(root)
    return {
        "classes": len(d.classes),
        "train": len(d.train.labels),
        "val": len(d.val.labels),
        "test": 0 if d.test is None else len(d.test.labels),
        "image": list(d.train.images.shape[1:]),
        "writers_known": d.train.writers is not None,
    }


def data_variants(space_file: Path) -> list[dict[str, Any]]:
    """Every combination of the space's searched data parameters (preprocessing, synthetic
    mixing) that can be enumerated, with inactive ones dropped."""
    import itertools

    from tuner.space import CategoricalParam, IntParam, load_space
    from tuner.study.trial_data import SEARCHED_DATA_PARAMS

    space = load_space(space_file)
    domains: list[tuple[str, list[Any]]] = []
    for param in space.params:
        if param.name not in SEARCHED_DATA_PARAMS:
            continue
        if isinstance(param, CategoricalParam):
            domains.append((param.name, list(param.choices)))
        elif isinstance(param, IntParam) and (param.high - param.low) // param.step < 50:
            domains.append((param.name, list(range(param.low, param.high + 1, param.step))))
    seen: list[dict[str, Any]] = []
    for combo in itertools.product(*(values for _, values in domains)):
        values = space.active_params(dict(zip([n for n, _ in domains], combo, strict=True)))
        if values not in seen:
            seen.append(values)
    return seen


def prewarm(space_file: Path, root: Path) -> str:
    """Build, outside every run's clock, the per-trial data variants (re-read preprocessing,
    synthetic pools) that the first run to sample them would otherwise pay for alone: both
    tools read them from the same on-disk cache, so no run is charged for one-off work."""
    from tuner.space import load_space
    from tuner.study.data_source import load_for_space

    started = time.perf_counter()
    variants = data_variants(space_file)
    space = load_space(space_file)
    trial_data = load_for_space(space, root)
    for values in variants:
        trial_data.dataset(values)
    took = time.perf_counter() - started
    return f"{len(variants)} data variants in {took:.0f} s"


def renderer_version() -> str:
    """The synthetic renderer's version (part of the synthetic pools' cache key)."""
    try:
        from tuner.data.mixing import _renderer_version

        return str(_renderer_version())
    except Exception:  # the mixing module is not there (older tool)
        return "n/a"


# --- the space --------------------------------------------------------------------------------


#: Searched synthetic mixing, left out unless --with-mixing: its synthetic pools are cached on
#: disk under a key that includes a hash of the renderer's source, so on a machine where the
#: renderer is being edited, whichever run first samples a mix pays minutes of rendering
#: inside its budget (and the pools cannot be built beforehand, as the data variants are).
MIXING_PARAMS = ("synth_ratio", "synth_variety")


def _drop_params(data: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    """Remove ``names`` from a space's plain data, with every parameter conditioned on them
    (transitively) and their values in enqueued trials. Returns what was removed."""
    params: dict[str, Any] = data["params"]
    gone = [n for n in names if n in params]
    changed = True
    while changed:
        changed = False
        for name, spec in params.items():
            when = spec.get("when", [])
            when = [when] if isinstance(when, str) else when
            if name not in gone and any(str(c).split()[0] in gone for c in when):
                gone.append(name)
                changed = True
    for name in gone:
        params.pop(name, None)
    data["enqueue"] = [{k: v for k, v in e.items() if k not in gone} for e in data["enqueue"]]
    return gone


def write_space(out: Path, args: argparse.Namespace) -> Path:
    """The space both sides read: casia_cnn with the runs' max epochs and patience."""
    import yaml

    from tuner.space import load_space, parse_space

    space = load_space(args.space)
    data = space.to_dict()
    data["training"]["max_epochs"] = args.max_epochs
    data["training"]["patience"] = args.patience
    data["budget"] = {"n_trials": 100_000, "timeout": None}
    if not args.with_mixing:
        dropped = _drop_params(data, MIXING_PARAMS)
        if dropped:
            data["fixed"] = {**data.get("fixed", {}), "synth_ratio": 0.0}
    if not args.enqueue:
        data["enqueue"] = []
    parse_space(data)  # still a valid space
    folder = out / "space"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{space.name}.yaml"
    header = (
        f"# Written by bench/vs_keras_tuner.py from {space.source}: the same parameters, with\n"
        "# the benchmark's max_epochs and patience, no enqueued trials unless --enqueue, and\n"
        "# synth_ratio fixed at 0 unless --with-mixing.\n"
    )
    path.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "utf-8")
    return path


# --- one run ----------------------------------------------------------------------------------


def _command(cfg: Config, run_dir: Path, ctx: dict[str, Any], seed: int, t0: float) -> list[str]:
    if cfg.side == "ours":
        cmd = [
            sys.executable, "-m", "tuner", "run", ctx["space"],
            "--data", ctx["data"],
            "--study-name", STUDY_NAME,
            "--storage", f"sqlite:///{run_dir / 'study.db'}",
            "--tracking-uri", f"sqlite:///{run_dir / 'mlruns' / 'mlflow.db'}",
            "--sampler", cfg.sampler,
            "--pruner", cfg.pruner,
            "--seed", str(seed),
            "--n-trials", "100000",
            "--timeout", str(ctx["budget"]),
            "--no-live",
        ]  # fmt: skip
        if cfg.workers > 1:
            cmd += ["--workers", str(cfg.workers)]
        return cmd
    return [
        sys.executable, str(BENCH_DIR / "vs_kt_runner.py"), "kt",
        "--run-dir", str(run_dir),
        "--algo", cfg.algo,
        "--space", ctx["space"],
        "--data", ctx["data"],
        "--seed", str(seed),
        "--max-epochs", str(ctx["max_epochs"]),
        "--patience", str(ctx["patience"]),
        "--t0", repr(t0),
    ]  # fmt: skip


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT to the run's process group (our CLI records the running trial as interrupted;
    workers get it too), then SIGKILL to whatever is left of that group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_GRACE_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)


def _ours_trials(run_dir: Path, t0: float) -> tuple[list[dict[str, Any]], float | None]:
    """Finished trials of our study (from its database) as events, and when the first began."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    db = run_dir / "study.db"
    if not db.exists():
        return [], None
    try:
        study = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{db}")
    except Exception:  # the run died before creating its study
        return [], None
    events = []
    starts = []
    for t in study.get_trials(deepcopy=False):
        if t.datetime_start is not None:
            starts.append(t.datetime_start.timestamp() - t0)
        if t.datetime_complete is None:
            continue
        state = t.state.name
        if t.user_attrs.get("interrupted"):
            state = "INTERRUPTED"
        events.append(
            {
                "t": t.datetime_complete.timestamp() - t0,
                "ref": t.user_attrs.get("mlflow_run_id", ""),
                "trial": t.number,
                "state": state,
                "value": t.value if state == "COMPLETE" else None,
                "epochs": t.user_attrs.get("epochs"),
            }
        )
    return sorted(events, key=lambda e: e["t"]), (min(starts) if starts else None)


def _kt_trials(run_dir: Path) -> tuple[list[dict[str, Any]], float | None]:
    path = run_dir / "events.jsonl"
    if not path.exists():
        return [], None
    events, ready = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            e = json.loads(line)
        except json.JSONDecodeError:  # a line cut by the stop
            continue
        if e.get("event") == "ready":
            ready = e["t"]
        elif e.get("event") == "trial":
            events.append({k: v for k, v in e.items() if k != "event"})
    return events, ready


def warm_tracking_store(out: Path) -> Path:
    """An empty MLflow store with its schema already created, made once per benchmark.

    A user's ``mlruns/`` exists after their first study; creating the schema (tens of
    migrations, seconds) is a one-off cost that a per-run fresh store would charge every run.
    """
    template = out / "warm_mlruns" / "mlflow.db"
    if not template.exists():
        from tuner.tracking.mlflow_tracker import Tracker

        Tracker(f"sqlite:///{template}")
    return template


def run_one(cfg: Config, seed: int, run_dir: Path, ctx: dict[str, Any]) -> dict[str, Any]:
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    if cfg.side == "ours" and ctx.get("warm_tracking"):
        (run_dir / "mlruns").mkdir()
        shutil.copyfile(ctx["warm_tracking"], run_dir / "mlruns" / "mlflow.db")
    budget = float(ctx["budget"])
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("TUNE_STORAGE", None)
    load_before = os.getloadavg()
    started_at = dt.datetime.now().isoformat(timespec="seconds")
    t0 = time.time()
    cmd = _command(cfg, run_dir, ctx, seed, t0)
    with (run_dir / "log.txt").open("wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=run_dir, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        stopped = False
        while proc.poll() is None:
            left = t0 + budget - time.time()
            if left <= 0:
                _stop(proc)
                stopped = True
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=min(left, 1.0))
    wall = time.time() - t0
    if cfg.side == "ours":
        events, ready = _ours_trials(run_dir, t0)
    else:
        events, ready = _kt_trials(run_dir)
    with (run_dir / "trials.jsonl").open("w", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")
    log_tail = (run_dir / "log.txt").read_text(errors="replace").strip().splitlines()[-3:]
    meta = {
        "config": cfg.name,
        "side": cfg.side,
        "label": cfg.label,
        "seed": seed,
        "budget_s": budget,
        "started_at": started_at,
        "t0": t0,
        "wall_s": round(wall, 1),
        "stopped_at_budget": stopped,
        "returncode": proc.returncode,
        "first_trial_start_s": ready,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "command": shlex.join(cmd),
        "log_tail": [] if stopped or proc.returncode == 0 else log_tail,
        "complete": True,
    }
    (run_dir / "run.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return meta


# --- evaluation -------------------------------------------------------------------------------


def evaluate_winners(out: Path, runs: list[vs_kt_report.Run], ctx: dict[str, Any]) -> None:
    """Test accuracy of each run's winner (best trial finished within its budget), in one
    child process for all runs; already evaluated winners are kept."""
    results_file = out / "test_accuracy.json"
    done = json.loads(results_file.read_text("utf-8")) if results_file.exists() else {}
    jobs = []
    for run in runs:
        win = run.winner()
        if win is None or done.get(run.key, {}).get("ref") == win["ref"]:
            continue
        done.pop(run.key, None)
        cfg = CONFIGS[run.config]
        jobs.append(
            {
                "key": run.key,
                "side": run.side,
                "ref": win["ref"],
                "algo": cfg.algo,
                "seed": run.seed,
                "run_dir": str(run.dir),
                "space": ctx["space"],
                "data": ctx["data"],
                "max_epochs": ctx["max_epochs"],
                "tracking_uri": f"sqlite:///{run.dir / 'mlruns' / 'mlflow.db'}",
            }
        )
    results_file.write_text(json.dumps(done, indent=1), encoding="utf-8")
    if not jobs:
        return
    jobs_file = out / "eval_jobs.json"
    jobs_file.write_text(json.dumps(jobs, indent=1), encoding="utf-8")
    print(f"evaluating {len(jobs)} winners on the test split ...", flush=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    with (out / "eval_log.txt").open("wb") as log:
        subprocess.run(
            [sys.executable, str(BENCH_DIR / "vs_kt_runner.py"), "evaluate",
             str(jobs_file), str(results_file)],
            stdout=log, stderr=subprocess.STDOUT, env=env, check=False,
        )  # fmt: skip


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="This tool against Keras Tuner on the same space, data and clock.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    p.add_argument("--budget-s", type=float, default=180.0, help="wall-clock budget per run")
    p.add_argument("--seeds", type=int, default=2, help="seeds per configuration (1, 2, ...)")
    p.add_argument("--max-epochs", type=int, default=6, help="max epochs per trial, both sides")
    p.add_argument("--patience", type=int, default=3, help="early-stopping patience, both sides")
    p.add_argument("--classes", type=int, default=20, help="classes of the dataset to use")
    p.add_argument("--data", help="a dataset folder (Train/, Test/); default: synthetic")
    p.add_argument("--train-writers", type=int, default=150, help="for `tune data synth`")
    p.add_argument("--test-writers", type=int, default=30, help="for `tune data synth`")
    p.add_argument("--space", default="casia_cnn", help="search space name or YAML file")
    p.add_argument("--enqueue", action="store_true", help="keep the space's enqueued trials")
    p.add_argument(
        "--with-mixing",
        action="store_true",
        help="keep the space's searched synthetic mixing (synth_ratio, synth_variety)",
    )
    p.add_argument(
        "--configs", default=",".join(ORDER), help=f"comma-separated subset of: {', '.join(ORDER)}"
    )
    p.add_argument(
        "--margin", type=float, default=0.01, help="target = best val acc of any run - margin"
    )
    p.add_argument("--quick", action="store_true", help="tiny: 4 classes, 30 s, 1 seed, 3 epochs")
    p.add_argument("--resume", action="store_true", help="keep finished runs in --out")
    p.add_argument("--report-only", action="store_true", help="only redo the outputs")
    p.add_argument(
        "--records",
        type=Path,
        help="also copy the small records (settings, trial events, test accuracies, results) "
        "here, without the models: enough for --report-only, or, copied to a new --out, for "
        "--resume to add runs",
    )
    args = p.parse_args(argv)
    if args.quick:  # tiny settings, unless given explicitly
        for name, value in (("classes", 4), ("budget_s", 30.0), ("seeds", 1), ("max_epochs", 3)):
            if getattr(args, name) == p.get_default(name):
                setattr(args, name, value)
        if args.out == DEFAULT_OUT:
            args.out = DEFAULT_OUT.parent / "vs_keras_tuner_quick"
    unknown = [c for c in args.configs.split(",") if c not in CONFIGS]
    if unknown:
        p.error(f"unknown configuration(s) {unknown}; choose from {', '.join(ORDER)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    command = the_command()
    machine = machine_info()
    print(f"command: {command}")
    print(
        f"machine: nproc {machine['nproc']}, CPU {machine['cpu_model']}, "
        f"{machine['memory_gb']} GB, load {os.getloadavg()[0]:.1f}"
    )
    settings_file = out / "settings.json"
    if args.report_only:
        settings = json.loads(settings_file.read_text("utf-8"))
        ctx = settings["ctx"]
    else:
        if "kt" in {CONFIGS[c].side for c in args.configs.split(",")}:
            import importlib.util

            if importlib.util.find_spec("keras_tuner") is None:  # (importing it loads TF)
                raise SystemExit("Keras Tuner is not installed: pip install -e '.[bench]'")
        print("data:")
        root, origin = resolve_data(args, out)
        seeds = list(range(1, args.seeds + 1))  # Keras Tuner takes seed 0 as "no seed"
        data_info = describe_data(root)
        print(f"  {origin}: {data_info}")
        space_file = write_space(out, args)
        print(f"  pre-warming the per-trial data cache: {prewarm(space_file, root)}")
        ctx = {
            "space": str(space_file),
            "data": str(root),
            "data_origin": origin,
            "data_info": data_info,
            "budget": args.budget_s,
            "max_epochs": args.max_epochs,
            "patience": args.patience,
            "seeds": seeds,
            "configs": args.configs.split(","),
            "enqueue": args.enqueue,
            "with_mixing": args.with_mixing,
            # Before 2026-11-27 Keras Tuner's runs split with their run seed, ours with 0.
            "split": SPLIT,
            "renderer_at_start": renderer_version(),
            "warm_tracking": str(warm_tracking_store(out)),
        }
        settings = {
            "command": command,
            "machine": machine,
            "versions": versions(),
            "ctx": ctx,
            "started_at": dt.datetime.now().isoformat(timespec="seconds"),
        }
        if args.resume and settings_file.is_file():
            settings = merged_settings(json.loads(settings_file.read_text("utf-8")), settings)
            ctx = settings["ctx"]
        settings_file.write_text(json.dumps(settings, indent=1, ensure_ascii=False), "utf-8")
        chosen = [c for c in ORDER if c in args.configs.split(",")]
        schedule = []
        for i, seed in enumerate(seeds):
            order = chosen if i % 2 == 0 else chosen[::-1]
            schedule += [(CONFIGS[c], seed) for c in order]
        total = len(schedule) * args.budget_s / 60
        print(f"{len(schedule)} runs of {args.budget_s:.0f} s: about {total:.0f} min plus stops")
        for n, (cfg, seed) in enumerate(schedule, 1):
            run_dir = out / "runs" / cfg.name / f"seed{seed}"
            if args.resume and (run_dir / "run.json").is_file():
                print(f"[{n}/{len(schedule)}] {cfg.name} seed {seed}: kept from before")
                continue
            meta = run_one(cfg, seed, run_dir, ctx)
            run = vs_kt_report.load_run(run_dir)
            best = run.best_value()
            print(
                f"[{n}/{len(schedule)}] {cfg.name} seed {seed}: {run.n_finished()} trials, "
                f"best val acc {'-' if best is None else f'{best:.4f}'}, "
                f"rc {meta['returncode']}, load {meta['load_after'][0]:.1f}",
                flush=True,
            )
        settings["finished_at"] = dt.datetime.now().isoformat(timespec="seconds")
        ctx["renderer_at_end"] = renderer_version()
        settings_file.write_text(json.dumps(settings, indent=1, ensure_ascii=False), "utf-8")
    runs = vs_kt_report.load_runs(out)
    evaluate_winners(out, runs, ctx)
    report = vs_kt_report.write_outputs(
        out, runs, settings, margin=args.margin, our_default=OUR_DEFAULT
    )
    print(report)
    if args.records:
        print(f"records: {keep_records(out, args.records.resolve())}")


#: What must be the same for runs to be compared in one report.
#: How every run's train/validation split is made (recorded; --resume refuses other splits).
SPLIT = "tune run's (seed 0), the same for both tools and every seed"
SAME_FOR_ALL_RUNS = (
    "budget", "max_epochs", "patience", "enqueue", "with_mixing", "data_info", "split",
)  # fmt: skip


def merged_settings(before: dict[str, Any], now: dict[str, Any]) -> dict[str, Any]:
    """Settings of a folder that ``--resume`` adds runs to (other configurations, more seeds):
    the first command stays, later ones are listed, configurations and seeds are the union.
    Runs measured under other settings (budget, epochs, data, ...) would not compare, so
    resuming into such a folder is refused."""
    old_ctx, new_ctx = before["ctx"], now["ctx"]
    differ = [k for k in SAME_FOR_ALL_RUNS if old_ctx.get(k) != new_ctx.get(k)]
    if differ:
        raise SystemExit(
            f"--resume: {', '.join(differ)} differ from the runs already in this folder "
            f"({', '.join(f'{k}={old_ctx.get(k)!r}' for k in differ)}); use another --out"
        )
    merged = dict(before)
    merged["ctx"] = {
        **new_ctx,
        "configs": [c for c in ORDER if c in {*old_ctx["configs"], *new_ctx["configs"]}],
        "seeds": sorted({*old_ctx["seeds"], *new_ctx["seeds"]}),
        "renderer_at_start": old_ctx.get("renderer_at_start"),
    }
    merged["later_commands"] = [
        *before.get("later_commands", []),
        {"command": now["command"], "started_at": now["started_at"], "versions": now["versions"]},
    ]
    return merged


def keep_records(out: Path, records: Path) -> Path:
    """Copy what the report is made from (a few hundred KB) to ``records``: a folder to commit,
    and to pass as --out with --report-only to redraw the report."""
    names = ["settings.json", "test_accuracy.json", "results.md", "timeseries.csv", "runs.csv"]
    for name in names:
        if (out / name).is_file():
            records.mkdir(parents=True, exist_ok=True)
            shutil.copy2(out / name, records / name)
    for meta in sorted((out / "runs").glob("*/seed*/run.json")):
        target = records / meta.parent.relative_to(out)
        target.mkdir(parents=True, exist_ok=True)
        for name in ("run.json", "trials.jsonl"):
            if (meta.parent / name).is_file():
                shutil.copy2(meta.parent / name, target / name)
    return records


if __name__ == "__main__":
    main()
