"""The search-space data model: parameters, conditions, and the space a study samples from.

Pure Python: nothing here imports TensorFlow, Keras, MLflow or Optuna. :meth:`SearchSpace.suggest`
takes an Optuna trial but only calls its ``suggest_*`` methods (duck typing), so a
``FrozenTrial`` works too: ``space.suggest(study.best_trial)`` replays the best trial's values.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from optuna.trial import BaseTrial

#: The comparison operators a ``when`` condition may use.
OPS: tuple[str, ...] = ("==", "!=", ">=", "<=", ">", "<", "in")
#: Ordering operators: they need numbers on both sides.
ORDER_OPS: frozenset[str] = frozenset({">=", "<=", ">", "<"})
#: Model families a space may name; the study's model builder has one per name.
MODELS: tuple[str, ...] = ("cnn", "logistic")
#: Objective directions (the type is what ``optuna.create_study(direction=...)`` accepts).
Direction = Literal["maximize", "minimize"]
DIRECTIONS: tuple[Direction, ...] = ("maximize", "minimize")

_PLAIN_STRING = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def is_number(value: object) -> bool:
    """True for ints and floats, False for bools (which Python counts as ints)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def same_value(a: object, b: object) -> bool:
    """Equality that keeps ``True`` apart from ``1`` and ``False`` apart from ``0``."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def format_value(value: Any) -> str:
    """Write a value the way the YAML files do (``true``, ``null``, ``[max, average]``, ``1e-05``).

    The result parses back to the same value with the space loader, so conditions round-trip.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, str):
        reserved = {"null", "true", "false", "yes", "no", "on", "off", "y", "n", "~"}
        if _PLAIN_STRING.match(value) and value.lower() not in reserved:
            return value
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{format_value(k)}: {format_value(v)}" for k, v in value.items())
        return "{" + items + "}"
    return str(value)


@dataclass(frozen=True)
class Condition:
    """``<param> <op> <value>``: when a parameter is active. ``in`` takes a tuple of values."""

    param: str
    op: str
    value: Any

    def holds(self, values: Mapping[str, Any]) -> bool:
        """Whether the condition holds; False when ``param`` is absent (inactive or unknown)."""
        if self.param not in values:
            return False
        actual = values[self.param]
        try:
            if self.op == "==":
                return bool(same_value(actual, self.value))
            if self.op == "!=":
                return not same_value(actual, self.value)
            if self.op == "in":
                return any(same_value(actual, v) for v in self.value)
            if self.op in ORDER_OPS and not (is_number(actual) and is_number(self.value)):
                return False
            if self.op == ">=":
                return bool(actual >= self.value)
            if self.op == "<=":
                return bool(actual <= self.value)
            if self.op == ">":
                return bool(actual > self.value)
            if self.op == "<":
                return bool(actual < self.value)
        except TypeError:
            return False
        raise ValueError(f"unknown condition operator {self.op!r}")

    def __str__(self) -> str:
        return f"{self.param} {self.op} {format_value(self.value)}"


def _when_dict(when: tuple[Condition, ...]) -> dict[str, Any]:
    return {"when": [str(c) for c in when]} if when else {}


@dataclass(frozen=True)
class IntParam:
    """An integer in ``[low, high]`` on a grid of ``step``; ``log`` samples on a log scale."""

    name: str
    low: int
    high: int
    step: int = 1
    log: bool = False
    when: tuple[Condition, ...] = ()

    type_name = "int"

    def suggest(self, trial: BaseTrial) -> int:
        return trial.suggest_int(self.name, self.low, self.high, step=self.step, log=self.log)

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
            and (value - self.low) % self.step == 0
        )

    def describe(self) -> str:
        """The range in words, for error messages and ``tune spaces show``."""
        grid = f" step {self.step}" if self.step != 1 else ""
        return f"{self.low}..{self.high}{grid}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "int", "low": self.low, "high": self.high}
        if self.step != 1:
            out["step"] = self.step
        if self.log:
            out["log"] = True
        return out | _when_dict(self.when)


@dataclass(frozen=True)
class FloatParam:
    """A float in ``[low, high]``; ``log`` samples on a log scale; ``step`` discretises it."""

    name: str
    low: float
    high: float
    log: bool = False
    step: float | None = None
    when: tuple[Condition, ...] = ()

    type_name = "float"

    def suggest(self, trial: BaseTrial) -> float:
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def contains(self, value: Any) -> bool:
        return is_number(value) and self.low <= value <= self.high

    def describe(self) -> str:
        grid = f" step {format_value(self.step)}" if self.step is not None else ""
        return f"{format_value(self.low)}..{format_value(self.high)}{grid}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "float", "low": self.low, "high": self.high}
        if self.step is not None:
            out["step"] = self.step
        if self.log:
            out["log"] = True
        return out | _when_dict(self.when)


@dataclass(frozen=True)
class CategoricalParam:
    """One of ``choices`` (None, bools, numbers or strings, as Optuna allows)."""

    name: str
    choices: tuple[Any, ...]
    when: tuple[Condition, ...] = ()

    type_name = "categorical"

    def suggest(self, trial: BaseTrial) -> Any:
        return trial.suggest_categorical(self.name, list(self.choices))

    def contains(self, value: Any) -> bool:
        return any(same_value(value, c) for c in self.choices)

    def describe(self) -> str:
        return ", ".join(format_value(c) for c in self.choices)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "categorical", "choices": list(self.choices)} | _when_dict(self.when)


Param = IntParam | FloatParam | CategoricalParam


#: Metrics a trial measures once, after training, that a study can optimise as further
#: objectives beside the validation metric: parameter count, and CPU inference time per image.
SECONDARY_METRICS = ("n_params", "inference_ms")


@dataclass(frozen=True)
class Objective:
    """The metric a trial reports (the best epoch's value) and which way is better."""

    metric: str = "val_accuracy"
    direction: Direction = "maximize"


@dataclass(frozen=True)
class Training:
    """How each trial trains: epochs, early-stopping patience, the default batch size."""

    max_epochs: int = 10
    patience: int = 3
    batch_size: int = 64
    min_delta: float = 0.0


@dataclass(frozen=True)
class Budget:
    """How much the study runs: a trial count and an optional wall-clock timeout in seconds."""

    n_trials: int = 20
    timeout: float | None = None


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space. Build one with :func:`tuner.space.load_space`."""

    name: str
    description: str
    source: Path | None
    dataset: str
    model: str
    params: tuple[Param, ...] = ()
    fixed: Mapping[str, Any] = field(default_factory=dict)
    training: Training = field(default_factory=Training)
    objective: Objective = field(default_factory=Objective)
    budget: Budget = field(default_factory=Budget)
    enqueue: tuple[Mapping[str, Any], ...] = ()
    # More objectives make the study multi-objective (a Pareto front); see SECONDARY_METRICS.
    extra_objectives: tuple[Objective, ...] = ()

    @property
    def objectives(self) -> tuple[Objective, ...]:
        return (self.objective, *self.extra_objectives)

    @property
    def multi_objective(self) -> bool:
        return bool(self.extra_objectives)

    def _objective_data(self) -> dict[str, Any] | list[dict[str, Any]]:
        data = [{"metric": o.metric, "direction": o.direction} for o in self.objectives]
        return data if self.multi_objective else data[0]

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def param(self, name: str) -> Param:
        """The parameter called ``name`` (KeyError if there is none)."""
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def suggest(self, trial: BaseTrial) -> dict[str, Any]:
        """Sample the active parameters, in order, and return ``{**fixed, **sampled}``.

        A parameter is active when all its conditions hold against the fixed values and the
        values sampled before it; a condition on an inactive parameter does not hold.
        """
        values: dict[str, Any] = dict(self.fixed)
        for p in self.params:
            if all(c.holds(values) for c in p.when):
                values[p.name] = p.suggest(trial)
        return values

    def active_params(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` without the parameters that are inactive given the others.

        Keys that are not parameters of this space (fixed values, say) are kept as they are;
        a parameter missing from ``values`` counts as inactive for the conditions after it.
        """
        names = set(self.param_names)
        context: dict[str, Any] = dict(self.fixed)
        context.update((k, v) for k, v in values.items() if k not in names)
        active: set[str] = set()
        for p in self.params:
            if p.name in values and all(c.holds(context) for c in p.when):
                context[p.name] = values[p.name]
                active.add(p.name)
        return {k: v for k, v in values.items() if k not in names or k in active}

    def fingerprint(self) -> str:
        """A short, stable hash of what a study's results depend on.

        Covers the parameters (names, ranges, choices, conditions), fixed values, model and
        objective; not the name, description, dataset, training, budget or enqueued trials.
        The order of parameters in the file does not matter; the order of choices does
        (Optuna stores a categorical value as its index).
        """
        params = sorted(({"name": p.name, **p.to_dict()} for p in self.params), key=_by_name)
        for p in params:
            if "when" in p:
                p["when"] = sorted(p["when"])
        payload = {
            "model": self.model,
            "objective": self._objective_data(),
            "fixed": dict(self.fixed),
            "params": params,
        }
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=repr)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """Plain data in the YAML file's own format; :func:`parse_space` reads it back."""
        timeout = self.budget.timeout
        return {
            "name": self.name,
            "description": self.description,
            "dataset": self.dataset,
            "model": self.model,
            "objective": self._objective_data(),
            "training": {
                "max_epochs": self.training.max_epochs,
                "patience": self.training.patience,
                "batch_size": self.training.batch_size,
                "min_delta": self.training.min_delta,
            },
            "budget": {"n_trials": self.budget.n_trials, "timeout": timeout},
            "fixed": dict(self.fixed),
            "params": {p.name: p.to_dict() for p in self.params},
            "enqueue": [dict(e) for e in self.enqueue],
        }


def _by_name(entry: Mapping[str, Any]) -> str:
    return str(entry["name"])
