"""``tune spaces list`` and ``tune spaces show``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tuner.cli.space_cmds import spaces

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: Any) -> None:
    monkeypatch.delenv("TUNER_SPACES_DIR", raising=False)
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("COLUMNS", "200")


def _run(*args: str) -> Any:
    return CliRunner().invoke(spaces, list(args), prog_name="tune spaces")


def test_list_shows_the_shipped_spaces() -> None:
    result = _run("list")
    assert result.exit_code == 0, result.output
    out = result.output
    for fragment in ("casia_cnn", "casia_logistic", "cnn", "logistic", "20 trials", "10 trials"):
        assert fragment in out
    assert "search_spaces/casia_cnn.yaml" in out
    assert "The course's baseline" in out
    lines = {line.split("│")[1].strip(): line for line in out.splitlines() if "│ casia" in line}
    assert "31" in lines["casia_cnn"] and "2" in lines["casia_logistic"]


def test_list_marks_a_broken_file_and_goes_on(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("model: cnn\nparams: {a: {type: integr}}\n")
    (tmp_path / "tiny.yaml").write_text(
        "model: logistic\nbudget: {n_trials: 3, timeout: 2h}\n"
        "params: {l2: {type: float, low: 1e-6, high: 1e-1, log: true}}\n"
    )
    result = _run("list", "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "casia_cnn" in result.output
    assert "tiny" in result.output and "3 trials, 2h timeout" in result.output
    assert "broken" in result.output and "invalid" in result.output
    assert "did you mean 'int'?" in result.output
    assert "1 invalid file(s)" in result.output


def test_show_cnn() -> None:
    result = _run("show", "casia_cnn")
    assert result.exit_code == 0, result.output
    out = result.output
    for fragment in (
        "casia_cnn",
        "search_spaces/casia_cnn.yaml",
        "maximize val_accuracy",
        "max_epochs 12, patience 3, batch_size 64",
        "20 trials, 15m timeout",
        "Parameters (31)",
        "n_blocks >= 3",
        "n_blocks >= 2 and pooling != none",
        "8, 16, 32, 64, 128",
        "0.0001..0.01",
        "log",
        "Enqueued trials",
        "adam",
    ):
        assert fragment in out, fragment
    from tuner.space import load_space

    assert load_space("casia_cnn").fingerprint() in out


def test_show_logistic_fixed_values() -> None:
    result = _run("show", "casia_logistic")
    assert result.exit_code == 0, result.output
    assert "Fixed values" in result.output and "batch_size" in result.output
    assert "No enqueued trials" in result.output


def test_show_json() -> None:
    result = _run("show", "casia_cnn", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["name"] == "casia_cnn"
    assert data["params"]["filters_2"]["when"] == ["n_blocks >= 2"]
    assert data["enqueue"][0]["n_blocks"] == 3
    assert data["fingerprint"]
    assert data["source"].endswith("casia_cnn.yaml")


def test_show_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("model: logistic\nparams: {l2: {type: float, low: 0.0, high: 1.0}}\n")
    result = _run("show", str(path))
    assert result.exit_code == 0, result.output
    assert "mine" in result.output and "0.0..1.0" in result.output


def test_show_unknown_name_is_one_line() -> None:
    result = _run("show", "casia_cn")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: no search space named 'casia_cn'")
    assert "did you mean 'casia_cnn'?" in lines[0]
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_show_invalid_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("model: cnn\ntraining: {max_epoch: 3}\n")
    result = _run("show", str(path))
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "bad.yaml" in lines[0]
    assert "unknown key 'max_epoch' in training; did you mean 'max_epochs'?" in lines[0]


def test_list_with_no_spaces(tmp_path: Path, monkeypatch: Any) -> None:
    from tuner.cli import space_cmds

    monkeypatch.setattr(space_cmds, "_search_dirs", lambda dirs: [tmp_path])
    result = _run("list")
    assert result.exit_code == 0
    assert "No search spaces" in result.output and "TUNER_SPACES_DIR" in result.output
