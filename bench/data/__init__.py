"""Data: load a source, split it reproducibly, report its hygiene.

``load_dataset`` reads ``sample`` (bundled), a ``.csv/.tsv/.jsonl/.xlsx`` file, or
``aihub:``/``single-turn:``/``multi-turn:``/``file:`` sources; ``limit_train``
subsamples the training split; ``inspect_dataset`` summarises a dataset.
"""

from bench.data.loader import load_dataset
from bench.data.split import limit_train
from bench.data.summary import inspect_dataset
from bench.data.types import DataOptions, DataReport, Example, SplitDataset

__all__ = ["DataOptions", "DataReport", "Example", "SplitDataset", "inspect_dataset", "limit_train", "load_dataset"]
