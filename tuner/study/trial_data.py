"""The arrays one trial trains and validates on, given its sampled parameters.

Most trials use the study's dataset as loaded. A space may also search the preprocessing
(``preprocess_keep_aspect``, ``preprocess_normalize_ink``, ``preprocess_crop_ink``: the
dataset re-read with those settings, through the array cache) and the synthetic writers mixed
into training (``synth_ratio`` images per real image, ``synth_variety``). Each variant is built
once per process and kept; validation and test splits are never mixed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tuner.data.layout import Dataset, Split, class_differences, list_class_folders, load_split
from tuner.data.preprocess import Preprocessing
from tuner.errors import DataError

SEARCHED_DATA_PARAMS = (
    "preprocess_keep_aspect",
    "preprocess_normalize_ink",
    "preprocess_crop_ink",
    "synth_ratio",
    "synth_variety",
)


def validation_folder(val_root: Path) -> Path:
    """A separate validation set: ``DIR/Train`` if there is one, else ``DIR`` itself holding
    one folder per class."""
    val_root = Path(val_root).expanduser()
    if (val_root / "Train").is_dir():
        return val_root / "Train"
    if val_root.is_dir():
        return val_root
    raise DataError(
        f"validation set {val_root} does not exist: give a folder with one sub-folder per "
        "class (or DIR/Train/<class>/...) for --val-data"
    )


def load_validation(val_root: Path, classes: list[str], pp: Preprocessing) -> Split:
    """Every image of a separate validation set, whose class names must match."""
    folder = validation_folder(val_root)
    differences = class_differences(classes, list_class_folders(folder))
    if differences:
        raise DataError(
            f"the classes in validation set {folder} do not match the training data's "
            f"{len(classes)} classes ({differences}): use a dev set of the same characters"
        )
    return load_split(folder, classes, pp)


class TrialData:
    """Datasets by trial parameters, each built once (``dataset(params)``)."""

    def __init__(
        self,
        base: Dataset,
        *,
        root: Path | None = None,
        val_data: Path | None = None,
        seed: int = 0,
        max_synth_ratio: float = 2.0,
        writers_by_number: bool = False,
    ) -> None:
        self.writers_by_number = writers_by_number
        self.base = base
        self.root = root  # None: the base is all there is (in-memory data, tests)
        self.val_data = val_data
        self.seed = seed
        self.max_synth_ratio = max_synth_ratio
        self._variants: dict[Preprocessing, Dataset] = {base.preprocessing: base}
        self._mixed: dict[tuple[Preprocessing, float, float], Dataset] = {}

    def dataset(self, params: Mapping[str, Any]) -> Dataset:
        pp = Preprocessing.from_params(params, self.base.preprocessing)
        data = self._variant(pp)
        ratio = float(params.get("synth_ratio", 0) or 0)
        if ratio <= 0:
            return data
        variety = float(params.get("synth_variety", 1.0))
        key = (pp, ratio, variety)
        if key not in self._mixed:
            from tuner.data.mixing import mix_into, synthetic_pool, writers_needed

            pool = synthetic_pool(
                data.classes,
                writers_needed(data.train, len(data.classes), max(self.max_synth_ratio, ratio)),
                preprocessing=pp,
                variety=variety,
                seed=self.seed,
            )
            train = mix_into(data.train, pool, ratio, data.classes)
            self._mixed[key] = dataclasses.replace(data, train=train)
        return self._mixed[key]

    def _variant(self, pp: Preprocessing) -> Dataset:
        if pp not in self._variants:
            if self.root is None:
                return self.base
            self._variants[pp] = load_study_data(
                self.root,
                pp,
                val_data=self.val_data,
                seed=self.seed,
                writers_by_number=self.writers_by_number,
            )
        return self._variants[pp]


def load_study_data(
    root: Path,
    pp: Preprocessing,
    *,
    val_data: Path | None = None,
    seed: int = 0,
    writers_by_number: bool = False,
) -> Dataset:
    """The study's dataset: Train less a (writer-aware) validation split, or all of Train when
    a separate validation set (``val_data``) is given."""
    from tuner.data.layout import load_dataset

    kw: dict[str, Any] = {"preprocessing": pp, "seed": seed, "writers_by_number": writers_by_number}
    if val_data is None:
        return load_dataset(root, **kw)
    data = load_dataset(root, val_fraction=0.0, **kw)
    return dataclasses.replace(data, val=load_validation(val_data, data.classes, pp))
