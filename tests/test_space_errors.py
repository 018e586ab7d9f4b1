"""Every invalid search-space file fails with ONE line naming the file, the key and the fix."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tuner.errors import SpaceError
from tuner.space import load_space, parse_space

BASE: dict[str, Any] = {
    "name": "bad_space",
    "description": "a space for error tests",
    "dataset": "default",
    "model": "cnn",
    "objective": {"metric": "val_accuracy", "direction": "maximize"},
    "training": {"max_epochs": 3, "patience": 1, "batch_size": 32},
    "budget": {"n_trials": 5, "timeout": None},
    "fixed": {"seed": 1},
    "params": {
        "n_blocks": {"type": "int", "low": 1, "high": 3},
        "filters_2": {"type": "categorical", "choices": [8, 16], "when": "n_blocks >= 2"},
        "pooling": {"type": "categorical", "choices": ["max", "average", "none"]},
        "pool_size": {"type": "categorical", "choices": [2, 3], "when": ["pooling != none"]},
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    },
    "enqueue": [{"n_blocks": 2, "filters_2": 8, "pooling": "max", "learning_rate": 0.001}],
}


def _write(tmp_path: Path, data: Any, name: str = "bad_space.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _error(path: Path | str) -> str:
    with pytest.raises(SpaceError) as info:
        load_space(path)
    message = info.value.format_message()
    assert "\n" not in message, message
    assert "Traceback" not in message
    return message


def test_base_is_valid(tmp_path: Path) -> None:
    space = load_space(_write(tmp_path, BASE))
    assert space.name == "bad_space"
    assert space.param_names == ("n_blocks", "filters_2", "pooling", "pool_size", "learning_rate")


Edit = Callable[[dict[str, Any]], None]


def _set(*path_and_value: Any) -> Edit:
    *keys, value = path_and_value

    def edit(data: dict[str, Any]) -> None:
        target = data
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return edit


def _delete(*keys: Any) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        target = data
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return edit


def _rename(where: tuple[str, ...], old: str, new: str) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        target = data
        for key in where:
            target = target[key]
        items = list(target.items())
        target.clear()
        target.update((new if k == old else k, v) for k, v in items)

    return edit


P = ("params",)

# (id, edit, fragments the message must contain: the key and the fix)
CASES: list[tuple[str, Edit, list[str]]] = [
    # unknown parameter type: list the valid ones
    (
        "type-unknown",
        _set("params", "n_blocks", "type", "integer"),
        [
            "params.n_blocks",
            "'integer'",
            "did you mean 'int'",
            "valid types: int, float, categorical",
        ],
    ),
    (
        "type-missing",
        _delete("params", "n_blocks", "type"),
        ["params.n_blocks", "add type:", "int, float, categorical"],
    ),
    # low > high
    (
        "int-low-above-high",
        _set("params", "n_blocks", "low", 5),
        ["params.n_blocks", "low (5) is greater than high (3)", "swap them"],
    ),
    (
        "float-low-above-high",
        _set("params", "learning_rate", "low", 0.1),
        ["params.learning_rate", "greater than high", "swap them"],
    ),
    # log scale with low <= 0
    (
        "float-log-low-zero",
        _set("params", "learning_rate", "low", 0.0),
        ["params.learning_rate", "log: true needs low > 0", "set log: false"],
    ),
    (
        "int-log-low-zero",
        _set("params", "n_blocks", {"type": "int", "low": 0, "high": 4, "log": True}),
        ["params.n_blocks", "low > 0", "raise low"],
    ),
    # empty choices
    (
        "choices-empty",
        _set("params", "pooling", "choices", []),
        ["params.pooling.choices is empty", "list at least one value"],
    ),
    (
        "choices-missing",
        _delete("params", "pooling", "choices"),
        ["params.pooling has no choices", "add choices:"],
    ),
    (
        "choices-duplicate",
        _set("params", "pooling", "choices", ["max", "max"]),
        ["params.pooling.choices", "twice", "remove the duplicate"],
    ),
    (
        "choices-nested",
        _set("params", "pooling", "choices", [[1, 2], 3]),
        ["params.pooling.choices[0]", "a list", "numbers or text"],
    ),
    # int param with non-int bounds
    (
        "int-float-bound",
        _set("params", "n_blocks", "high", 3.5),
        ["params.n_blocks.high", "must be an integer", "write high: 4, or use type: float"],
    ),
    (
        "int-string-bound",
        _set("params", "n_blocks", "low", "one"),
        ["params.n_blocks.low", "must be an integer", "whole number"],
    ),
    (
        "int-missing-high",
        _delete("params", "n_blocks", "high"),
        ["params.n_blocks has no high", "add high:"],
    ),
    (
        "float-bound-not-number",
        _set("params", "learning_rate", "high", "big"),
        ["params.learning_rate.high", "must be a finite number"],
    ),
    (
        "log-not-bool",
        _set("params", "learning_rate", "log", "yes please"),
        ["params.learning_rate.log", "true or false", "log: true"],
    ),
    (
        "int-step-grid",
        _set("params", "n_blocks", {"type": "int", "low": 1, "high": 6, "step": 2}),
        ["params.n_blocks", "not a multiple of step (2)", "set high: 5"],
    ),
    (
        "log-and-step",
        _set("params", "learning_rate", "step", 0.001),
        ["params.learning_rate", "log: true cannot be combined with step", "drop one"],
    ),
    # misspelt keys, with the close match
    (
        "misspelt-top-level",
        _rename((), "params", "parmas"),
        ["unknown key 'parmas' in the top level", "did you mean 'params'?"],
    ),
    (
        "misspelt-param-key",
        _rename(("params", "pooling"), "choices", "chioces"),
        ["unknown key 'chioces' in params.pooling", "did you mean 'choices'?"],
    ),
    (
        "misspelt-param-key-float",
        _rename(("params", "learning_rate"), "log", "logg"),
        ["unknown key 'logg' in params.learning_rate", "did you mean 'log'?"],
    ),
    (
        "key-of-other-type",
        _set("params", "n_blocks", "choices", [1, 2]),
        [
            "'choices' in params.n_blocks",
            "categorical parameter, not an int one",
            "remove it or change the type",
        ],
    ),
    (
        "misspelt-objective",
        _rename(("objective",), "metric", "metrc"),
        ["unknown key 'metrc' in objective", "did you mean 'metric'?"],
    ),
    (
        "misspelt-training",
        _rename(("training",), "max_epochs", "max_epoch"),
        ["unknown key 'max_epoch' in training; did you mean 'max_epochs'?"],
    ),
    (
        "misspelt-budget",
        _rename(("budget",), "n_trials", "ntrials"),
        ["unknown key 'ntrials' in budget", "did you mean 'n_trials'?"],
    ),
    (
        "unknown-key-no-match",
        _set("training", "zzz", 1),
        ["unknown key 'zzz' in training", "valid keys: max_epochs, patience"],
    ),
    # `when` naming a parameter that does not exist
    (
        "when-unknown-param",
        _set("params", "pool_size", "when", "polling != none"),
        ["params.pool_size.when", "'polling'", "not a parameter", "did you mean 'pooling'?"],
    ),
    (
        "when-unknown-param-no-match",
        _set("params", "pool_size", "when", "zzz == 1"),
        ["params.pool_size.when", "'zzz'", "declare it in params or fixed"],
    ),
    # cyclic dependency
    (
        "when-cycle",
        _set("params", "n_blocks", "when", "filters_2 == 8"),
        ["params", "cycle (n_blocks -> filters_2 -> n_blocks)", "remove one"],
    ),
    (
        "when-self-cycle",
        _set("params", "pooling", "when", "pooling == max"),
        ["cycle (pooling -> pooling)", "remove one"],
    ),
    # bad `when` syntax
    (
        "when-arrow",
        _set("params", "filters_2", "when", "n_blocks => 2"),
        ["params.filters_2.when", "'n_blocks => 2'", "use '>=' instead of '=>'"],
    ),
    (
        "when-single-equals",
        _set("params", "pool_size", "when", "pooling = max"),
        ["params.pool_size.when", "use '==' instead of '='"],
    ),
    (
        "when-no-operator",
        _set("params", "filters_2", "when", "n_blocks"),
        ["params.filters_2.when", "'<param> <op> <value>'", "n_blocks >= 2"],
    ),
    (
        "when-no-value",
        _set("params", "filters_2", "when", "n_blocks >="),
        ["params.filters_2.when", "no value after '>='", "add one"],
    ),
    (
        "when-in-needs-list",
        _set("params", "pool_size", "when", "pooling in max"),
        ["params.pool_size.when", "'in' needs a list", "pooling in [a, b]"],
    ),
    (
        "when-bad-yaml-value",
        _set("params", "pool_size", "when", "pooling in [max, average"),
        ["params.pool_size.when", "not valid YAML", "[a, b]"],
    ),
    (
        "when-not-string",
        _set("params", "filters_2", "when", {"n_blocks": 2}),
        ["params.filters_2.when", "a mapping", "quote each condition"],
    ),
    (
        "when-value-not-a-choice",
        _set("params", "pool_size", "when", "pooling != nonee"),
        ["params.pool_size.when", "'nonee' is not one of pooling's choices", "max, average, none"],
    ),
    (
        "when-order-on-strings",
        _set("params", "pool_size", "when", "pooling > 2"),
        ["params.pool_size.when", "'>'", "use == or in"],
    ),
    (
        "when-number-vs-text",
        _set("params", "filters_2", "when", "n_blocks >= two"),
        ["params.filters_2.when", "n_blocks is a number", "compare it with a number"],
    ),
    # objective direction
    (
        "direction-invalid",
        _set("objective", "direction", "max"),
        ["objective.direction 'max'", "did you mean 'maximize'?"],
    ),
    (
        "direction-invalid-no-match",
        _set("objective", "direction", "up"),
        ["objective.direction 'up'", "use maximize or minimize"],
    ),
    (
        "direction-loss-maximized",
        _set("objective", {"metric": "val_loss", "direction": "maximize"}),
        ["objective.direction", "'val_loss' is a loss", "set direction: minimize"],
    ),
    # a fixed value also declared as a parameter
    (
        "fixed-and-param",
        _set("fixed", "pooling", "max"),
        ["'pooling' is both in fixed and in params", "remove it from one of them"],
    ),
    # enqueued trials outside the space
    (
        "enqueue-unknown-param",
        _set("enqueue", [{"n_block": 2}]),
        ["enqueue[0]", "unknown parameter 'n_block'", "did you mean 'n_blocks'?"],
    ),
    (
        "enqueue-out-of-range",
        _set("enqueue", [{"n_blocks": 7}]),
        ["enqueue[0]", "n_blocks = 7 is outside the space (int 1..3)", "use a value in it"],
    ),
    (
        "enqueue-float-out-of-range",
        _set("enqueue", [{}, {"learning_rate": 0.5}]),
        ["enqueue[1]", "learning_rate = 0.5", "0.0001..0.01", "use a value in it"],
    ),
    (
        "enqueue-not-a-choice",
        _set("enqueue", [{"pooling": "maximum"}]),
        ["enqueue[0]", "pooling = 'maximum'", "(categorical max, average, none)", "use a value"],
    ),
    (
        "enqueue-int-not-integer",
        _set("enqueue", [{"n_blocks": 2.5}]),
        ["enqueue[0]", "n_blocks = 2.5", "use a value in it"],
    ),
    (
        "enqueue-fixed-value",
        _set("enqueue", [{"seed": 2}]),
        ["enqueue[0]", "'seed' is fixed", "remove it from enqueue[0]"],
    ),
    (
        "enqueue-not-a-list",
        _set("enqueue", {"n_blocks": 2}),
        ["enqueue must be a list", "enqueue: [{name: value"],
    ),
    # other top-level values
    (
        "model-unknown",
        _set("model", "cnnn"),
        ["unknown model 'cnnn'", "did you mean 'cnn'?"],
    ),
    ("model-missing", _delete("model"), ["missing key 'model'", "cnn, logistic"]),
    (
        "name-mismatch",
        _set("name", "other"),
        ["name 'other' does not match the file name 'bad_space'", "set name: bad_space"],
    ),
    (
        "training-epochs-zero",
        _set("training", "max_epochs", 0),
        ["training.max_epochs must be at least 1", "raise it"],
    ),
    (
        "budget-trials-float",
        _set("budget", "n_trials", 2.5),
        ["budget.n_trials must be an integer", "write 2"],
    ),
    (
        "budget-timeout-bad",
        _set("budget", "timeout", "soon"),
        ["budget.timeout 'soon'", "write seconds (3600)", "2h"],
    ),
    (
        "params-not-mapping",
        _set("params", ["n_blocks"]),
        ["params must be a mapping", "params: {name: {type: ...}}"],
    ),
    (
        "param-entry-not-mapping",
        _set("params", "n_blocks", "int 1-5"),
        ["params.n_blocks must be a mapping", "{type: int, low: 1, high: 5}"],
    ),
    (
        "param-bad-name",
        _set("params", "bad name", {"type": "int", "low": 1, "high": 2}),
        ["parameter name 'bad name'", "like filters_1"],
    ),
]


@pytest.mark.parametrize(("edit", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_space(tmp_path: Path, monkeypatch: Any, edit: Edit, fragments: list[str]) -> None:
    data = copy.deepcopy(BASE)
    edit(data)
    monkeypatch.chdir(tmp_path)  # messages name the file relative to the working directory
    message = _error(_write(tmp_path, data))
    assert message.startswith("bad_space.yaml: "), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_messages_name_the_file_as_given(tmp_path: Path, monkeypatch: Any) -> None:
    data = copy.deepcopy(BASE)
    data["training"]["max_epoch"] = data["training"].pop("max_epochs")
    (tmp_path / "sub").mkdir()
    path = _write(tmp_path / "sub", data)
    monkeypatch.chdir(tmp_path)
    assert _error(path) == (
        "sub/bad_space.yaml: unknown key 'max_epoch' in training; did you mean 'max_epochs'?"
    )


def test_yaml_syntax_error_has_the_line_number(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(
        "model: cnn\nparams:\n  n_blocks: {type: int, low: 1, high: 5\n  pooling: x\n",
        encoding="utf-8",
    )
    message = _error(path)
    assert "broken.yaml:" in message
    assert "YAML syntax error" in message
    assert "(line 4)" in message
    assert "fix the YAML there" in message


def test_yaml_bad_indentation(tmp_path: Path) -> None:
    path = tmp_path / "indent.yaml"
    path.write_text("model: cnn\nparams:\n  a: {type: int, low: 1, high: 2}\n b: 1\n")
    message = _error(path)
    assert "indent.yaml:" in message and "line 4" in message and "fix the YAML" in message


def test_duplicate_key(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "dup.yaml"
    path.write_text(
        "model: cnn\nparams:\n"
        "  a: {type: int, low: 1, high: 2}\n"
        "  a: {type: int, low: 1, high: 3}\n"
    )
    assert _error(path) == "dup.yaml:4: duplicate key 'a'; keep only one of them"


def test_empty_and_non_mapping_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    message = _error(empty)
    assert "empty.yaml" in message and "empty" in message and "model:" in message
    listy = tmp_path / "listy.yaml"
    listy.write_text("- a\n- b\n")
    message = _error(listy)
    assert "listy.yaml" in message and "top level must be a mapping" in message


def test_file_not_found(tmp_path: Path) -> None:
    message = _error(tmp_path / "nope.yaml")
    assert "nope.yaml" in message
    assert "not found" in message and "check the path" in message
    message = _error(str(tmp_path))
    assert "is not a file" in message and ".yaml" in message


def test_unknown_name_suggests_a_close_match(tmp_path: Path) -> None:
    (tmp_path / "casia_cnn.yaml").write_text("model: cnn\n")
    (tmp_path / "casia_logistic.yaml").write_text("model: logistic\n")
    with pytest.raises(SpaceError) as info:
        load_space("casia_cn", search_dirs=[tmp_path])
    message = info.value.format_message()
    assert "\n" not in message
    assert "no search space named 'casia_cn'" in message
    assert "did you mean 'casia_cnn'?" in message
    assert "available: casia_cnn, casia_logistic" in message
    with pytest.raises(SpaceError, match=r"no \.yaml files in .*TUNER_SPACES_DIR"):
        load_space("casia_cnn", search_dirs=[tmp_path / "empty"])


def test_parse_space_without_a_file_names_the_space() -> None:
    data = copy.deepcopy(BASE)
    data["budget"]["n_trails"] = 3
    with pytest.raises(SpaceError) as info:
        parse_space(data)
    assert info.value.format_message() == (
        "search space 'bad_space': unknown key 'n_trails' in budget; did you mean 'n_trials'?"
    )
    with pytest.raises(SpaceError, match="missing key 'name'"):
        parse_space({"model": "cnn"})
