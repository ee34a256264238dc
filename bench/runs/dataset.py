"""The data of a run: loaded, split, limited, and refused before anything is recorded if a split cannot serve."""

from __future__ import annotations

from bench.config import RunConfig
from bench.data import limit_train, load_dataset
from bench.data.types import SplitDataset
from bench.errors import DataError

# What a run does with each split, for the message that refuses one.
SPLIT_PURPOSES = {"train": "train on", "validation": "choose the best epoch on", "test": "test on"}


def prepare_dataset(config: RunConfig) -> SplitDataset:
    """Load and split ``config.data``, apply ``--train-limit`` and check every split can serve (:func:`check_splits`)."""
    dataset = load_dataset(config.data)
    if config.train_limit is not None and config.train_limit < len(dataset.train):
        dataset = limit_train(dataset, config.train_limit, config.data.split_seed)
    check_splits(dataset, devices=config.devices)
    return dataset


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
