"""Which dataset a study trains on: the space's, unless the user passes another."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tuner.space.spec import SearchSpace
    from tuner.study.trial_data import TrialData


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
    val_data: str | Path | None = None,
    seed: int = 0,
    writers_by_number: bool = False,
    notify: Callable[[str], None] | None = None,
) -> TrialData:
    """The study's data, ready to be varied per trial (searched preprocessing, mixing)."""
    from tuner.data.preprocess import Preprocessing
    from tuner.study.trial_data import TrialData, load_study_data

    root = dataset_root(space, override, notify)
    val_root = Path(val_data).expanduser() if val_data else None
    base = load_study_data(
        root, Preprocessing(), val_data=val_root, seed=seed, writers_by_number=writers_by_number
    )
    return TrialData(
        base,
        root=root,
        val_data=val_root,
        seed=seed,
        max_synth_ratio=_max_ratio(space),
        writers_by_number=writers_by_number,
    )


def _max_ratio(space: SearchSpace) -> float:
    """The largest synthetic mix ratio the space can ask for (sizes the synthetic pool)."""
    from tuner.space.spec import CategoricalParam, FloatParam, IntParam

    ratios = [float(space.fixed.get("synth_ratio", 0) or 0)]
    for p in space.params:
        if p.name != "synth_ratio":
            continue
        if isinstance(p, CategoricalParam):
            ratios += [float(c) for c in p.choices]
        elif isinstance(p, IntParam | FloatParam):
            ratios.append(float(p.high))
    return max(ratios)
