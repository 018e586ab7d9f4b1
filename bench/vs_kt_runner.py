"""Child processes of ``bench/vs_keras_tuner.py``: one Keras Tuner search, and the evaluation
of every run's winner on the test split. Both import TensorFlow; the orchestrator does not.

    python bench/vs_kt_runner.py kt --run-dir D --algo random|bayes|hyperband --space YAML
                                    --data ROOT --seed S --max-epochs E --patience P --t0 T
    python bench/vs_kt_runner.py evaluate JOBS.json RESULTS.json

A Keras Tuner search appends one JSON line per finished trial to ``D/events.jsonl``
(``t`` = seconds since ``T``, the orchestrator's clock when it started this process); the
orchestrator stops the process when the run's budget is spent.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import vs_kt_space  # a sibling module, found through the line above

KT_PROJECT = "kt"
EVENTS = "events.jsonl"
#: Bayesian optimisation starts, like our TPE and GP samplers (n_startup_trials=5), with 5
#: random trials (Keras Tuner's default is 3 x the number of parameters: 69 here).
KT_BAYES_INITIAL_POINTS = 5
KT_HYPERBAND_FACTOR = 3


def _append(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


def tuner_kwargs(algo: str, seed: int, max_epochs: int) -> tuple[Any, dict[str, Any]]:
    """The Keras Tuner class and its arguments for one of our named configurations."""
    import keras_tuner as kt

    common: dict[str, Any] = {
        "objective": kt.Objective("val_accuracy", direction="max"),
        "seed": seed,
        "executions_per_trial": 1,
        # A configuration that cannot be built is a failed trial and the search goes
        # on, as in our study; Keras Tuner stops after 3 failures in a row by default.
        "max_consecutive_failed_trials": 1_000_000,
    }
    if algo == "random":
        return kt.RandomSearch, {**common, "max_trials": 1_000_000}
    if algo == "bayes":
        return kt.BayesianOptimization, {
            **common,
            "max_trials": 1_000_000,
            "num_initial_points": KT_BAYES_INITIAL_POINTS,
        }
    if algo == "hyperband":
        return kt.Hyperband, {
            **common,
            "max_epochs": max_epochs,
            "factor": KT_HYPERBAND_FACTOR,
            "hyperband_iterations": 1_000_000,
        }
    raise SystemExit(f"unknown Keras Tuner algorithm {algo!r}")


def study_data(space_file: Path, root: str) -> Any:
    """The per-trial data provider, made exactly as ``tune run --data ROOT`` makes it
    (``load_for_space``): same validation split, preprocessing variants and mixing. The split
    does not depend on the run's seed (``tune run`` splits every study with seed 0), so both
    tools train and validate on the same images in every seed."""
    from tuner.space import load_space
    from tuner.study.data_source import load_for_space

    return load_for_space(load_space(space_file), root)


def build_tuner(
    algo: str,
    space_file: Path,
    run_dir: Path,
    seed: int,
    max_epochs: int,
    trial_data: Any,
    *,
    overwrite: bool,
    events: Path | None = None,
    t0: float = 0.0,
) -> Any:
    from tuner.space import load_space

    space = load_space(space_file)
    hypermodel = vs_kt_space.make_hypermodel(space, trial_data)
    cls, kwargs = tuner_kwargs(algo, seed, max_epochs)
    cls = _without_tensorboard(cls)
    if events is not None:
        cls = _logged(cls, events, t0)
    return vs_kt_space.make_tuner(
        hypermodel,
        cls,
        directory=str(run_dir),
        project_name=KT_PROJECT,
        overwrite=overwrite,
        **kwargs,
    )


def _without_tensorboard(cls: Any) -> Any:
    """``cls`` minus an import of ``tensorboard`` that it does for every trial.

    Keras Tuner 1.4.8 imports ``tensorboard`` at the start of every trial on the TensorFlow
    backend, only to patch TensorBoard callbacks, and does not depend on it; TensorFlow 2.21 no
    longer installs it, so every trial fails with ModuleNotFoundError. Without a TensorBoard
    callback (none here) the method does nothing else, so it is skipped.
    """

    class NoTensorBoard(cls):  # type: ignore[misc,valid-type]
        def _configure_tensorboard_dir(
            self, callbacks: Any, trial: Any, execution: int = 0
        ) -> None:
            if any(type(c).__name__ == "TensorBoard" for c in callbacks):
                super()._configure_tensorboard_dir(callbacks, trial, execution)

    NoTensorBoard.__name__ = cls.__name__
    return NoTensorBoard


def _logged(cls: Any, events: Path, t0: float) -> Any:
    """``cls`` with its documented trial hooks also writing the time series."""

    class Logged(cls):  # type: ignore[misc,valid-type]
        def on_search_begin(self) -> None:
            super().on_search_begin()
            _append(events, {"event": "ready", "t": time.time() - t0})

        def on_trial_end(self, trial: Any) -> None:
            super().on_trial_end(trial)  # the oracle scores the trial here
            done = self.oracle.get_trial(trial.trial_id)
            status = str(done.status)
            score = done.score
            _append(
                events,
                {
                    "event": "trial",
                    "t": time.time() - t0,
                    "ref": trial.trial_id,
                    "state": "COMPLETE" if status == "COMPLETED" else "FAIL",
                    "kt_status": status,
                    "value": None if score is None or not math.isfinite(score) else score,
                    "epochs": done.hyperparameters.values.get("tuner/epochs"),
                },
            )

    Logged.__name__ = cls.__name__
    return Logged


def run_kt(args: argparse.Namespace) -> None:
    import keras

    from tuner.space import load_space

    run_dir = Path(args.run_dir)
    events = run_dir / EVENTS
    space = load_space(args.space)
    trial_data = study_data(Path(args.space), args.data)
    tuner = build_tuner(
        args.algo,
        Path(args.space),
        run_dir,
        args.seed,
        args.max_epochs,
        trial_data,
        overwrite=True,
        events=events,
        t0=args.t0,
    )
    objective = space.objective
    stopper = keras.callbacks.EarlyStopping(
        monitor=objective.metric,
        mode="max" if objective.direction == "maximize" else "min",
        patience=args.patience,
        min_delta=space.training.min_delta,
        restore_best_weights=True,
    )
    # The arrays come from the hypermodel's fit (per trial, as in our trial runner).
    tuner.search(epochs=args.max_epochs, callbacks=[stopper], verbose=0)
    _append(events, {"event": "search_end", "t": time.time() - args.t0})


# --- evaluation -------------------------------------------------------------------------------


def _accuracy(model: Any, images: np.ndarray, labels: np.ndarray) -> float:
    logits = model.predict(images[..., None], batch_size=256, verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def _ours_model(job: dict[str, Any], tmp: Path) -> tuple[Any, dict[str, Any]]:
    """The winner's model as our tool logged it (MLflow run artifact ``model/``) and the
    trial's parameters logged with it."""
    from mlflow.tracking import MlflowClient

    from tuner.models.artifacts import ARTIFACT_DIR, load_bundle

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    client = MlflowClient(job["tracking_uri"])
    folder = Path(client.download_artifacts(job["ref"], ARTIFACT_DIR, str(tmp)))
    model, meta = load_bundle(folder)
    return model, dict(meta.params)


def _kt_model(job: dict[str, Any], trial_data: Any) -> tuple[Any, dict[str, Any]]:
    """The winner's model through Keras Tuner: ``get_best_models()`` when the winner within
    the budget is the oracle's best trial (the usual case), else ``load_model`` of that trial
    (what ``get_best_models`` calls); and the trial's parameters."""
    from tuner.space import load_space

    tuner = build_tuner(
        job["algo"],
        Path(job["space"]),
        Path(job["run_dir"]),
        job["seed"],
        job["max_epochs"],
        trial_data,
        overwrite=False,
    )
    trial = tuner.oracle.get_trial(job["ref"])
    params = vs_kt_space.trial_params(load_space(job["space"]), trial.hyperparameters.values)
    best = tuner.oracle.get_best_trials(1)
    if best and best[0].trial_id == job["ref"]:
        return tuner.get_best_models(1)[0], params
    return tuner.load_model(trial), params


def evaluate(jobs_file: Path, results_file: Path) -> None:
    """Test accuracy of each run's winner, on the test split read with the winner's own
    preprocessing; results are written after every run."""
    import keras

    jobs = json.loads(jobs_file.read_text(encoding="utf-8"))
    results: dict[str, Any] = {}
    if results_file.exists():
        results = json.loads(results_file.read_text(encoding="utf-8"))
    providers: dict[tuple[str, str], Any] = {}
    for job in jobs:
        key = job["key"]
        if key in results and results[key].get("test_accuracy") is not None:
            continue
        started = time.perf_counter()
        entry: dict[str, Any] = {"ref": job["ref"]}
        try:
            pkey = (job["space"], job["data"])
            if pkey not in providers:
                providers[pkey] = study_data(Path(job["space"]), job["data"])
            trial_data = providers[pkey]
            keras.backend.clear_session()
            with tempfile.TemporaryDirectory(prefix="vs-kt-eval-") as tmp:
                if job["side"] == "ours":
                    model, params = _ours_model(job, Path(tmp))
                else:
                    model, params = _kt_model(job, trial_data)
                data = trial_data.dataset(params)  # the winner's preprocessing
                if data.test is None:
                    raise RuntimeError(f"{job['data']} has no Test split")
                entry["test_accuracy"] = _accuracy(model, data.test.images, data.test.labels)
                entry["val_accuracy_check"] = _accuracy(model, data.val.images, data.val.labels)
        except Exception as exc:  # one unreadable run must not lose the others
            entry["test_accuracy"] = None
            entry["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        entry["seconds"] = round(time.perf_counter() - started, 1)
        results[key] = entry
        results_file.write_text(json.dumps(results, indent=1), encoding="utf-8")
        print(f"{key}: {entry}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    kt_cmd = sub.add_parser("kt", help="one Keras Tuner search (stopped from outside)")
    kt_cmd.add_argument("--run-dir", required=True)
    kt_cmd.add_argument("--algo", required=True, choices=["random", "bayes", "hyperband"])
    kt_cmd.add_argument("--space", required=True)
    kt_cmd.add_argument("--data", required=True)
    kt_cmd.add_argument("--seed", type=int, required=True)
    kt_cmd.add_argument("--max-epochs", type=int, required=True)
    kt_cmd.add_argument("--patience", type=int, required=True)
    kt_cmd.add_argument("--t0", type=float, required=True)
    ev = sub.add_parser("evaluate", help="test accuracy of each run's winner")
    ev.add_argument("jobs", type=Path)
    ev.add_argument("results", type=Path)
    args = parser.parse_args(argv)
    if args.command == "kt":
        run_kt(args)
    else:
        evaluate(args.jobs, args.results)


if __name__ == "__main__":
    main()
