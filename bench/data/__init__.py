"""Data: load a source, split it reproducibly, report its hygiene.

``load_dataset`` reads ``sample`` (bundled), a ``.csv/.tsv/.jsonl/.xlsx`` file, or
``aihub:``/``single-turn:``/``multi-turn:``/``file:`` sources; ``limit_train``
subsamples the training split; ``inspect_dataset`` summarises a dataset.
The names are imported on first use, so ``bench.data.types`` stays light (no pandas).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.data.loader import load_dataset
    from bench.data.split import limit_train
    from bench.data.summary import inspect_dataset
    from bench.data.types import DataOptions, DataReport, Example, SplitDataset

_HOMES = {
    "DataOptions": "bench.data.types",
    "DataReport": "bench.data.types",
    "Example": "bench.data.types",
    "SplitDataset": "bench.data.types",
    "inspect_dataset": "bench.data.summary",
    "limit_train": "bench.data.split",
    "load_dataset": "bench.data.loader",
}
__all__ = [
    "DataOptions",
    "DataReport",
    "Example",
    "SplitDataset",
    "inspect_dataset",
    "limit_train",
    "load_dataset",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
