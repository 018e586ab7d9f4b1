"""The Keras Tuner benchmark's headline arithmetic (bench/vs_kt_report.py), on hand-made runs:
what counts as reaching the target, and what a run that never reaches it is charged."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))

import vs_kt_report  # a bench script, found through the line above
from vs_kt_report import Run, headline


def run(config: str, side: str, seed: int, trials: list[tuple[float, str, float | None]]) -> Run:
    meta: dict[str, Any] = {"config": config, "side": side, "seed": seed, "budget_s": 100.0}
    events = [{"t": t, "state": state, "value": value} for t, state, value in trials]
    return Run(Path("."), meta, events)


def test_only_completed_trials_within_the_budget_count() -> None:
    trials = [(10, "COMPLETE", 0.5), (20, "PRUNED", 0.99), (30, "COMPLETE", 0.8)]
    r = run("ours-tpe-median", "ours", 1, [*trials, (150, "COMPLETE", 1.0)])
    assert r.best_value() == 0.8, "a pruned trial's value and one after the budget do not count"
    assert r.time_to(0.8) == 30 and r.time_to(0.9) is None


def test_the_headline_charges_a_run_that_never_gets_there_its_whole_budget() -> None:
    groups = vs_kt_report.by_config(
        [
            run("ours-tpe-median", "ours", 1, [(20, "COMPLETE", 0.9)]),
            run("ours-tpe-median", "ours", 2, [(40, "COMPLETE", 0.92)]),
            run("ours-tpe-median", "ours", 3, [(90, "COMPLETE", 0.7)]),
            run("kt-hyperband", "kt", 1, [(50, "COMPLETE", 0.9)]),
            run("kt-hyperband", "kt", 2, [(60, "COMPLETE", 0.85)]),
            run("kt-hyperband", "kt", 3, [(70, "COMPLETE", 0.95)]),
            run("kt-random", "kt", 1, [(10, "COMPLETE", 0.5)]),
        ]
    )
    h = headline(groups, target=0.9, our_default="ours-tpe-median")
    assert h is not None
    # ours: 20, 40, 100 (never) -> median 40; Hyperband: 50, 100 (never), 70 -> median 70;
    # random never gets there (100), so Hyperband is the best Keras Tuner configuration.
    assert h["best_kt"] == "kt-hyperband" and h["kt_time"] == 70 and h["kt_reached"] == 2
    assert h["default_time"] == 40 and h["default_reached"] == 2
    assert h["default_ratio"] == 40 / 70
