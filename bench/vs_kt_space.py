"""Our search space, translated programmatically into a Keras Tuner hypermodel.

The space is written once (``search_spaces/casia_cnn.yaml``); :class:`SpaceHyperModel` declares
the same parameters to Keras Tuner and builds the model with OUR builder
(:func:`tuner.models.builder.build_model`), so both tools train the identical network for the
same sampled values.

=====================================  ==========================================================
ours                                   Keras Tuner
=====================================  ==========================================================
``{type: int, low, high, step, log}``  ``hp.Int(name, low, high, step, sampling=linear|log)``
``{type: float, low, high, log}``      ``hp.Float(name, low, high, sampling=linear|log)``
``{type: float, ..., step}``           ``hp.Float(name, low, high, step=step)``
``{type: categorical, choices}``       ``hp.Choice(name, choices)``
``when: "n_blocks >= 2"``              ``hp.conditional_scope("n_blocks", [2, 3, 4, 5])``
several conditions                     one scope, all conditions (see :func:`_scopes`)
=====================================  ==========================================================

Keras Tuner's conditions are "parent value in a list", so a condition is translated by
enumerating the parent's domain (an int range or a categorical's choices) and keeping the values
for which our condition holds. A condition on a float parameter cannot be enumerated and is
refused. A condition on a ``fixed`` value is decided once, here. As in our sampler, a condition
on an inactive parent does not hold (Keras Tuner's ``Parent`` condition is false when the
parent has no value).

``batch_size`` and the data parameters (``preprocess_*``, ``synth_*``) are searched in our space
but act outside the model; the hypermodel's ``fit`` (Keras Tuner's documented way to tune fit
arguments) applies them exactly as our trial runner does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from tuner.space.spec import (
    CategoricalParam,
    Condition,
    FloatParam,
    IntParam,
    Param,
    SearchSpace,
)

#: Enumerating an int parent wider than this is refused (Keras Tuner would hold the list).
MAX_ENUMERATED = 10_000


class TranslationError(ValueError):
    """A part of the space that Keras Tuner's hyperparameters cannot express."""


def _domain(param: Param) -> list[Any]:
    """Every value ``param`` can take, for turning a condition on it into a value list."""
    if isinstance(param, CategoricalParam):
        return list(param.choices)
    if isinstance(param, IntParam):
        count = (param.high - param.low) // param.step + 1
        if count > MAX_ENUMERATED:
            raise TranslationError(
                f"{param.name}: {count} values are too many to enumerate for a condition"
            )
        return list(range(param.low, param.high + 1, param.step))
    raise TranslationError(
        f"a condition on the float parameter {param.name!r} cannot be written as Keras Tuner's "
        "'parent value in a list'"
    )


def parent_values(space: SearchSpace, condition: Condition) -> list[Any] | bool:
    """The parent values for which ``condition`` holds, or a bool for a condition on a fixed
    value (decided once: True drops the condition, False makes the parameter never active)."""
    if condition.param in space.fixed:
        return condition.holds(space.fixed)
    try:
        parent = space.param(condition.param)
    except KeyError:
        return False  # an unknown name never holds (the space loader refuses these anyway)
    return [v for v in _domain(parent) if condition.holds({parent.name: v})]


def translated_conditions(space: SearchSpace, param: Param) -> list[tuple[str, list[Any]]] | None:
    """``param``'s conditions as (parent name, values) pairs; None if it can never be active."""
    out: list[tuple[str, list[Any]]] = []
    for condition in param.when:
        values = parent_values(space, condition)
        if values is True:
            continue
        if values is False or not values:
            return None
        assert isinstance(values, list)
        out.append((condition.param, values))
    return out


def declare(hp: Any, param: Param) -> Any:
    """Declare one parameter on Keras Tuner's ``hp`` (inside its conditional scopes)."""
    if isinstance(param, IntParam):
        return hp.Int(
            param.name,
            min_value=param.low,
            max_value=param.high,
            step=param.step,
            sampling="log" if param.log else "linear",
        )
    if isinstance(param, FloatParam):
        return hp.Float(
            param.name,
            min_value=float(param.low),
            max_value=float(param.high),
            step=param.step,
            sampling="log" if param.log else "linear",
        )
    if isinstance(param, CategoricalParam):
        kinds = {type(c) for c in param.choices}
        if len(kinds) > 1 or not kinds <= {int, float, str, bool}:
            raise TranslationError(
                f"{param.name}: Keras Tuner's Choice needs values of one type among int, float, "
                f"str, bool; got {sorted(k.__name__ for k in kinds)}"
            )
        return hp.Choice(param.name, list(param.choices))
    raise TranslationError(f"{param.name}: unknown parameter type {type(param).__name__}")


@contextlib.contextmanager
def _scopes(hp: Any, conditions: list[tuple[str, list[Any]]]) -> Iterator[None]:
    """Keras Tuner's ``conditional_scope`` for the first condition; any further ones are added
    to the list of conditions that scope keeps (``hp._conditions``).

    Keras Tuner nests a scope only on a parent declared inside the enclosing scope, so
    ``["n_blocks >= 2", "pooling != none"]`` (two top-level parents) cannot be written as two
    nested scopes; but a hyperparameter's conditions are a plain conjunction wherever Keras
    Tuner evaluates them (``HyperParameters.is_active``, the oracles' sampling), which is
    what the scope itself appends to.
    """
    if not conditions:
        yield
        return
    (parent, values), rest = conditions[0], conditions[1:]
    with hp.conditional_scope(parent, values):
        from keras_tuner.src.engine.conditions import Parent

        extra = [Parent(name, vals) for name, vals in rest]
        hp._conditions.extend(extra)
        try:
            yield
        finally:
            del hp._conditions[len(hp._conditions) - len(extra) :]


def sample(hp: Any, space: SearchSpace) -> dict[str, Any]:
    """Declare the whole space on ``hp`` and return ``{**fixed, **active values}``: the same
    dict our ``space.suggest(trial)`` returns for these values."""
    values: dict[str, Any] = dict(space.fixed)
    for param in space.params:
        conditions = translated_conditions(space, param)
        if conditions is None:
            continue
        with _scopes(hp, conditions):
            value = declare(hp, param)
        if value is not None:  # Keras Tuner returns None for an inactive parameter
            values[param.name] = value
    return values


def check_translation(space: SearchSpace) -> None:
    """Raise :class:`TranslationError` now rather than in the first trial."""
    for param in space.params:
        translated_conditions(space, param)


def trial_params(space: SearchSpace, hp_values: Mapping[str, Any]) -> dict[str, Any]:
    """What our trial runner gets from ``space.suggest``: fixed values plus the active sampled
    ones (Keras Tuner's ``hp.values`` also holds its own ``tuner/...`` entries)."""
    return {**space.fixed, **active_values(space, hp_values)}


def make_hypermodel(space: SearchSpace, trial_data: Any) -> Any:
    """A ``keras_tuner.HyperModel`` over ``space`` that trains what our trial runner trains.

    ``build`` calls our model builder; ``fit`` takes the trial's data from ``trial_data`` (a
    :class:`tuner.study.trial_data.TrialData`, as ``tune run`` makes it), so searched data
    parameters (preprocessing, synthetic mixing) mean the same arrays on both sides, and the
    batch size is the sampled one.
    """
    import keras_tuner as kt

    from tuner.models.builder import ModelConfigError, build_model

    check_translation(space)
    base = trial_data.base
    input_shape = (*base.train.images.shape[1:3], 1)
    n_classes = len(base.classes)

    class SpaceHyperModel(kt.HyperModel):
        """Samples our space on Keras Tuner's ``hp`` and builds and trains our model."""

        #: True while the tuner is constructed: Keras Tuner then calls ``build`` with made-up
        #: values to discover the conditional parameters, and needs only the declarations
        #: (a made-up combination may be one our builder refuses).
        declaring = False

        def build(self, hp: Any) -> Any:
            params = sample(hp, space)
            if self.declaring:
                return None
            # A configuration our builder refuses (an unknown optimizer, say) is an
            # infeasible trial, as it is a failed trial in our study.
            try:
                return build_model(space.model, params, input_shape, n_classes)
            except ModelConfigError as exc:
                raise kt.errors.FailedTrialError(str(exc)) from None

        def fit(self, hp: Any, model: Any, *args: Any, **kwargs: Any) -> Any:
            params = trial_params(space, hp.values)
            data = trial_data.dataset(params)
            kwargs.pop("validation_data", None)
            kwargs["batch_size"] = int(params.get("batch_size", space.training.batch_size))
            return model.fit(
                data.train.images[..., None],
                data.train.labels,
                validation_data=(data.val.images[..., None], data.val.labels),
                **kwargs,
            )

    return SpaceHyperModel(name=space.name)


def make_tuner(hypermodel: Any, tuner_class: Any, **kwargs: Any) -> Any:
    """``tuner_class(hypermodel, **kwargs)``, with the hypermodel only declaring its space
    while Keras Tuner explores it in the constructor."""
    hypermodel.declaring = True
    try:
        return tuner_class(hypermodel, **kwargs)
    finally:
        hypermodel.declaring = False


def active_values(space: SearchSpace, hp_values: Mapping[str, Any]) -> dict[str, Any]:
    """A Keras Tuner trial's values reduced to the active ones (``hp.values`` may keep values
    of parameters that a later build made inactive)."""
    known = set(space.param_names)
    return space.active_params({k: v for k, v in hp_values.items() if k in known})


def self_check(space: SearchSpace, n: int = 300, seed: int = 1) -> str:
    """Sample ``n`` configurations with Keras Tuner's own random sampler over the translated
    space and check each is what our space calls active (same names, same values)."""
    import keras_tuner as kt

    hp = kt.HyperParameters()
    for _ in range(3):  # declare every parameter, whichever branch is active
        sample(hp, space)
    oracle = kt.oracles.RandomSearchOracle(
        objective=kt.Objective("val_accuracy", "max"), max_trials=n, seed=seed
    )
    oracle.update_space(hp)
    names = sorted(h.name for h in oracle.hyperparameters.space)
    if names != sorted(space.param_names):
        raise AssertionError(f"declared {names}, the space has {sorted(space.param_names)}")
    active_counts: dict[str, int] = {}
    for _ in range(n):
        values = oracle._random_values()
        trial_hp = oracle.hyperparameters.copy()
        trial_hp.values = dict(values)
        got = sample(trial_hp, space)
        want = {**space.fixed, **space.active_params(values)}
        if got != want or active_values(space, values) != values:
            raise AssertionError(f"Keras Tuner sampled {values}; our space makes it {want}")
        for name in values:
            active_counts[name] = active_counts.get(name, 0) + 1
    rare = sorted(active_counts.items(), key=lambda kv: kv[1])[:3]
    return f"{n} Keras Tuner samples match our space's conditions (least active: {rare})"


if __name__ == "__main__":
    import sys

    from tuner.space import load_space

    print(self_check(load_space(sys.argv[1] if len(sys.argv) > 1 else "casia_cnn")))
