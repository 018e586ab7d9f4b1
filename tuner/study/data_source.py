"""Which dataset a study trains on: the space's, unless the user passes another."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tuner.data.layout import Dataset
    from tuner.space.spec import SearchSpace


def dataset_root(
    space: SearchSpace, override: str | Path | None, notify: Callable[[str], None] | None = None
) -> Path:
    """``--data`` wins; ``dataset: default`` is the embedded synthetic handwriting."""
    spec = str(override) if override else space.dataset
    if spec == "default":
        from tuner.synth.default import default_dataset_root

        if notify:
            notify("using the embedded synthetic handwriting (generated once, then cached)")
        return default_dataset_root()
    return Path(spec).expanduser()


def load_for_space(
    space: SearchSpace,
    override: str | Path | None = None,
    *,
    seed: int = 0,
    notify: Callable[[str], None] | None = None,
) -> Dataset:
    from tuner.data.layout import load_dataset

    return load_dataset(dataset_root(space, override, notify), seed=seed)
