"""The data of a run: loaded, split, limited, and refused before anything is recorded if a split cannot serve."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bench.config import RunConfig
from bench.data import limit_train, load_dataset
from bench.data.folds import fold_of, fold_scheme
from bench.data.types import SplitDataset
from bench.errors import DataError
from bench.recording.phases import PhaseTimes

# What a run does with each split, for the message that refuses one.
SPLIT_PURPOSES = {"train": "train on", "validation": "choose the best epoch on", "test": "test on"}


def prepare_dataset(config: RunConfig) -> SplitDataset:
    """Load and split ``config.data``, apply ``--train-limit`` and check every split can serve
    (:func:`check_splits`)."""
    dataset = load_dataset(config.data)
    if config.train_limit is not None and config.train_limit < len(dataset.train):
        dataset = limit_train(dataset, config.train_limit, config.data.split_seed)
    check_splits(dataset, devices=config.devices)
    return dataset


def fold_configs(config: RunConfig) -> list[RunConfig]:
    """One config per fold of ``config`` (fold 1 to K) with ``--folds K``, else ``[config]``."""
    if config.data.folds is None or config.data.fold is not None:
        return [config]
    return [config.with_updates(data=replace(config.data, fold=fold)) for fold in range(1, config.data.folds + 1)]


def check_splits(dataset: SplitDataset, *, devices: int = 1) -> None:
    """Raise :class:`DataError` naming the first split a run could not use, and why.

    Train needs an example of at least two classes; validation and test need an
    example for each of ``devices`` ranks (at least one).
    """
    for split, purpose in SPLIT_PURPOSES.items():
        size, needed = len(getattr(dataset, split)), max(1, devices) if split != "train" else 1
        if size < needed:
            have = "is empty" if size == 0 else f"has {size} example{'s' if size != 1 else ''}"
            per_device = f" (one per device of --devices {devices})" if needed > 1 else ""
            raise DataError(
                f"{dataset.name}: the {split} split {have}; a run needs at least {needed}{per_device} to {purpose} "
                "(too few rows or groups for the split: add data or merge groups)"
            )
    train_classes = sorted({example.label for example in dataset.train})
    if len(train_classes) < 2:
        raise DataError(
            f"{dataset.name}: the train split holds only the class {train_classes[0]!r}; "
            "a run needs examples of at least two classes to train on"
        )


@dataclass
class RunDatasets:
    """The dataset of each fold a set of configurations runs on (one entry, fold ``None``, without ``--folds``).

    ``fingerprint`` is the one all folds share (:func:`~bench.data.folds.fold_scheme`).
    """

    by_fold: dict[int | None, SplitDataset]

    @classmethod
    def of_config(cls, config: RunConfig, phases: dict[int | None, PhaseTimes] | None = None) -> RunDatasets:
        """Load and check the dataset of every fold of ``config`` (:func:`prepare_dataset`) before anything runs;
        ``phases`` receives each fold's data-load time."""
        by_fold = {}
        for fold in fold_configs(config):
            times = PhaseTimes()
            with times.measure("data_load"):
                by_fold[fold.data.fold] = prepare_dataset(fold)
            if phases is not None:
                phases[fold.data.fold] = times
        return cls(by_fold)

    @classmethod
    def coerce(cls, datasets: SplitDataset | RunDatasets) -> RunDatasets:
        """``datasets`` as :class:`RunDatasets` (a single dataset is the only one)."""
        return datasets if isinstance(datasets, RunDatasets) else cls({datasets_fold(datasets): datasets})

    def dataset(self, config: RunConfig) -> SplitDataset:
        """The dataset ``config`` runs on."""
        return self.by_fold[config.data.fold]

    @property
    def first(self) -> SplitDataset:
        """The dataset of the first fold (the only one without folds)."""
        return next(iter(self.by_fold.values()))

    @property
    def name(self) -> str:
        """The data's name."""
        return self.first.name

    @property
    def fingerprint(self) -> str:
        """The fingerprint every fold shares."""
        return fold_scheme(self.first.fingerprint)

    @property
    def folds(self) -> int:
        """Number of folds (1 without cross-validation)."""
        return len(self.by_fold)


def datasets_fold(dataset: SplitDataset) -> int | None:
    """The fold a loaded dataset is (``None`` without folds)."""
    fold = fold_of(dataset.fingerprint)
    return fold[0] if fold is not None else None
