"""Reading and validating search-space YAML.

Every problem raises :class:`tuner.errors.SpaceError` with one line that names the file, the key
and the fix, e.g. ``casia_cnn.yaml: unknown key 'max_epoch' in training; did you mean
'max_epochs'?``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import yaml

from tuner.errors import SpaceError
from tuner.space.spec import (
    DIRECTIONS,
    MODELS,
    OPS,
    ORDER_OPS,
    SECONDARY_METRICS,
    Budget,
    CategoricalParam,
    Condition,
    FloatParam,
    IntParam,
    Objective,
    Param,
    SearchSpace,
    Training,
    format_value,
    is_number,
    same_value,
)

TOP_KEYS = (
    "name",
    "description",
    "dataset",
    "model",
    "objective",
    "training",
    "budget",
    "fixed",
    "params",
    "enqueue",
)
PARAM_TYPES = ("int", "float", "categorical")
PARAM_KEYS: dict[str, tuple[str, ...]] = {
    "int": ("type", "low", "high", "step", "log", "when"),
    "float": ("type", "low", "high", "step", "log", "when"),
    "categorical": ("type", "choices", "when"),
}
OBJECTIVE_KEYS = ("metric", "direction")
TRAINING_KEYS = ("max_epochs", "patience", "batch_size", "min_delta")
BUDGET_KEYS = ("n_trials", "timeout")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONDITION = re.compile(
    r"^\s*(?P<param>[A-Za-z_][A-Za-z0-9_]*)\s*"
    r"(?P<op>==|!=|>=|<=|=>|=<|=|>|<|in(?=[\s\[]))\s*(?P<value>.*?)\s*$"
)
_DURATION = re.compile(r"^\s*(?P<n>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>s|m|min|h|d)?\s*$")
_UNIT_SECONDS = {None: 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


# ---------------------------------------------------------------- YAML


class _DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key: object, line: int) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key
        self.line = line


class SpaceLoader(yaml.SafeLoader):
    """Safe YAML, plus YAML 1.2 floats (``1e-4`` is a float, not a string), no duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key; SafeLoader reports it
                continue
            if duplicate:
                raise _DuplicateKeyError(key, key_node.start_mark.line + 1)
        return super().construct_mapping(node, deep=deep)


SpaceLoader.yaml_implicit_resolvers = {
    k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
SpaceLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def load_yaml(text: str, label: str) -> Any:
    """Parse YAML text; a syntax error becomes one SpaceError line with the line number."""
    try:
        return yaml.load(text, Loader=SpaceLoader)  # a SafeLoader
    except _DuplicateKeyError as e:
        raise SpaceError(
            f"{label}:{e.line}: duplicate key {e.key!r}; keep only one of them"
        ) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{mark.line + 1}" if mark is not None else "?"
        problem = _one_line(e.problem or e.context or "invalid YAML")
        raise SpaceError(
            f"{label}:{where}: YAML syntax error: {problem} (line {where}); fix the YAML there"
        ) from None
    except yaml.YAMLError as e:
        raise SpaceError(f"{label}: YAML error: {_one_line(e)}; fix the YAML") from None


# ---------------------------------------------------------------- helpers


def close_match(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``word``, if any is close enough.

    A different case, or a prefix of exactly one candidate (``max`` for ``maximize``), counts.
    """
    options = [str(c) for c in candidates]
    lowered = word.lower()
    for option in options:
        if option.lower() == lowered:
            return option
    prefixed = [o for o in options if lowered and o.lower().startswith(lowered)]
    if len(prefixed) == 1:
        return prefixed[0]
    found = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return found[0] if found else None


def _quote(value: object) -> str:
    """A value the user wrote, for a message: text in quotes, anything else as YAML."""
    return repr(value) if isinstance(value, str) else format_value(value)


def _type_word(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class _Context:
    """Where the data came from, for messages: ``<label>: <problem> ...; <fix>``."""

    def __init__(self, label: str) -> None:
        self.label = label

    def fail(self, message: str) -> NoReturn:
        raise SpaceError(f"{self.label}: {_one_line(message)}")

    def mapping(self, value: Any, where: str, example: str) -> dict[Any, Any]:
        """``value`` as a dict; null counts as empty."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(f"{where} must be a mapping, got {_type_word(value)}; write it as {example}")
        return value

    def check_keys(self, data: Mapping[Any, Any], valid: Sequence[str], where: str) -> None:
        for key in data:
            if key in valid:
                continue
            guess = close_match(str(key), valid)
            fix = f"did you mean {guess!r}?" if guess else f"valid keys: {', '.join(valid)}"
            self.fail(f"unknown key {str(key)!r} in {where}; {fix}")

    def integer(self, value: Any, where: str, minimum: int | None = None) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            fix = f"write {round(value)}" if is_number(value) else "write a whole number"
            self.fail(f"{where} must be an integer, got {_quote(value)}; {fix}")
        if minimum is not None and value < minimum:
            self.fail(f"{where} must be at least {minimum}, got {value}; raise it")
        return value

    def number(self, value: Any, where: str) -> float:
        if not is_number(value) or not math.isfinite(value):
            self.fail(f"{where} must be a finite number, got {_quote(value)}; write one")
        return float(value)


# ---------------------------------------------------------------- parsing


def parse_space(data: Mapping[str, Any], *, source: Path | None = None) -> SearchSpace:
    """Validate a search space given as plain data (a parsed YAML file, or ``to_dict()``).

    ``source`` is the file it came from: it names the file in messages, gives the default
    ``name`` (the file's stem), and anchors a relative ``dataset`` path.
    """
    label = display_path(source) if source is not None else "search space"
    if source is None and isinstance(data, Mapping) and isinstance(data.get("name"), str):
        label = f"search space {data['name']!r}"
    ctx = _Context(label)
    if data is None:
        ctx.fail("the file is empty; write a mapping with at least model: and params:")
    if not isinstance(data, Mapping):
        ctx.fail(
            f"the top level must be a mapping (name:, model:, params:, ...), "
            f"got {_type_word(data)}; see search_spaces/casia_cnn.yaml for the format"
        )
    ctx.check_keys(data, TOP_KEYS, "the top level")

    name = _parse_name(ctx, data.get("name"), source)
    description = data.get("description")
    if description is None:
        description = ""
    if not isinstance(description, str):
        ctx.fail(f"description must be text, got {_type_word(description)}; quote it")
    dataset = _parse_dataset(ctx, data.get("dataset", "default"), source)
    model = data.get("model")
    if model is None:
        ctx.fail(f"missing key 'model'; add model: with one of {', '.join(MODELS)}")
    if model not in MODELS:
        guess = close_match(str(model), MODELS)
        fix = f"did you mean {guess!r}?" if guess else f"use one of {', '.join(MODELS)}"
        ctx.fail(f"unknown model {_quote(model)}; {fix}")

    objectives = _parse_objectives(ctx, data.get("objective"))
    objective = objectives[0]
    training = _parse_training(ctx, data.get("training"))
    budget = _parse_budget(ctx, data.get("budget"))

    raw_params = ctx.mapping(data.get("params"), "params", "params: {name: {type: ...}}")
    fixed = ctx.mapping(data.get("fixed"), "fixed", "fixed: {name: value}")
    for key in fixed:
        if not isinstance(key, str):
            ctx.fail(f"fixed key {_quote(key)} must be a name; write it as text")
        if key in raw_params:
            ctx.fail(
                f"'{key}' is both in fixed and in params; remove it from one of them "
                f"(fixed to hold it constant, params to search it)"
            )
    params = _parse_params(ctx, raw_params, fixed)
    space = SearchSpace(
        name=name,
        description=description,
        source=source,
        dataset=dataset,
        model=str(model),
        params=params,
        fixed=dict(fixed),
        training=training,
        objective=objective,
        extra_objectives=objectives[1:],
        budget=budget,
    )
    enqueue = _parse_enqueue(ctx, data.get("enqueue"), space)
    return dataclasses.replace(space, enqueue=enqueue)


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it, else as given."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def _parse_name(ctx: _Context, value: Any, source: Path | None) -> str:
    stem = source.stem if source is not None else None
    if value is None:
        if stem is None:
            ctx.fail("missing key 'name'; add name: with a short identifier like my_cnn")
        value = stem
    if not isinstance(value, str) or not _NAME.match(value):
        ctx.fail(
            f"name {_quote(value)} is not a valid name; use letters, digits, '_', '-' "
            f"or '.', like casia_cnn"
        )
    if stem is not None and value != stem:
        ctx.fail(
            f"name {value!r} does not match the file name {stem!r}; rename the file to "
            f"{value}.yaml or set name: {stem}"
        )
    return value


def _parse_dataset(ctx: _Context, value: Any, source: Path | None) -> str:
    if value is None:
        return "default"
    if not isinstance(value, str) or not value.strip():
        ctx.fail(
            f"dataset must be 'default' or a path, got {_quote(value)}; "
            f"write dataset: default or dataset: path/to/data"
        )
    if value == "default":
        return value
    path = Path(value).expanduser()
    if not path.is_absolute() and source is not None:
        path = source.parent / path
    return str(path)


def _parse_objectives(ctx: _Context, value: Any) -> tuple[Objective, ...]:
    """One objective (a mapping), or a list: the first is the validation metric trials are
    pruned and early-stopped on, the others are measured after training (SECONDARY_METRICS)."""
    if not isinstance(value, list):
        return (_parse_objective(ctx, value),)
    if not value:
        ctx.fail("objective is an empty list; give at least {metric: val_accuracy, ...}")
    objectives = tuple(_parse_objective(ctx, item) for item in value)
    if objectives[0].metric in SECONDARY_METRICS:
        ctx.fail(
            f"objective: the first objective must be a training metric such as val_accuracy, "
            f"not {objectives[0].metric!r}; list {objectives[0].metric} after it"
        )
    for extra in objectives[1:]:
        if extra.metric not in SECONDARY_METRICS:
            guess = close_match(extra.metric, SECONDARY_METRICS)
            fix = f"did you mean {guess!r}?" if guess else f"use {' or '.join(SECONDARY_METRICS)}"
            ctx.fail(f"objective: further objective {extra.metric!r} is not measured; {fix}")
    metrics = [o.metric for o in objectives]
    if len(set(metrics)) != len(metrics):
        ctx.fail(f"objective lists a metric twice ({', '.join(metrics)}); list each once")
    return objectives


def _parse_objective(ctx: _Context, value: Any) -> Objective:
    data = ctx.mapping(value, "objective", "objective: {metric: val_accuracy, direction: maximize}")
    ctx.check_keys(data, OBJECTIVE_KEYS, "objective")
    metric = data.get("metric", Objective.metric)
    if not isinstance(metric, str) or not metric.strip():
        ctx.fail(
            f"objective.metric must be a metric name, got {_quote(metric)}; "
            f"write metric: val_accuracy"
        )
    direction = data.get("direction", "maximize")
    if direction not in DIRECTIONS:
        guess = close_match(str(direction), DIRECTIONS)
        fix = f"did you mean {guess!r}?" if guess else "use maximize or minimize"
        ctx.fail(f"objective.direction {_quote(direction)} is not valid; {fix}")
    lowered = metric.lower()
    if "loss" in lowered and direction == "maximize":
        ctx.fail(
            f"objective.direction is maximize but metric {metric!r} is a loss; "
            f"set direction: minimize"
        )
    if ("acc" in lowered and "loss" not in lowered) and direction == "minimize":
        ctx.fail(
            f"objective.direction is minimize but metric {metric!r} is an accuracy; "
            f"set direction: maximize"
        )
    return Objective(metric=metric, direction="maximize" if direction == "maximize" else "minimize")


def _parse_training(ctx: _Context, value: Any) -> Training:
    data = ctx.mapping(value, "training", "training: {max_epochs: 12, patience: 3}")
    ctx.check_keys(data, TRAINING_KEYS, "training")
    default = Training()
    max_epochs = ctx.integer(
        data.get("max_epochs", default.max_epochs), "training.max_epochs", minimum=1
    )
    patience = ctx.integer(data.get("patience", default.patience), "training.patience", minimum=0)
    batch_size = ctx.integer(
        data.get("batch_size", default.batch_size), "training.batch_size", minimum=1
    )
    min_delta = ctx.number(data.get("min_delta", default.min_delta), "training.min_delta")
    if min_delta < 0:
        ctx.fail(f"training.min_delta must be >= 0, got {format_value(min_delta)}; use 0 or more")
    return Training(
        max_epochs=max_epochs, patience=patience, batch_size=batch_size, min_delta=min_delta
    )


def _parse_budget(ctx: _Context, value: Any) -> Budget:
    data = ctx.mapping(value, "budget", "budget: {n_trials: 20, timeout: null}")
    ctx.check_keys(data, BUDGET_KEYS, "budget")
    n_trials = ctx.integer(data.get("n_trials", Budget.n_trials), "budget.n_trials", minimum=1)
    raw = data.get("timeout")
    timeout: float | None
    if raw is None:
        timeout = None
    elif isinstance(raw, str):
        match = _DURATION.match(raw)
        if match is None:
            ctx.fail(
                f"budget.timeout {raw!r} is not a duration; write seconds (3600) or "
                f"a number with s, m, h or d (90m, 2h), or null for none"
            )
        timeout = float(match["n"]) * _UNIT_SECONDS[match["unit"]]
    else:
        timeout = ctx.number(raw, "budget.timeout")
    if timeout is not None and timeout <= 0:
        ctx.fail(f"budget.timeout must be positive, got {raw!r}; use null for no timeout")
    return Budget(n_trials=n_trials, timeout=timeout)


# ---------------------------------------------------------------- parameters


def _parse_params(
    ctx: _Context, raw: Mapping[Any, Any], fixed: Mapping[str, Any]
) -> tuple[Param, ...]:
    # First the definitions without conditions, so conditions can be checked against them.
    bare: dict[str, Param] = {}
    raw_when: dict[str, Any] = {}
    for name, entry in raw.items():
        if not isinstance(name, str) or not _PARAM_NAME.match(name):
            ctx.fail(
                f"parameter name {_quote(name)} in params is not valid; use letters, "
                f"digits and '_' and start with a letter, like filters_1"
            )
        bare[name] = _parse_param(ctx, name, entry)
        raw_when[name] = entry.get("when")

    conditions = {name: _parse_when(ctx, name, raw_when[name], bare, fixed) for name in bare}
    order = _dependency_order(ctx, list(bare), conditions)
    out: list[Param] = []
    for name in order:
        p = bare[name]
        if isinstance(p, IntParam):
            out.append(IntParam(p.name, p.low, p.high, p.step, p.log, conditions[name]))
        elif isinstance(p, FloatParam):
            out.append(FloatParam(p.name, p.low, p.high, p.log, p.step, conditions[name]))
        else:
            out.append(CategoricalParam(p.name, p.choices, conditions[name]))
    return tuple(out)


def _parse_param(ctx: _Context, name: str, entry: Any) -> Param:
    where = f"params.{name}"
    if not isinstance(entry, dict):
        ctx.fail(
            f"{where} must be a mapping like {{type: int, low: 1, high: 5}}, "
            f"got {_type_word(entry)}; write it that way"
        )
    kind = entry.get("type")
    if kind is None:
        ctx.fail(f"{where} has no type; add type: with one of {', '.join(PARAM_TYPES)}")
    if kind not in PARAM_TYPES:
        guess = close_match(str(kind), PARAM_TYPES)
        hint = f"did you mean {guess!r}? " if guess else ""
        ctx.fail(
            f"unknown parameter type {_quote(kind)} in {where}; "
            f"{hint}valid types: {', '.join(PARAM_TYPES)}"
        )
    valid = PARAM_KEYS[kind]
    for key in entry:
        if key in valid:
            continue
        other = [t for t in PARAM_TYPES if key in PARAM_KEYS[t]]
        if other:
            ctx.fail(
                f"key {key!r} in {where} belongs to a {' or '.join(other)} parameter, "
                f"not {'an' if kind == 'int' else 'a'} {kind} one; remove it or change the type"
            )
        guess = close_match(str(key), valid)
        fix = f"did you mean {guess!r}?" if guess else f"valid keys: {', '.join(valid)}"
        ctx.fail(f"unknown key {str(key)!r} in {where}; {fix}")

    if kind == "categorical":
        return _parse_categorical(ctx, name, entry)
    for key in ("low", "high"):
        if key not in entry:
            ctx.fail(f"{where} has no {key}; add {key}: to give the range")
    log = entry.get("log", False)
    if not isinstance(log, bool):
        ctx.fail(f"{where}.log must be true or false, got {_quote(log)}; write log: true")
    if kind == "int":
        return _parse_int(ctx, name, entry, log)
    return _parse_float(ctx, name, entry, log)


def _check_range(ctx: _Context, where: str, low: float, high: float, log: bool) -> None:
    if low > high:
        ctx.fail(
            f"{where}: low ({format_value(low)}) is greater than high ({format_value(high)}); "
            f"swap them"
        )
    if log and low <= 0:
        ctx.fail(
            f"{where}: log: true needs low > 0, got low: {format_value(low)}; "
            f"raise low above 0 or set log: false"
        )


def _parse_int(ctx: _Context, name: str, entry: Mapping[str, Any], log: bool) -> IntParam:
    where = f"params.{name}"
    bounds = []
    for key in ("low", "high"):
        value = entry[key]
        if not isinstance(value, int) or isinstance(value, bool):
            fix = (
                f"write {key}: {round(value)}, or use type: float"
                if is_number(value)
                else f"write {key}: with a whole number"
            )
            ctx.fail(
                f"{where}.{key} must be an integer for an int parameter, got {_quote(value)}; {fix}"
            )
        bounds.append(value)
    low, high = bounds
    _check_range(ctx, where, low, high, log)
    step = ctx.integer(entry.get("step", 1), f"{where}.step", minimum=1)
    if log and step != 1:
        ctx.fail(f"{where}: log: true cannot be combined with step: {step}; drop one of them")
    if (high - low) % step:
        ctx.fail(
            f"{where}: high - low ({high - low}) is not a multiple of step ({step}); "
            f"set high: {high - (high - low) % step}"
        )
    return IntParam(name=name, low=low, high=high, step=step, log=log)


def _parse_float(ctx: _Context, name: str, entry: Mapping[str, Any], log: bool) -> FloatParam:
    where = f"params.{name}"
    low = ctx.number(entry["low"], f"{where}.low")
    high = ctx.number(entry["high"], f"{where}.high")
    _check_range(ctx, where, low, high, log)
    step: float | None = None
    if entry.get("step") is not None:
        step = ctx.number(entry["step"], f"{where}.step")
        if step <= 0:
            ctx.fail(f"{where}.step must be positive, got {format_value(step)}; raise it")
        if log:
            ctx.fail(f"{where}: log: true cannot be combined with step; drop one of them")
    return FloatParam(name=name, low=low, high=high, log=log, step=step)


def _parse_categorical(ctx: _Context, name: str, entry: Mapping[str, Any]) -> CategoricalParam:
    where = f"params.{name}"
    if "choices" not in entry:
        ctx.fail(f"{where} has no choices; add choices: [a, b, ...]")
    choices = entry["choices"]
    if not isinstance(choices, list):
        ctx.fail(
            f"{where}.choices must be a list, got {_type_word(choices)}; write choices: [a, b]"
        )
    if not choices:
        ctx.fail(f"{where}.choices is empty; list at least one value, like choices: [a, b]")
    for i, choice in enumerate(choices):
        if choice is not None and not isinstance(choice, bool | int | float | str):
            ctx.fail(
                f"{where}.choices[{i}] is {_type_word(choice)}; choices must be null, true/false, "
                f"numbers or text (quote it to make it text)"
            )
        if any(same_value(choice, c) for c in choices[:i]):
            ctx.fail(f"{where}.choices lists {format_value(choice)} twice; remove the duplicate")
    return CategoricalParam(name=name, choices=tuple(choices))


# ---------------------------------------------------------------- conditions


def parse_condition(text: str) -> Condition:
    """Parse ``"<param> <op> <value>"``; ValueError with the reason (and a fix) if it can't."""
    match = _CONDITION.match(text)
    if match is None:
        raise ValueError(
            f"write '<param> <op> <value>' with op one of {' '.join(OPS)}, like 'n_blocks >= 2'"
        )
    param, op, raw = match["param"], match["op"], match["value"]
    if op in ("=", "=>", "=<"):
        better = {"=": "==", "=>": ">=", "=<": "<="}[op]
        raise ValueError(f"use '{better}' instead of '{op}'")
    if not raw:
        raise ValueError(f"there is no value after '{op}'; add one, like '{param} {op} 2'")
    try:
        value = yaml.load(raw, Loader=SpaceLoader)  # a SafeLoader
    except yaml.YAMLError:
        raise ValueError(
            f"the value {raw!r} is not valid YAML; quote text or write a list as [a, b]"
        ) from None
    if op == "in":
        if not isinstance(value, list):
            raise ValueError(f"'in' needs a list, like '{param} in [a, b]'")
        bad = [v for v in value if isinstance(v, list | dict)]
        if bad or not value:
            raise ValueError(
                f"'in' needs a non-empty list of plain values, like '{param} in [a, b]'"
            )
        return Condition(param, op, tuple(value))
    if isinstance(value, list | dict):
        raise ValueError(f"'{op}' compares with one value; use 'in' for a list")
    return Condition(param, op, value)


def _parse_when(
    ctx: _Context,
    name: str,
    raw: Any,
    params: Mapping[str, Param],
    fixed: Mapping[str, Any],
) -> tuple[Condition, ...]:
    where = f"params.{name}.when"
    if raw is None:
        return ()
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        ctx.fail(
            f'{where} must be a condition like "n_blocks >= 2" or a list of them, '
            f"got {_type_word(raw)}; quote each condition"
        )
    out = []
    for text in items:
        try:
            cond = parse_condition(text)
        except ValueError as e:
            ctx.fail(f"cannot parse {where} {text!r}: {e}")
        _check_condition(ctx, where, text, cond, params, fixed)
        out.append(cond)
    return tuple(out)


def _check_condition(
    ctx: _Context,
    where: str,
    text: str,
    cond: Condition,
    params: Mapping[str, Param],
    fixed: Mapping[str, Any],
) -> None:
    values = cond.value if cond.op == "in" else (cond.value,)
    if cond.param in fixed:
        if cond.op in ORDER_OPS and not (is_number(fixed[cond.param]) and is_number(cond.value)):
            ctx.fail(f"{where} {text!r} compares non-numbers with '{cond.op}'; use == or in")
        return
    target = params.get(cond.param)
    if target is None:
        guess = close_match(cond.param, [*params, *fixed])
        fix = f"did you mean {guess!r}?" if guess else "declare it in params or fixed"
        ctx.fail(f"{where} {text!r} refers to {cond.param!r}, which is not a parameter; {fix}")
    if isinstance(target, CategoricalParam):
        if cond.op in ORDER_OPS:
            if not all(is_number(c) for c in target.choices) or not is_number(cond.value):
                ctx.fail(
                    f"{where} {text!r} uses '{cond.op}' but {cond.param}'s choices are not all "
                    f"numbers; use == or in"
                )
            return
        for v in values:
            if not target.contains(v):
                ctx.fail(
                    f"{where} {text!r}: {_quote(v)} is not one of {cond.param}'s choices "
                    f"({target.describe()}); use one of them"
                )
        return
    for v in values:
        if not is_number(v):
            ctx.fail(
                f"{where} {text!r}: {cond.param} is a number, got {_quote(v)}; "
                f"compare it with a number"
            )


def _dependency_order(
    ctx: _Context, names: list[str], conditions: Mapping[str, tuple[Condition, ...]]
) -> list[str]:
    """Parameters in declaration order, each moved after the parameters its conditions use."""
    deps = {n: [c.param for c in conditions[n] if c.param in conditions] for n in names}
    done: set[str] = set()
    order: list[str] = []

    def visit(name: str, path: list[str]) -> None:
        if name in done:
            return
        if name in path:
            cycle = [*path[path.index(name) :], name]
            ctx.fail(
                f"params: the when conditions form a cycle ({' -> '.join(cycle)}); "
                f"remove one of these conditions"
            )
        for dep in deps[name]:
            visit(dep, [*path, name])
        done.add(name)
        order.append(name)

    for name in names:
        visit(name, [])
    return order


# ---------------------------------------------------------------- enqueued trials


def _parse_enqueue(ctx: _Context, raw: Any, space: SearchSpace) -> tuple[dict[str, Any], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        ctx.fail(
            f"enqueue must be a list of trials, got {_type_word(raw)}; "
            f"write enqueue: [{{name: value, ...}}]"
        )
    params = {p.name: p for p in space.params}
    out = []
    for i, entry in enumerate(raw):
        where = f"enqueue[{i}]"
        if not isinstance(entry, dict):
            ctx.fail(f"{where} must be a mapping of parameter values, got {_type_word(entry)}")
        values: dict[str, Any] = {}
        for key, value in entry.items():
            key_text = str(key)
            if key in space.fixed:
                ctx.fail(f"{where}: {key_text!r} is fixed, not searched; remove it from {where}")
            p = params.get(key_text)
            if p is None:
                guess = close_match(key_text, params)
                fix = f"did you mean {guess!r}?" if guess else "remove it"
                ctx.fail(f"{where}: unknown parameter {key_text!r}; {fix}")
            if not p.contains(value):
                ctx.fail(
                    f"{where}: {key_text} = {_quote(value)} is outside the space "
                    f"({p.type_name} {p.describe()}); use a value in it"
                )
            values[key_text] = float(value) if isinstance(p, FloatParam) else value
        out.append(space.active_params(values))
    return tuple(out)
