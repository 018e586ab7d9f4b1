"""Search spaces: the shipped YAML files, sampling with Optuna, fingerprints, lookup by name."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from tuner.space import (
    CategoricalParam,
    Condition,
    FloatParam,
    IntParam,
    SearchSpace,
    default_search_dirs,
    find_space_files,
    list_spaces,
    load_space,
    parse_condition,
    parse_space,
)

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "search_spaces"

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _sample(space: SearchSpace, n: int, seed: int = 0, enqueue: bool = False) -> list[dict]:
    study = optuna.create_study(
        direction=space.objective.direction, sampler=optuna.samplers.RandomSampler(seed=seed)
    )
    if enqueue:
        for values in space.enqueue:
            study.enqueue_trial(dict(values))
    seen: list[dict[str, Any]] = []

    def objective(trial: optuna.Trial) -> float:
        values = space.suggest(trial)
        assert trial.params == {k: v for k, v in values.items() if k not in space.fixed}
        seen.append(values)
        return 0.0

    study.optimize(objective, n_trials=n)
    return seen


# ---------------------------------------------------------------- the shipped spaces


def test_shipped_spaces_load_by_name() -> None:
    names = [s.name for s in list_spaces([SHIPPED])]
    assert names == ["casia_cnn", "casia_logistic"]
    cnn = load_space("casia_cnn", search_dirs=[SHIPPED])
    assert cnn.source == SHIPPED / "casia_cnn.yaml"
    assert cnn.model == "cnn"
    assert cnn.dataset == "default"
    assert cnn.training.max_epochs == 12
    assert cnn.training.patience == 3
    assert cnn.training.batch_size == 64
    assert cnn.budget.n_trials == 20
    assert cnn.budget.timeout == 900.0  # 15m: the default study fits a sitting
    assert cnn.objective.metric == "val_accuracy"
    assert cnn.objective.direction == "maximize"


def test_cnn_space_has_the_builders_param_names() -> None:
    cnn = load_space(SHIPPED / "casia_cnn.yaml")
    expected = {
        "n_blocks",
        *(f"filters_{i}" for i in range(1, 6)),
        "kernel_size",
        "pooling",
        *(f"pool_size_{i}" for i in range(1, 6)),
        "batch_norm",
        "dense_units",
        "dropout",
        "learning_rate",
        "batch_size",
        "optimizer",
        "aug_shift",
        "aug_rotate",
        "aug_zoom",
        "aug_ink",
        "aug_elastic",
        "aug_contrast",
        "aug_darkness",
        "preprocess_keep_aspect",
        "preprocess_normalize_ink",
        "preprocess_crop_ink",
        "synth_ratio",
        "synth_variety",
    }
    assert set(cnn.param_names) == expected
    assert cnn.param("n_blocks") == IntParam("n_blocks", 1, 5)
    assert cnn.param("filters_1") == CategoricalParam("filters_1", (8, 16, 32, 64, 128))
    assert cnn.param("filters_3").when == (Condition("n_blocks", ">=", 3),)
    assert cnn.param("pool_size_4").when == (
        Condition("n_blocks", ">=", 4),
        Condition("pooling", "!=", "none"),
    )
    assert cnn.param("pooling").choices == ("max", "average", "none")  # type: ignore[union-attr]
    assert cnn.param("batch_norm").choices == (False, True)  # type: ignore[union-attr]
    assert cnn.param("dense_units").choices == (0, 32, 64, 128, 256)  # type: ignore[union-attr]
    assert cnn.param("learning_rate") == FloatParam("learning_rate", 1e-4, 1e-2, log=True)
    assert cnn.param("dropout") == FloatParam("dropout", 0.0, 0.5)
    assert cnn.param("aug_shift") == FloatParam("aug_shift", 0.0, 0.15)
    assert cnn.param("aug_rotate") == FloatParam("aug_rotate", 0.0, 0.08)
    assert cnn.param("aug_zoom") == FloatParam("aug_zoom", 0.0, 0.2)
    assert cnn.param("aug_ink") == FloatParam("aug_ink", 0.0, 1.0)
    # Dependency order: every parameter comes after the ones its conditions use.
    position = {name: i for i, name in enumerate(cnn.param_names)}
    for p in cnn.params:
        assert all(position[c.param] < position[p.name] for c in p.when)


def test_cnn_space_enqueues_the_course_cnn() -> None:
    cnn = load_space("casia_cnn", search_dirs=[SHIPPED])
    assert len(cnn.enqueue) == 1
    assert dict(cnn.enqueue[0]) == {
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
        "aug_shift": 0.0,
        "aug_rotate": 0.0,
        "aug_zoom": 0.0,
        "aug_ink": 0.0,
        "aug_elastic": 0.0,
        "aug_contrast": 0.0,
        "aug_darkness": 0.0,
        "preprocess_keep_aspect": False,
        "preprocess_normalize_ink": False,
        "preprocess_crop_ink": False,
        "synth_ratio": 0.0,
    }
    # It is a complete, valid point of the space: Optuna replays it as the first trial.
    (first,) = _sample(cnn, 1, enqueue=True)
    assert first == dict(cnn.enqueue[0])
    assert cnn.active_params(first) == first


def test_logistic_space() -> None:
    space = load_space("casia_logistic", search_dirs=[SHIPPED])
    assert space.model == "logistic"
    assert space.param_names == ("learning_rate", "l2")
    assert space.param("learning_rate") == FloatParam("learning_rate", 1e-4, 1e-1, log=True)
    assert space.param("l2") == FloatParam("l2", 1e-6, 1e-1, log=True)
    assert dict(space.fixed) == {"batch_size": 64}
    assert space.budget.n_trials == 10
    for values in _sample(space, 10):
        assert values["batch_size"] == 64
        assert 1e-4 <= values["learning_rate"] <= 1e-1
        assert 1e-6 <= values["l2"] <= 1e-1


# ---------------------------------------------------------------- sampling


def test_suggest_samples_only_active_params_in_range() -> None:
    cnn = load_space("casia_cnn", search_dirs=[SHIPPED])
    trials = _sample(cnn, 150, seed=1)
    blocks = {t["n_blocks"] for t in trials}
    assert blocks == {1, 2, 3, 4, 5}
    assert {t["pooling"] for t in trials} == {"max", "average", "none"}
    for t in trials:
        n = t["n_blocks"]
        for i in range(1, 6):
            assert (f"filters_{i}" in t) == (i <= n), t
            assert (f"pool_size_{i}" in t) == (i <= n and t["pooling"] != "none"), t
        for name, value in t.items():
            assert cnn.param(name).contains(value), (name, value)
        assert cnn.active_params(t) == t


def test_suggest_with_n_blocks_2_and_no_pooling() -> None:
    cnn = load_space("casia_cnn", search_dirs=[SHIPPED])
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"n_blocks": 2, "pooling": "none"})
    got: list[dict[str, Any]] = []

    def objective(trial: optuna.Trial) -> float:
        got.append(cnn.suggest(trial))
        return 0.0

    study.optimize(objective, n_trials=1)
    (values,) = got
    assert values["n_blocks"] == 2 and values["pooling"] == "none"
    assert "filters_1" in values and "filters_2" in values
    assert "filters_3" not in values
    assert not any(k.startswith("pool_size") for k in values)


def test_suggest_replays_a_frozen_trial() -> None:
    cnn = load_space("casia_cnn", search_dirs=[SHIPPED])
    study = optuna.create_study(direction="maximize")
    study.optimize(lambda t: float(len(cnn.suggest(t))), n_trials=3)
    assert cnn.suggest(study.best_trial) == study.best_trial.params


def test_conditions_on_inactive_and_fixed_values() -> None:
    space = parse_space(
        {
            "name": "chain",
            "model": "cnn",
            "fixed": {"mode": "deep"},
            "params": {
                "c": {"type": "int", "low": 0, "high": 9, "when": "b > 0"},  # before b in file
                "a": {"type": "categorical", "choices": [True, False]},
                "b": {"type": "int", "low": 0, "high": 3, "when": "a == true"},
                "d": {"type": "float", "low": 0.0, "high": 1.0, "when": "mode in [deep, wide]"},
                "e": {"type": "float", "low": 0.0, "high": 1.0, "when": "mode == shallow"},
            },
        }
    )
    assert space.param_names == ("a", "b", "c", "d", "e")  # c moved after b, b after a
    for t in _sample(space, 60, seed=3):
        assert t["mode"] == "deep"
        assert "d" in t and "e" not in t
        assert ("b" in t) == (t["a"] is True)
        assert ("c" in t) == (t.get("b", 0) > 0)
    # active_params: a chain of inactive parameters is dropped; other keys are kept.
    full = {"a": False, "b": 2, "c": 5, "d": 0.5, "e": 0.5, "extra": 1}
    assert space.active_params(full) == {"a": False, "d": 0.5, "extra": 1}
    assert space.active_params({"a": True, "b": 0, "c": 1}) == {"a": True, "b": 0}


def test_condition_holds() -> None:
    assert Condition("n", ">=", 2).holds({"n": 2})
    assert not Condition("n", ">=", 2).holds({"n": 1})
    assert not Condition("n", ">=", 2).holds({})
    assert not Condition("p", "!=", "none").holds({})  # absent means inactive, never true
    assert Condition("p", "!=", "none").holds({"p": "max"})
    assert Condition("p", "in", ("max", "average")).holds({"p": "average"})
    assert not Condition("b", "==", 1).holds({"b": True})  # booleans are not numbers
    assert not Condition("n", "<", 2).holds({"n": "x"})
    assert Condition("x", "==", 2).holds({"x": 2.0})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("n_blocks >= 2", Condition("n_blocks", ">=", 2)),
        ("n_blocks>=2", Condition("n_blocks", ">=", 2)),
        ("pooling != none", Condition("pooling", "!=", "none")),
        ("pooling in [max, average]", Condition("pooling", "in", ("max", "average"))),
        ("batch_norm == true", Condition("batch_norm", "==", True)),
        ("lr < 1e-3", Condition("lr", "<", 0.001)),
        ("opt == 'sgd'", Condition("opt", "==", "sgd")),
        ("x > -1", Condition("x", ">", -1)),
    ],
)
def test_parse_condition(text: str, expected: Condition) -> None:
    cond = parse_condition(text)
    assert cond == expected
    assert parse_condition(str(cond)) == cond  # str() round-trips


# ---------------------------------------------------------------- fingerprint and to_dict


def test_fingerprint_is_stable_across_loads() -> None:
    a = load_space("casia_cnn", search_dirs=[SHIPPED])
    b = load_space(SHIPPED / "casia_cnn.yaml")
    assert a.fingerprint() == b.fingerprint()
    assert len(a.fingerprint()) == 16
    assert int(a.fingerprint(), 16) >= 0
    assert a.fingerprint() != load_space("casia_logistic", search_dirs=[SHIPPED]).fingerprint()


def _cnn_data() -> dict[str, Any]:
    data = yaml.safe_load((SHIPPED / "casia_cnn.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _fingerprint(data: dict[str, Any]) -> str:
    return parse_space(data).fingerprint()


def test_fingerprint_tracks_what_the_study_depends_on() -> None:
    base = _fingerprint(_cnn_data())

    def changed(edit: Any) -> str:
        data = copy.deepcopy(_cnn_data())
        edit(data)
        return _fingerprint(data)

    # Changes that make old trials incomparable: a new fingerprint.
    assert changed(lambda d: d["params"]["n_blocks"].update(high=6)) != base
    assert changed(lambda d: d["params"]["dropout"].update(high=0.4)) != base
    assert changed(lambda d: d["params"]["learning_rate"].update(log=False)) != base
    assert changed(lambda d: d["params"]["filters_1"].update(choices=[8, 16])) != base
    assert changed(lambda d: d["params"]["filters_2"].update(when="n_blocks >= 3")) != base
    assert changed(lambda d: d["fixed"].update(seed=1)) != base
    assert changed(lambda d: d.update(model="logistic")) != base
    assert changed(lambda d: d["objective"].update(metric="val_top5")) != base
    # Changes that don't: the same fingerprint, so the study resumes.
    assert changed(lambda d: d["budget"].update(n_trials=200, timeout=3600)) == base
    assert changed(lambda d: d.update(description="other words")) == base
    assert changed(lambda d: d["training"].update(max_epochs=30, patience=5)) == base
    assert changed(lambda d: d.update(enqueue=[])) == base
    assert changed(lambda d: d["params"]["learning_rate"].update(low=0.0001)) == base
    assert changed(lambda d: d.update(params=dict(reversed(d["params"].items())))) == base


def test_to_dict_round_trips() -> None:
    for space in list_spaces([SHIPPED]):
        data = space.to_dict()
        yaml.safe_dump(data)  # plain data
        again = parse_space(yaml.safe_load(yaml.safe_dump(data, sort_keys=False)))
        assert again.fingerprint() == space.fingerprint()
        assert again.to_dict() == data
        assert again.params == space.params
        assert again.enqueue == space.enqueue


# ---------------------------------------------------------------- files and lookup


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


SMALL = (
    "model: logistic\nparams:\n  learning_rate: {type: float, low: 1e-4, high: 1e-1, log: true}\n"
)


def test_lookup_order_env_then_cwd_then_repo(tmp_path: Path, monkeypatch: Any) -> None:
    env_a, env_b = tmp_path / "a", tmp_path / "b"
    work = tmp_path / "work"
    _write(env_a, "mine.yml", SMALL + "description: from a\n")
    _write(env_b, "mine.yaml", SMALL + "description: from b\n")
    _write(work / "search_spaces", "casia_cnn.yaml", SMALL + "description: shadowing\n")
    monkeypatch.setenv("TUNER_SPACES_DIR", os.pathsep.join([str(env_a), str(env_b), str(env_a)]))
    monkeypatch.chdir(work)
    dirs = default_search_dirs()
    assert dirs == [env_a, env_b, work / "search_spaces", SHIPPED]
    assert load_space("mine").description == "from a"
    assert load_space("mine").name == "mine"
    assert load_space("casia_cnn").description == "shadowing"
    assert load_space("casia_logistic").source == SHIPPED / "casia_logistic.yaml"
    assert load_space("casia_logistic.yaml").source == SHIPPED / "casia_logistic.yaml"
    assert load_space("mine.yml").description == "from a"
    assert list(find_space_files()) == ["casia_cnn", "casia_logistic", "mine"]


def test_default_dirs_without_env(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("TUNER_SPACES_DIR", raising=False)
    monkeypatch.chdir(REPO)
    assert default_search_dirs() == [Path.cwd() / "search_spaces"]  # the same folder, once
    monkeypatch.chdir(tmp_path)
    assert default_search_dirs() == [tmp_path / "search_spaces", SHIPPED]
    assert load_space("casia_cnn").name == "casia_cnn"


def test_load_by_path_and_relative_dataset(tmp_path: Path, monkeypatch: Any) -> None:
    path = _write(tmp_path / "spaces", "local.yaml", SMALL + "dataset: ../data/casia\n")
    space = load_space(path)
    assert space.name == "local"
    assert space.dataset == str(tmp_path / "spaces" / ".." / "data" / "casia")
    monkeypatch.chdir(tmp_path)
    assert load_space("spaces/local.yaml").fingerprint() == space.fingerprint()
    assert load_space(str(path)).source == path


def test_timeout_durations(tmp_path: Path) -> None:
    for text, seconds in [("3600", 3600.0), ("90m", 5400.0), ("2h", 7200.0), ("null", None)]:
        path = _write(tmp_path, "t.yaml", SMALL + f"budget: {{n_trials: 3, timeout: {text}}}\n")
        assert load_space(path).budget.timeout == seconds


def test_space_package_imports_no_heavy_libraries() -> None:
    code = (
        "import sys, tuner.space, tuner.cli.space_cmds; "
        "tuner.space.load_space('casia_cnn').suggest; "
        "heavy = [m for m in ('optuna', 'tensorflow', 'keras', 'mlflow', 'torch') "
        "if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
