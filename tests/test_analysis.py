"""From a finished tiny study to answers: evaluate, export/predict, report, compare-samplers,
CJK fonts in plots, and the dashboard and MLflow UI servers."""

from __future__ import annotations

import csv
import json
import shutil
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient
from PIL import Image

from tests.tiny import (
    CLASSES,
    fresh_tracking_uri,
    tiny_dataset,
    write_tiny_layout,
    write_tiny_space,
)
from tuner.analysis import fonts, plots
from tuner.analysis.evaluate import (
    Predictions,
    confused_pairs,
    evaluate_study,
    per_class_accuracy,
    score,
)
from tuner.analysis.export import export_best, predict_files, read_exported_meta
from tuner.analysis.report import write_report
from tuner.analysis.source import ATTR_DATA_ROOT, download_bundle
from tuner.cli import main
from tuner.data.charsets import course55
from tuner.data.layout import load_dataset
from tuner.data.preprocess import Preprocessing
from tuner.errors import DataError, StudyError
from tuner.space import load_space
from tuner.study.orchestrate import StudySettings, run_study
from tuner.study.storage import open_storage

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ENQUEUE = "enqueue:\n" + "".join(
    f"  - {{n_blocks: 1, filters_1: 8, pool_size_1: 2, learning_rate: {lr}}}\n"
    for lr in (0.02, 0.01)
)


@dataclass
class TinyStudy:
    root: Path
    data: Path
    storage: str
    tracking: str
    name: str = "tiny"

    def study(self) -> optuna.Study:
        return optuna.load_study(
            study_name=self.name, storage=open_storage(self.storage, heartbeat=False)
        )


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyStudy]:
    """Two completed trials on a 4-class PNG dataset with a Test split (16x12 images)."""
    root = tmp_path_factory.mktemp("analysis")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUNER_CACHE_DIR", str(root / "cache"))
        data_root = write_tiny_layout(root / "data")
        data = load_dataset(data_root, preprocessing=Preprocessing(16, 12))
        settings = StudySettings(
            space=load_space(write_tiny_space(root, epochs=3, extra=ENQUEUE)),
            storage_url=f"sqlite:///{root / 'study.db'}",
            tracking_uri=fresh_tracking_uri(root),
            n_trials=2,
            seed=0,
            pruner="none",
        )
        outcome = run_study(settings, data)
        assert outcome.counts.get("COMPLETE") == 2
        yield TinyStudy(root, data_root, settings.storage_url, settings.tracking_uri)


def png_ok(path: Path) -> bool:
    if not path.is_file() or path.stat().st_size < 1000 or path.read_bytes()[:8] != PNG_MAGIC:
        return False
    with Image.open(path) as img:
        return img.size[0] > 100 and img.size[1] > 100


@pytest.fixture
def glyph_checked(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """Every plot saved while the test runs is checked: each text's font has all its glyphs,
    and matplotlib warns of no missing glyph. Yields the saved paths."""
    saved: list[Path] = []
    original: Callable[..., Path] = plots.save

    def checked(fig: Any, path: Path, **kw: Any) -> Path:
        problems = fonts.undrawable_text(fig)
        assert not problems, (
            f"{path.name}: text drawn with a font that lacks its glyphs: {problems}"
        )
        saved.append(path)
        return original(fig, path, **kw)

    monkeypatch.setattr(plots, "save", checked)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield saved
    missing = [str(w.message) for w in caught if "missing from" in str(w.message)]
    assert not missing, missing


# --- fonts ------------------------------------------------------------------------------------


def test_the_cjk_font_has_every_label_glyph() -> None:
    labels = course55() + CLASSES + list("东本")
    path = fonts.find_cjk_font(labels)
    assert fonts.missing_glyphs(path, "".join(labels) + "not (100%) accuracy") == []
    # The check is not vacuous: matplotlib's own font has no CJK glyphs.
    from matplotlib import font_manager

    dejavu = Path(font_manager.findfont("DejaVu Sans"))
    assert set(fonts.missing_glyphs(dejavu, "东本大")) == set("东本大")


def test_no_cjk_font_is_a_one_line_error_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib import font_manager

    dejavu = Path(font_manager.findfont("DejaVu Sans"))
    monkeypatch.setattr(fonts, "candidate_fonts", lambda: iter([dejavu]))
    with pytest.raises(fonts.FontError, match="pip install pylopdf-fonts-zh-cn"):
        fonts.find_cjk_font("东")


def test_plots_draw_characters_with_a_font_that_has_them(
    tmp_path: Path, glyph_checked: list[Path]
) -> None:
    labels = course55()
    rng = np.random.default_rng(0)
    plots.plot_least_legible(labels, rng.random(len(labels)).tolist(), [5] * len(labels),
                             tmp_path / "least.png")  # fmt: skip
    titles = [plots.failure_title("本", "东", 1.0), plots.failure_title("大", "夫", 0.42)]
    assert titles[0] == "东 not 本 (100%)"
    images = rng.integers(0, 255, size=(2, 16, 12)).astype(np.uint8)
    plots.plot_failures(images, titles, tmp_path / "fail.png", heading="2 mistakes")
    plots.plot_confidence(rng.random(30), rng.random(5), tmp_path / "conf.png")
    assert len(glyph_checked) == 3
    assert all(png_ok(p) for p in glyph_checked)


# --- error analysis on known predictions ----------------------------------------------------


def test_scores_per_class_and_confusions() -> None:
    classes = ["大", "天", "夫"]
    labels = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 2, 2, 1, 0, 2])
    probs = np.full((6, 3), 0.1)
    probs[np.arange(6), predicted] = 0.8
    pred = Predictions.from_probs(probs, labels)
    s = score(pred)
    assert s.accuracy == pytest.approx(3 / 6) and s.top5_accuracy == 1.0 and s.n == 6
    rows = per_class_accuracy(pred, classes)
    assert [r.cls for r in rows] == ["大", "天", "夫"]  # worst first: 1/3, 1/2, 1
    assert rows[0].confused_with == "夫" and rows[0].confused_count == 2
    pairs = confused_pairs(pred, classes)
    assert (pairs[0].true, pairs[0].predicted, pairs[0].count) == ("大", "夫", 2)
    assert pairs[0].rate == pytest.approx(2 / 3)


def test_accuracy_by_writer_worst_first() -> None:
    from tuner.analysis.evaluate import per_writer_accuracy

    labels = np.array([0, 1, 2, 0, 1, 2, 0])
    predicted = np.array([0, 1, 2, 1, 1, 0, 0])
    probs = np.full((7, 3), 0.1)
    probs[np.arange(7), predicted] = 0.8
    pred = Predictions.from_probs(probs, labels)
    writers = np.array(["w1", "w1", "w1", "w2", "w2", "w2", ""], dtype=object)
    rows = per_writer_accuracy(pred, writers)
    assert [(r.writer, r.n, r.correct) for r in rows] == [("w2", 3, 1), ("w1", 3, 3)]
    assert rows[0].accuracy == pytest.approx(1 / 3), "unknown writers ('') left out"
    assert per_writer_accuracy(pred, None) == []


class LogitsFromPixels:
    """Stands in for a Keras model: the first three pixels of an image are its logits."""

    output_shape = (None, 3)

    def predict(self, x: np.ndarray, batch_size: int, verbose: int) -> np.ndarray:
        return x.reshape(len(x), -1)[:, :3].astype(np.float32) / 10.0


def test_predictions_in_chunks_equal_predictions_at_once() -> None:
    from tuner.analysis.evaluate import predict_split
    from tuner.data.layout import Split

    rng = np.random.default_rng(1)
    images = rng.integers(0, 255, size=(7, 4, 3)).astype(np.uint8)
    split = Split(images, rng.integers(0, 3, size=7).astype(np.int32), None, ["f"] * 7)
    whole = predict_split(LogitsFromPixels(), split)  # type: ignore[arg-type]
    chunked = predict_split(LogitsFromPixels(), split, chunk=2)  # type: ignore[arg-type]
    for name in ("labels", "top", "top_probs", "true_prob"):
        np.testing.assert_allclose(getattr(whole, name), getattr(chunked, name), rtol=1e-6)
    assert whole.top.shape == (7, 3) and score(whole).n == 7


# --- evaluate ---------------------------------------------------------------------------------


def test_evaluate_the_logged_model_writes_the_error_analysis_and_logs_it(
    tiny_study: TinyStudy, tmp_path: Path, glyph_checked: list[Path]
) -> None:
    study = tiny_study.study()
    study.set_user_attr(ATTR_DATA_ROOT, str(tiny_study.data))  # as `tune run` records it
    out = tmp_path / "eval"
    result = evaluate_study(tiny_study.storage, "tiny", tiny_study.tracking, out=out)
    assert result.test.n == 6 * len(CLASSES) and result.data_root == tiny_study.data
    assert 0.0 <= result.test.accuracy <= result.test.top5_accuracy == 1.0  # 4 classes
    assert result.val_accuracy == pytest.approx(study.best_value)
    assert result.writer_gap == pytest.approx(result.val_accuracy - result.test.accuracy)
    for name in ("per_class.csv", "confusions.csv", "failures.csv", "metrics.json"):
        assert (out / name).is_file(), name
    for name in ("least_legible.png", "failures.png", "confidence.png"):
        assert png_ok(out / name), name
    assert len(glyph_checked) == 3
    with (out / "per_class.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["class"] for r in rows) == sorted(CLASSES)
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["test"]["accuracy"] == pytest.approx(result.test.accuracy)

    client = MlflowClient(tiny_study.tracking)
    parent = study.user_attrs["mlflow_parent_run_id"]
    assert result.logged_run_id == parent
    logged = {a.path for a in client.list_artifacts(parent, "evaluate")}
    assert {"evaluate/failures.png", "evaluate/per_class.csv"} <= logged
    assert client.get_run(parent).data.metrics["test_accuracy"] == pytest.approx(
        result.test.accuracy
    )


def test_evaluate_another_test_set_with_other_classes_names_the_differences(
    tiny_study: TinyStudy, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    shutil.copytree(tiny_study.data / "Test", other / "Test")
    (other / "Test" / "人").rename(other / "Test" / "入")
    with pytest.raises(DataError) as info:
        evaluate_study(tiny_study.storage, "tiny", tiny_study.tracking, data=other,
                       out=tmp_path / "o", log=False)  # fmt: skip
    message = str(info.value)
    assert "missing 1: 人" in message and "extra 1: 入" in message
    assert "\n" not in message

    shutil.rmtree(other / "Test")
    with pytest.raises(DataError, match="no Test/ folder"):
        evaluate_study(tiny_study.storage, "tiny", tiny_study.tracking, data=other, log=False)


def test_evaluate_retrain_trains_on_train_and_validation(
    tiny_study: TinyStudy, tmp_path: Path
) -> None:
    result = evaluate_study(
        tiny_study.storage,
        "tiny",
        tiny_study.tracking,
        data=tiny_study.data,
        out=tmp_path / "r",
        retrain=True,
        log=False,
    )
    assert result.retrained and result.test.n == 6 * len(CLASSES)
    assert (tmp_path / "r" / "model" / "model.keras").is_file()


def test_evaluate_a_study_without_trials_says_so(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    optuna.create_study(study_name="empty", storage=open_storage(storage, heartbeat=False))
    with pytest.raises(StudyError, match="no completed trial"):
        evaluate_study(storage, "empty", fresh_tracking_uri(tmp_path))


# --- export / predict -------------------------------------------------------------------------


def test_export_registers_and_predicts_like_the_logged_model(
    tiny_study: TinyStudy, tmp_path: Path
) -> None:
    from tuner.analysis.evaluate import predict_probs
    from tuner.models.artifacts import load_bundle

    target = tmp_path / "best.keras"
    result = export_best(tiny_study.storage, "tiny", target, tiny_study.tracking)
    assert target.is_file() and result.sidecar == tmp_path / "best.json"
    sidecar = json.loads(result.sidecar.read_text(encoding="utf-8"))
    assert sidecar["classes"] == sorted(CLASSES)  # the dataset's order: sorted folders
    assert sidecar["preprocessing"] == Preprocessing(16, 12).key()

    client = MlflowClient(tiny_study.tracking, registry_uri=tiny_study.tracking)
    version = client.get_model_version("tiny", result.registered_version or "")
    assert version.run_id == result.run_id and version.source == f"runs:/{result.run_id}/model"

    # Predictions of the exported file equal those of the trial's logged model.
    images = sorted((tiny_study.data / "Test").glob("*/*.png"))[:8]
    predicted = predict_files(target, images)
    model, meta = load_bundle(download_bundle(tiny_study.tracking, result.run_id, tmp_path / "dl"))
    arrays = np.stack([np.asarray(Image.open(p), dtype=np.uint8) for p in images])
    expected = predict_probs(model, arrays)
    for row, probs in zip(predicted, expected, strict=True):
        assert len(row.top) == len(CLASSES)  # top-5 of 4 classes
        assert row.top[0][0] == meta.classes[int(probs.argmax())]
        assert row.top[0][1] == pytest.approx(float(probs.max()), abs=1e-5)

    # The .keras file alone is enough: its metadata is embedded.
    result.sidecar.unlink()
    assert read_exported_meta(target).classes == sorted(CLASSES)


def test_predict_rejects_a_file_that_is_not_an_image(tiny_study: TinyStudy, tmp_path: Path) -> None:
    target = tmp_path / "m.keras"
    export_best(tiny_study.storage, "tiny", target, tiny_study.tracking, register=False)
    bad = tmp_path / "x.png"
    bad.write_text("not an image")
    with pytest.raises(DataError, match="cannot read image"):
        predict_files(target, [bad])


# --- report -----------------------------------------------------------------------------------


def test_report_writes_plots_csv_and_summary(
    tiny_study: TinyStudy, tmp_path: Path, glyph_checked: list[Path]
) -> None:
    out = tmp_path / "report"
    result = write_report(tiny_study.storage, "tiny", out, tiny_study.tracking)
    for name in ("optimization_history", "param_importances", "parallel_coordinate", "slice"):
        assert png_ok(out / f"{name}.png"), (name, result.skipped)
    assert glyph_checked, "the Optuna plots go through the checked save"
    with (out / "trials.csv").open(encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 2
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "best: trial" in summary and "2 complete" in summary and "## Top 2 trials" in summary
    parent = tiny_study.study().user_attrs["mlflow_parent_run_id"]
    assert result.logged_run_id == parent
    logged = {a.path for a in MlflowClient(tiny_study.tracking).list_artifacts(parent, "report")}
    assert "report/summary.md" in logged


def test_report_of_a_study_with_one_trial_skips_importances(tmp_path: Path) -> None:
    from optuna.distributions import FloatDistribution

    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(
        study_name="天一", storage=open_storage(storage, heartbeat=False), direction="maximize"
    )
    study.add_trial(
        optuna.trial.create_trial(
            params={"learning_rate": 0.01},
            distributions={"learning_rate": FloatDistribution(1e-4, 1e-1, log=True)},
            value=0.5,
        )
    )
    result = write_report(storage, "天一", tmp_path / "r", fresh_tracking_uri(tmp_path))
    assert "2 completed trials" in result.skipped["param_importances"]
    assert png_ok(result.files["optimization_history"])
    assert "not drawn" in (tmp_path / "r" / "summary.md").read_text(encoding="utf-8")
    assert result.log_problem == "the study has no MLflow parent run"


# --- compare-samplers -------------------------------------------------------------------------


def cheap_run_study(settings: StudySettings, data: Any, **kw: Any) -> Any:
    """run_study with the real sampler and study, but a made-up objective instead of training."""
    from tuner.study.orchestrate import open_study

    study = open_study(settings)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    todo = settings.total_trials - len(study.trials)
    study.optimize(lambda t: -abs(np.log10(settings.space.suggest(t)["learning_rate"]) + 2),
                   n_trials=max(todo, 0))  # fmt: skip
    return type("Outcome", (), {"interrupted": False})()


def test_compare_samplers_runs_each_sampler_and_repeat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, glyph_checked: list[Path]
) -> None:
    from tuner.analysis.compare import compare_samplers

    monkeypatch.setattr("tuner.study.orchestrate.run_study", cheap_run_study)
    space = load_space(write_tiny_space(tmp_path, epochs=1))
    result = compare_samplers(space, ["random", "tpe"], 4, 3, tiny_dataset(n_per_class=4),
                              tmp_path / "cmp", tracking_uri="unused")  # fmt: skip
    names = {c.study for c in result.curves}
    assert names == {f"tiny-cmp-{s}-r{k}" for s in ("random", "tpe") for k in (1, 2, 3)}
    assert {c.seed for c in result.curves} == {0, 1, 2}
    assert len(optuna.get_all_study_names(result.storage_url)) == 6
    with result.files["trials"].open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 3 * 4 and {r["sampler"] for r in rows} == {"random", "tpe"}
    with result.files["summary"].open(encoding="utf-8") as handle:
        assert [r["sampler"] for r in csv.DictReader(handle)] == ["random", "tpe"]
    assert png_ok(result.files["plot"]) and glyph_checked == [result.files["plot"]]
    for c in result.curves:
        assert c.best_so_far == sorted(c.best_so_far)  # best so far never gets worse
        assert c.elapsed_s == sorted(c.elapsed_s)
    # Running it again resumes: no new trials.
    again = compare_samplers(space, ["random", "tpe"], 4, 3, tiny_dataset(n_per_class=4),
                             tmp_path / "cmp", tracking_uri="unused")  # fmt: skip
    assert [len(c.numbers) for c in again.curves] == [4] * 6


@pytest.mark.slow
def test_cli_compare_samplers_trains_for_real(tmp_path: Path) -> None:
    write_tiny_layout(tmp_path / "data", n_per_class=8, test_per_class=2)
    space = write_tiny_space(tmp_path, epochs=1)
    out = tmp_path / "cmp"
    result = CliRunner().invoke(main, [
        "compare-samplers", str(space), "--samplers", "random,tpe", "--n-trials", "1",
        "--repeats", "2", "--data", str(tmp_path / "data"), "--max-epochs", "1",
        "--out", str(out), "--tracking-uri", fresh_tracking_uri(tmp_path),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "random" in result.output and "tpe" in result.output
    assert png_ok(out / "compare.png") and (out / "compare.csv").is_file()


# --- command line -----------------------------------------------------------------------------


def test_cli_evaluate_export_predict_report(tiny_study: TinyStudy, tmp_path: Path) -> None:
    common = ["--storage", tiny_study.storage, "--tracking-uri", tiny_study.tracking]
    runner = CliRunner()

    result = runner.invoke(main, ["evaluate", "tiny", *common, "--data", str(tiny_study.data),
                                  "--out", str(tmp_path / "e"), "--no-log"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "writer gap" in result.output and "test" in result.output

    result = runner.invoke(main, ["evaluate", "tiny", *common, "--data", str(tiny_study.data),
                                  "--out", str(tmp_path / "w"), "--no-log",
                                  "--writers-by-number"])  # fmt: skip
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # rich wraps long lines
    assert "writers, accuracy from" in said and "read worst: n" in said
    assert png_ok(tmp_path / "w" / "accuracy_by_writer.png")
    with (tmp_path / "w" / "per_writer.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert sum(int(r["n"]) for r in rows) == 6 * len(CLASSES), "every test image counted once"
    assert all(r["writer"].startswith("n") for r in rows), "writers from the file numbers"

    model = tmp_path / "m.keras"
    result = runner.invoke(main, ["export", "tiny", *common, "--out", str(model)])
    assert result.exit_code == 0, result.output
    assert "registered in MLflow as 'tiny'" in result.output

    image = next((tiny_study.data / "Test" / "大").glob("*.png"))
    result = runner.invoke(main, ["predict", str(model), str(image)])
    assert result.exit_code == 0, result.output
    assert result.output.count("%") == len(CLASSES) and str(image) in result.output

    result = runner.invoke(main, ["report", "tiny", *common, "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "summary" in result.output

    result = runner.invoke(main, ["evaluate", "nothing", *common])
    assert result.exit_code == 2 and "no study 'nothing'" in result.output


# --- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(url: str, body: dict[str, Any] | None = None, timeout: float = 30.0) -> Any:
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def wait_for(url: str, proc: Any, seconds: float = 240.0) -> Any:
    import time
    import urllib.error

    deadline = time.monotonic() + seconds
    while True:
        try:
            return http(url, timeout=5)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read() if proc.poll() is not None else ""
                raise AssertionError(f"no answer from {url}; server output: {out}") from None
            time.sleep(0.3)


def start_tune(*args: str) -> Any:
    """``tune ARGS`` in its own process group (so a server it starts can be stopped too)."""
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-c", "from tuner.cli import main; main()", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def stop_group(proc: Any, sig: int) -> str:
    import os
    import subprocess

    try:
        os.killpg(proc.pid, sig)
        out, _ = proc.communicate(timeout=120)  # a loaded machine shuts servers down slowly
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        out, _ = proc.communicate(timeout=20)
    except ProcessLookupError:
        out, _ = proc.communicate(timeout=20)
    return str(out)


def test_dashboard_serves_the_study_and_stops_on_ctrl_c(tiny_study: TinyStudy) -> None:
    import signal

    port = free_port()
    proc = start_tune("dashboard", "--storage", tiny_study.storage, "--port", str(port))
    try:
        base = f"http://127.0.0.1:{port}"
        studies = wait_for(f"{base}/api/studies", proc)["study_summaries"]
        (tiny,) = [s for s in studies if s["study_name"] == "tiny"]
        detail = http(f"{base}/api/studies/{tiny['study_id']}")
        assert [t["state"] for t in detail["trials"]] == ["Complete", "Complete"]
    finally:
        out = stop_group(proc, signal.SIGINT)  # what Ctrl-C sends
    assert proc.returncode == 0, out
    assert f"Optuna dashboard on http://127.0.0.1:{port}/dashboard" in out
    assert "dashboard stopped" in out and "Traceback" not in out


def test_dashboard_refuses_a_port_in_use(tiny_study: TinyStudy) -> None:
    import socket

    from tuner.analysis.dashboard import make_server
    from tuner.errors import TunerError

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        with pytest.raises(TunerError, match="pick another --port"):
            make_server(tiny_study.storage, "127.0.0.1", sock.getsockname()[1])


@pytest.mark.slow
def test_mlflow_ui_serves_the_study_runs(tiny_study: TinyStudy) -> None:
    import signal

    port = free_port()
    proc = start_tune("ui", "--tracking-uri", tiny_study.tracking, "--port", str(port))
    try:
        base = f"http://127.0.0.1:{port}/api/2.0/mlflow"
        found = wait_for(f"{base}/experiments/search?max_results=100", proc)
        (experiment,) = [e for e in found["experiments"] if e["name"] == "tiny"]
        runs = http(f"{base}/runs/search", {"experiment_ids": [experiment["experiment_id"]]})
        names = {r["info"]["run_name"] for r in runs["runs"]}
        assert {"tiny", "trial-000", "trial-001"} <= names
    finally:
        stop_group(proc, signal.SIGTERM)
