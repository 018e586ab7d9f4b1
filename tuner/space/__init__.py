"""Search spaces: YAML files that say what a study searches, and how each trial trains.

``load_space("casia_cnn")`` finds ``casia_cnn.yaml`` in :func:`default_search_dirs`, validates
it (one-line :class:`tuner.errors.SpaceError` messages naming the file, the key and the fix)
and returns a :class:`SearchSpace`; ``space.suggest(trial)`` samples its active parameters.
The format is documented at the top of ``search_spaces/casia_cnn.yaml``.

Pure Python: importing this package does not import TensorFlow, Keras, MLflow or Optuna.
"""

from __future__ import annotations

from tuner.space.parse import parse_condition, parse_space
from tuner.space.registry import (
    default_search_dirs,
    find_space_files,
    list_spaces,
    load_space,
    read_space_file,
)
from tuner.space.spec import (
    DIRECTIONS,
    MODELS,
    OPS,
    Budget,
    CategoricalParam,
    Condition,
    Direction,
    FloatParam,
    IntParam,
    Objective,
    Param,
    SearchSpace,
    Training,
    format_value,
)

__all__ = [
    "DIRECTIONS",
    "MODELS",
    "OPS",
    "Budget",
    "CategoricalParam",
    "Condition",
    "Direction",
    "FloatParam",
    "IntParam",
    "Objective",
    "Param",
    "SearchSpace",
    "Training",
    "default_search_dirs",
    "find_space_files",
    "format_value",
    "list_spaces",
    "load_space",
    "parse_condition",
    "parse_space",
    "read_space_file",
]
