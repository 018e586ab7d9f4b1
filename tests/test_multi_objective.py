"""Spaces that maximise validation accuracy and minimise the parameter count: a Pareto front."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.tiny import fresh_tracking_uri, tiny_dataset, write_tiny_space
from tuner.errors import SpaceError
from tuner.space import load_space
from tuner.study.orchestrate import StudySettings, run_study
from tuner.study.results import best_trial_report, load_existing

TWO_OBJECTIVES = "objective:\n  - {metric: val_accuracy, direction: maximize}\n" \
                 "  - {metric: n_params, direction: minimize}\n"  # fmt: skip


def space_with_objectives(folder: Path, objectives: str) -> Path:
    path = write_tiny_space(folder, epochs=1)
    text = path.read_text().replace(
        "objective: {metric: val_accuracy, direction: maximize}\n", objectives
    )
    path.write_text(text)
    return path


def test_a_list_of_objectives_makes_a_multi_objective_space(tmp_path: Path) -> None:
    space = load_space(space_with_objectives(tmp_path, TWO_OBJECTIVES))
    assert space.multi_objective
    assert [o.metric for o in space.objectives] == ["val_accuracy", "n_params"]
    (tmp_path / "single").mkdir()
    single = load_space(write_tiny_space(tmp_path / "single"))
    assert not single.multi_objective
    assert space.fingerprint() != single.fingerprint()


@pytest.mark.parametrize(
    ("objectives", "expected"),
    [
        ("objective:\n  - {metric: val_accuracy, direction: maximize}\n"
         "  - {metric: n_param, direction: minimize}\n", "did you mean 'n_params'"),
        ("objective:\n  - {metric: n_params, direction: minimize}\n",
         "the first objective must be a training metric"),
        ("objective: []\n", "empty list"),
    ],
)  # fmt: skip
def test_bad_objective_lists_are_one_line_errors(
    tmp_path: Path, objectives: str, expected: str
) -> None:
    with pytest.raises(SpaceError, match=expected) as err:
        load_space(space_with_objectives(tmp_path, objectives))
    assert "tiny.yaml" in str(err.value) and "\n" not in str(err.value)


def test_a_multi_objective_study_keeps_the_pareto_front(tmp_path: Path) -> None:
    from tuner.analysis.report import write_report

    settings = StudySettings(
        space=load_space(space_with_objectives(tmp_path, TWO_OBJECTIVES)),
        storage_url=f"sqlite:///{tmp_path / 'study.db'}",
        tracking_uri=fresh_tracking_uri(tmp_path),
        n_trials=4,
        seed=0,
    )
    outcome = run_study(settings, tiny_dataset())
    assert outcome.counts.get("COMPLETE") == 4
    study = load_existing(settings.storage_url, "tiny")
    assert len(study.directions) == 2
    for t in study.trials:
        assert len(t.values) == 2 and t.values[1] == t.user_attrs["n_params"]
    report: dict[str, Any] = best_trial_report(settings.storage_url, "tiny")
    front = report["pareto_front"]
    assert front and report["directions"] == ["maximize", "minimize"]
    values = {t.number: t.values for t in study.trials}
    for member in front:  # nobody on the front is beaten on both objectives
        acc, size = member["values"]
        assert not any(a >= acc and s <= size and (a, s) != (acc, size) for a, s in values.values())

    result = write_report(settings.storage_url, "tiny", tmp_path / "report",
                          settings.tracking_uri, log=False)  # fmt: skip
    assert (tmp_path / "report" / "pareto_front.png").stat().st_size > 0
    assert "Pareto front" in (tmp_path / "report" / "summary.md").read_text()
    assert result is not None
