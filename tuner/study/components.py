"""Samplers and pruners chosen by name: Optuna's own, with the settings we default to."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

from tuner.errors import TunerError

if TYPE_CHECKING:
    import optuna


def _random(seed: int | None) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _tpe(seed: int | None) -> optuna.samplers.BaseSampler:
    import optuna

    # multivariate + group model the conditional conv blocks jointly; constant_liar keeps
    # parallel workers from proposing the same point while trials are still running.
    return optuna.samplers.TPESampler(
        seed=seed, multivariate=True, group=True, constant_liar=True, n_startup_trials=5
    )


def _gp(seed: int | None) -> optuna.samplers.BaseSampler:
    import optuna

    try:
        import torch  # noqa: F401  (Optuna's GPSampler is written in PyTorch)
    except ImportError:
        raise TunerError(
            "the gp sampler needs PyTorch: install it with  pip install 'tuner[gp]'  "
            "(the CPU build), or pick --sampler tpe"
        ) from None
    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=5)


def _cmaes(seed: int | None) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.CmaEsSampler(
        seed=seed, n_startup_trials=5, independent_sampler=optuna.samplers.RandomSampler(seed=seed)
    )


def _qmc(seed: int | None) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.QMCSampler(seed=seed, scramble=True)


SAMPLERS: dict[str, Callable[[int | None], optuna.samplers.BaseSampler]] = {
    "random": _random,
    "tpe": _tpe,
    "gp": _gp,
    "cmaes": _cmaes,
    "qmc": _qmc,
}


def make_sampler(name: str, seed: int | None = None) -> optuna.samplers.BaseSampler:
    import optuna

    try:
        factory = SAMPLERS[name]
    except KeyError:
        raise TunerError(f"unknown sampler {name!r}: use one of {', '.join(SAMPLERS)}") from None
    with warnings.catch_warnings():  # multivariate/group TPE are "experimental" in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return factory(seed)


def make_pruner(name: str, max_epochs: int) -> optuna.pruners.BasePruner:
    import optuna

    from tuner.study.pruners import SlowTrialPruner

    if name == "median":
        # Compares trials epoch by epoch; the guard adds wall time (tuner/study/pruners.py).
        return SlowTrialPruner(optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1))
    if name == "hyperband":
        # Unwrapped: Optuna's samplers look for a HyperbandPruner itself (its brackets).
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max(max_epochs, 1), reduction_factor=3
        )
    if name == "none":
        return optuna.pruners.NopPruner()
    raise TunerError(f"unknown pruner {name!r}: use one of {', '.join(PRUNERS)}")


PRUNERS = ("median", "hyperband", "none")

#: Samplers that learn only from COMPLETE trials, so pruning starves them. Optuna's GPSampler
#: fits its Gaussian process to completed trials alone (pruned ones are dropped, unlike TPE,
#: which ranks them by their last epoch); with the median rule, 300 s studies in
#: bench/vs_keras_tuner.py completed 4-9 trials of 45-132, and GP + median ended at 0.838
#: against 0.902 for GP without pruning.
LEARNS_FROM_COMPLETE_ONLY = frozenset({"gp"})


def default_pruner(sampler: str) -> str:
    """The pruner a study gets when none is named: none for the GP sampler, else median
    (Keras Tuner's BayesianOptimization, its GP peer, does not prune either)."""
    return "none" if sampler in LEARNS_FROM_COMPLETE_ONLY else "median"


def pairing_advice(sampler: str, pruner: str) -> str | None:
    """A one-line caution when a named pruner works against the named sampler, else None."""
    if sampler in LEARNS_FROM_COMPLETE_ONLY and pruner != "none":
        return (
            f"the {sampler} sampler learns only from completed trials and the {pruner} pruner "
            f"stops most of them, so it may stay near random search; drop --pruner ({sampler}'s "
            f"default is none) or use --sampler tpe"
        )
    return None
