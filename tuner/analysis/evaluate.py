"""``tune evaluate``: the best trial's model on the test split, and what it gets wrong.

The test images come from other writers than the training images in real CASIA, so the gap
between validation and test accuracy (the "writer gap") says how much of the validation score
was learning the writers rather than the characters.

Files written to the output folder (and logged to the study's MLflow parent run):

==========================  ==============================================================
metrics.json                loss, accuracy, top-5 accuracy; validation accuracy and the gap
per_class.csv               accuracy per character, worst first, with its usual confusion
least_legible.png           bar chart of the characters with the lowest accuracy
confusions.csv              (true, predicted) pairs of mistakes, most frequent first
failures.csv                every mistake: file, true, predicted, confidence
failures.png                a grid of mistakes titled like "东 not 本 (100%)"
confidence.png              histograms of the top probability when right and when wrong
==========================  ==============================================================
"""

from __future__ import annotations

import csv
import json
import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tuner.analysis import plots
from tuner.analysis.source import (
    StudyContext,
    check_same_classes,
    download_bundle,
    load_best_model,
    load_context,
    mlflow_log_folder,
    mlflow_log_metrics,
    resolve_data_root,
)
from tuner.errors import DataError, StudyError
from tuner.study.orchestrate import primary_value

if TYPE_CHECKING:
    import keras

    from tuner.data.layout import Split
    from tuner.data.preprocess import Preprocessing
    from tuner.models.artifacts import ModelMeta

TOP_K = 5


@dataclass
class Scores:
    loss: float
    accuracy: float
    top5_accuracy: float
    n: int


@dataclass
class ClassRow:
    cls: str
    n: int
    correct: int
    accuracy: float
    confused_with: str  # the most frequent wrong prediction, "" if none
    confused_count: int


@dataclass
class Confusion:
    true: str
    predicted: str
    count: int
    rate: float  # share of the true class's test images predicted as ``predicted``


@dataclass
class WriterRow:
    writer: str
    n: int
    correct: int
    accuracy: float


@dataclass
class Evaluation:
    study: str
    trial: int
    data_root: Path
    n_classes: int
    test: Scores
    val_accuracy: float | None  # the trial's, as recorded during the study
    writer_gap: float | None  # val_accuracy - test accuracy
    retrained: bool
    out: Path
    files: dict[str, Path] = field(default_factory=dict)
    per_class: list[ClassRow] = field(default_factory=list)
    confusions: list[Confusion] = field(default_factory=list)
    per_writer: list[WriterRow] = field(default_factory=list)  # worst first; [] if unknown
    logged_run_id: str | None = None
    log_problem: str | None = None


# --- scoring --------------------------------------------------------------------------------

# Images per model.predict call while evaluating: the (chunk, classes) probabilities are all
# that is held, so 3755 classes x 224k CASIA test images never sit in memory at once.
CHUNK = 4096


@dataclass
class Predictions:
    """What evaluation keeps of each image's class probabilities."""

    labels: np.ndarray  # (N,) true class
    top: np.ndarray  # (N, k) most probable classes, best first
    top_probs: np.ndarray  # (N, k) their probabilities
    true_prob: np.ndarray  # (N,) the true class's probability

    @property
    def predicted(self) -> np.ndarray:
        return self.top[:, 0]

    @property
    def confidence(self) -> np.ndarray:
        return self.top_probs[:, 0]

    @classmethod
    def from_probs(cls, probs: np.ndarray, labels: np.ndarray, k: int = TOP_K) -> Predictions:
        top = top_k(probs, k)
        return cls(
            labels=np.asarray(labels),
            top=top,
            top_probs=np.take_along_axis(probs, top, axis=1),
            true_prob=probs[np.arange(len(labels)), labels],
        )

    @classmethod
    def concat(cls, parts: Sequence[Predictions]) -> Predictions:
        return cls(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__dataclass_fields__)
        )


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))


def predict_probs(model: keras.Model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities for (N, H, W) uint8 images; the models output logits."""
    if len(images) == 0:
        return np.zeros((0, int(model.output_shape[-1])), dtype=np.float32)
    logits = np.asarray(model.predict(images[..., None], batch_size=batch_size, verbose=0))
    return softmax(logits.astype(np.float64)).astype(np.float32)


def predict_split(model: keras.Model, split: Split, chunk: int = CHUNK) -> Predictions:
    """The model's predictions for every image of ``split``, ``chunk`` images at a time."""
    n_classes = int(model.output_shape[-1])
    if len(split) == 0:
        return Predictions.from_probs(np.zeros((0, n_classes), np.float32), split.labels)
    parts = [
        Predictions.from_probs(
            predict_probs(model, split.images[start : start + chunk]),
            split.labels[start : start + chunk],
        )
        for start in range(0, len(split), chunk)
    ]
    return Predictions.concat(parts)


def top_k(probs: np.ndarray, k: int = TOP_K) -> np.ndarray:
    """(N, k) class indices, most probable first."""
    k = min(k, probs.shape[1])
    part = np.argpartition(-probs, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(probs, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def score(pred: Predictions) -> Scores:
    n = len(pred.labels)
    if n == 0:
        return Scores(math.nan, math.nan, math.nan, 0)
    loss = float(-np.mean(np.log(np.clip(pred.true_prob.astype(np.float64), 1e-12, 1.0))))
    accuracy = float(np.mean(pred.predicted == pred.labels))
    top5 = float(np.mean((pred.top[:, :TOP_K] == pred.labels[:, None]).any(axis=1)))
    return Scores(loss, accuracy, top5, n)


def confused_pairs(pred: Predictions, classes: Sequence[str]) -> list[Confusion]:
    """(true, predicted) pairs of mistakes, most frequent first."""
    labels, predicted = pred.labels, pred.predicted
    wrong = predicted != labels
    totals = np.bincount(labels, minlength=len(classes))
    pairs, counts = np.unique(
        np.stack([labels[wrong], predicted[wrong]], axis=1).reshape(-1, 2),
        axis=0,
        return_counts=True,
    )
    out = [
        Confusion(classes[t], classes[p], int(c), float(c / totals[t]))
        for (t, p), c in zip(pairs.tolist(), counts.tolist(), strict=True)
    ]
    out.sort(key=lambda c: (-c.count, -c.rate))
    return out


def per_class_accuracy(pred: Predictions, classes: Sequence[str]) -> list[ClassRow]:
    """One row per class with test images, worst accuracy first (ties: class order)."""
    n_classes = len(classes)
    totals = np.bincount(pred.labels, minlength=n_classes)
    correct = np.bincount(pred.labels[pred.predicted == pred.labels], minlength=n_classes)
    usual: dict[str, Confusion] = {}
    for c in confused_pairs(pred, classes):  # most frequent first: keep each class's first
        usual.setdefault(c.true, c)
    rows = []
    for k in np.flatnonzero(totals).tolist():
        top = usual.get(classes[k])
        rows.append(
            ClassRow(
                cls=classes[k],
                n=int(totals[k]),
                correct=int(correct[k]),
                accuracy=float(correct[k] / totals[k]),
                confused_with=top.predicted if top else "",
                confused_count=top.count if top else 0,
            )
        )
    rows.sort(key=lambda r: r.accuracy)
    return rows


# --- files ----------------------------------------------------------------------------------


def per_writer_accuracy(pred: Predictions, writers: np.ndarray | None) -> list[WriterRow]:
    """Accuracy on each writer's images, worst first; [] when no writer is known."""
    if writers is None:
        return []
    right = pred.predicted == pred.labels
    rows = []
    for writer in sorted(set(writers.tolist()) - {""}):
        mine = writers == writer
        n, correct = int(mine.sum()), int(right[mine].sum())
        rows.append(WriterRow(str(writer), n, correct, correct / n))
    return sorted(rows, key=lambda r: (r.accuracy, r.writer))


def write_writer_analysis(
    out: Path, split: Split, pred: Predictions
) -> tuple[dict[str, Path], list[WriterRow]]:
    """per_writer.csv and accuracy_by_writer.png when the split's writers are known."""
    rows = per_writer_accuracy(pred, split.writers)
    if not rows:
        return {}, rows
    files = {
        "per_writer": _write_csv(
            out / "per_writer.csv",
            ("writer", "n", "correct", "accuracy"),
            [(r.writer, r.n, r.correct, f"{r.accuracy:.4f}") for r in rows],
        ),
        "accuracy_by_writer": plots.plot_accuracy_by_writer(
            [r.writer for r in rows], [r.accuracy for r in rows], [r.n for r in rows],
            out / "accuracy_by_writer.png",
        ),
    }  # fmt: skip
    return files, rows


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_error_analysis(
    out: Path,
    split: Split,
    pred: Predictions,
    classes: Sequence[str],
) -> tuple[dict[str, Path], list[ClassRow], list[Confusion]]:
    """The per-class table, confusions, failures and plots for one set of predictions."""
    labels, predicted, confidence = pred.labels, pred.predicted, pred.confidence
    files: dict[str, Path] = {}
    rows = per_class_accuracy(pred, classes)
    files["per_class"] = _write_csv(
        out / "per_class.csv",
        ("class", "n", "correct", "accuracy", "most_confused_with", "confused_count"),
        [
            (r.cls, r.n, r.correct, f"{r.accuracy:.4f}", r.confused_with, r.confused_count)
            for r in rows
        ],
    )
    files["least_legible"] = plots.plot_least_legible(
        [r.cls for r in rows], [r.accuracy for r in rows], [r.n for r in rows],
        out / "least_legible.png",
    )  # fmt: skip
    confusions = confused_pairs(pred, classes)
    files["confusions"] = _write_csv(
        out / "confusions.csv",
        ("true", "predicted", "count", "rate"),
        [(c.true, c.predicted, c.count, f"{c.rate:.4f}") for c in confusions],
    )
    wrong = np.flatnonzero(predicted != labels)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")]  # surest mistakes first
    files["failures"] = _write_csv(
        out / "failures.csv",
        ("file", "true", "predicted", "confidence", "true_probability"),
        [
            (
                split.files[i],
                classes[labels[i]],
                classes[predicted[i]],
                f"{confidence[i]:.4f}",
                f"{pred.true_prob[i]:.4f}",
            )
            for i in wrong.tolist()
        ],
    )
    shown = wrong[: plots.GRID_MAX]
    titles = [
        plots.failure_title(classes[labels[i]], classes[predicted[i]], float(confidence[i]))
        for i in shown.tolist()
    ]
    files["failures_grid"] = plots.plot_failures(
        split.images[shown],
        titles,
        out / "failures.png",
        heading=f"{len(wrong)} mistakes in {len(labels)} test images (surest first)",
    )
    right = predicted == labels
    files["confidence"] = plots.plot_confidence(
        confidence[right], confidence[~right], out / "confidence.png"
    )
    return files, rows, confusions


# --- data -----------------------------------------------------------------------------------


def load_test_split(root: Path, classes: list[str], preprocessing: Preprocessing) -> Split:
    """``root/Test`` in the model's class order; a DataError when its classes differ."""
    from tuner.data.layout import TEST, list_class_folders, load_split

    if root.name == TEST and not (root / TEST).is_dir() and root.is_dir():
        test_dir = root  # the Test folder itself
    else:
        test_dir = root / TEST
    if not root.is_dir():
        raise DataError(
            f"dataset folder {root} does not exist: pass --data DIR with a Test/ folder"
        )
    if not test_dir.is_dir():
        raise DataError(
            f"{root} has no {TEST}/ folder to evaluate on: add {TEST}/<class>/<n>.png, or pass "
            "--data DIR of a dataset that has one"
        )
    check_same_classes(classes, list_class_folders(test_dir), test_dir)
    return load_split(test_dir, classes, preprocessing)


def recorded_val_accuracy(ctx: StudyContext) -> float | None:
    """The best trial's validation accuracy at the epoch its weights come from."""
    value = primary_value(ctx.best)
    if ctx.metric == "val_accuracy" and value is not None:
        return float(value)
    try:
        from mlflow.tracking import MlflowClient

        history = MlflowClient(ctx.tracking_uri).get_metric_history(ctx.run_id, "val_accuracy")
    except Exception:
        return None
    if not history:
        return None
    by_step = {m.step: m.value for m in history}
    step = best_epoch(ctx)
    return float(by_step.get(step, max(by_step.values())) if step else max(by_step.values()))


def best_epoch(ctx: StudyContext) -> int | None:
    """The epoch whose weights the trial kept (its best objective value)."""
    values = {k: v for k, v in ctx.best.intermediate_values.items() if math.isfinite(v)}
    if not values:
        return None
    maximize = ctx.study.directions[0].name == "MAXIMIZE"
    pick = max if maximize else min
    return int(pick(values, key=lambda step: values[step]))


# --- retraining -----------------------------------------------------------------------------


def retrain_best(
    ctx: StudyContext,
    root: Path,
    preprocessing: Preprocessing,
    *,
    seed: int = 0,
    notify: Callable[[str], None] | None = None,
) -> tuple[keras.Model, ModelMeta, Split]:
    """The best configuration trained on train+validation, for as many epochs as its best
    epoch; with the test split."""
    import keras

    from tuner.data.layout import load_dataset
    from tuner.models.artifacts import ModelMeta
    from tuner.models.builder import build_model

    space = ctx.space
    if space is None:
        raise StudyError(
            f"study {ctx.name!r} does not record its search space, so its best trial cannot be "
            "retrained: evaluate its logged model without --retrain"
        )
    data = load_dataset(root, preprocessing=preprocessing, val_fraction=0.0, seed=seed)
    if data.test is None:
        raise DataError(
            f"{root} has no Test/ folder to evaluate on: add Test/<class>/<n>.png, or pass "
            "--data DIR of a dataset that has one"
        )
    params = {**space.fixed, **ctx.best.params}
    epochs = best_epoch(ctx) or int(ctx.best.user_attrs.get("epochs") or space.training.max_epochs)
    keras.backend.clear_session(free_memory=True)
    keras.utils.set_random_seed(seed)
    model = build_model(
        space.model, params, (preprocessing.height, preprocessing.width, 1), len(data.classes)
    )
    x = np.concatenate([data.train.images, data.val.images])
    y = np.concatenate([data.train.labels, data.val.labels])
    if notify:
        notify(
            f"retraining trial {ctx.best.number}'s configuration on {len(y)} images, "
            f"{epochs} epochs"
        )
    model.fit(
        x[..., None],
        y,
        batch_size=int(params.get("batch_size", space.training.batch_size)),
        epochs=epochs,
        shuffle=True,
        verbose=0,
    )
    meta = ModelMeta(
        classes=list(data.classes),
        preprocessing=preprocessing.key(),
        family=space.model,
        params=params,
        space=space.name,
        study=ctx.name,
        trial_number=ctx.best.number,
    )
    return model, meta, data.test


# --- the command ----------------------------------------------------------------------------


def evaluate_study(
    storage_url: str,
    study_name: str,
    tracking_uri: str | None = None,
    *,
    data: str | Path | None = None,
    out: Path | None = None,
    retrain: bool = False,
    seed: int = 0,
    log: bool = True,
    writers_by_number: bool = False,
    notify: Callable[[str], None] | None = None,
) -> Evaluation:
    """Evaluate the study's best model on a test split, write the error analysis to ``out``
    and log it to the study's MLflow parent run. Accuracy by writer where writers are known
    (writers.csv, or file numbers with ``writers_by_number``)."""
    from tuner.data.layout import DEFAULT_PREPROCESSING, writers_from_numbers
    from tuner.models.artifacts import load_meta, preprocessing_of, save_bundle

    ctx = load_context(storage_url, study_name, tracking_uri)
    root = resolve_data_root(ctx, data)
    out = out or ctx.default_out("evaluate-retrain" if retrain else "evaluate")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tuner-eval-") as tmp:
        if retrain:
            try:  # train at the logged model's input size; older trials: the default
                folder = download_bundle(ctx.tracking_uri, ctx.run_id, Path(tmp))
                pp = preprocessing_of(load_meta(folder))
            except StudyError:
                pp = DEFAULT_PREPROCESSING
            model, meta, split = retrain_best(ctx, root, pp, seed=seed, notify=notify)
            save_bundle(model, out / "model", meta)
        else:
            model, meta, _ = load_best_model(ctx, Path(tmp))
            split = load_test_split(root, meta.classes, preprocessing_of(meta))
        pred = predict_split(model, split)
    if writers_by_number:
        split = writers_from_numbers(split)
    test = score(pred)
    val = recorded_val_accuracy(ctx)
    gap = val - test.accuracy if val is not None and test.n else None
    files, rows, confusions = write_error_analysis(out, split, pred, meta.classes)
    writer_files, writer_rows = write_writer_analysis(out, split, pred)
    files.update(writer_files)
    result = Evaluation(
        study=study_name,
        trial=ctx.best.number,
        data_root=root,
        n_classes=len(meta.classes),
        test=test,
        val_accuracy=val,
        writer_gap=gap,
        retrained=retrain,
        out=out,
        files=files,
        per_class=rows,
        confusions=confusions,
        per_writer=writer_rows,
    )
    summary = {
        "study": study_name,
        "trial": ctx.best.number,
        "mlflow_run_id": ctx.run_id,
        "data": str(root),
        "retrained": retrain,
        "n_classes": len(meta.classes),
        "test": asdict(test),
        "val_accuracy": val,
        "writer_gap": gap,
        "writers": len(writer_rows),
        "worst_writers": [asdict(r) for r in writer_rows[:10]],
    }
    files["metrics"] = out / "metrics.json"
    files["metrics"].write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    if log:
        prefix = "retrained_test" if retrain else "test"
        artifact_path = "evaluate-retrain" if retrain else "evaluate"
        result.log_problem = mlflow_log_folder(
            ctx.tracking_uri, ctx.parent_run_id, out, artifact_path
        )
        if result.log_problem is None:
            metrics = {
                f"{prefix}_loss": test.loss,
                f"{prefix}_accuracy": test.accuracy,
                f"{prefix}_top5_accuracy": test.top5_accuracy,
            }
            if gap is not None:
                metrics[f"{prefix}_writer_gap"] = gap
            mlflow_log_metrics(
                ctx.tracking_uri,
                ctx.parent_run_id,
                {k: v for k, v in metrics.items() if math.isfinite(v)},
            )
            result.logged_run_id = ctx.parent_run_id
    return result
