"""Padding a batch of token-id sequences to one array: the input format of training and prediction.

:func:`pad_rows` is numpy only (ONNX prediction imports no torch); :class:`PadCollator`
turns its arrays into the tensors of a training or prediction batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

# (index in the split, token ids, label: a class id, or a multi-label 0/1 row)
TokenExample = tuple[int, Sequence[int] | np.ndarray, int | np.ndarray]


def label_array(labels: Sequence[int] | np.ndarray) -> np.ndarray:
    """Class ids as ``int64`` ``(N,)``, or multi-label targets ``(N, labels)`` as ``float32`` 0/1."""
    from bench.tasks import task_of

    array = np.asarray(labels)
    return array.astype(task_of(array).target_dtype)


def label_tensor(labels: Sequence[int | np.ndarray]) -> torch.Tensor:
    """A batch of labels: ``long`` class ids, or ``float`` multi-label targets from :func:`label_array` rows."""
    import torch

    return torch.from_numpy(label_array(np.stack(labels)))


def pad_rows(rows: Sequence[Sequence[int] | np.ndarray], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """``input_ids`` right-padded with ``pad_id`` to the longest row, and its ``attention_mask`` (both int64)."""
    lengths = np.fromiter((len(ids) for ids in rows), dtype=np.int64, count=len(rows))
    input_ids = np.full((len(rows), int(lengths.max())), pad_id, dtype=np.int64)
    for row, ids in enumerate(rows):
        input_ids[row, : lengths[row]] = ids
    attention_mask = (np.arange(input_ids.shape[1]) < lengths[:, None]).astype(np.int64)
    return input_ids, attention_mask


class PadCollator:
    """Pads a list of ``(index, ids, label)`` examples to the longest one in the batch (right padding)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, examples: Sequence[TokenExample]) -> dict[str, torch.Tensor]:
        import torch

        input_ids, attention_mask = pad_rows([ids for _, ids, _ in examples], self.pad_id)
        return {
            "index": torch.tensor([index for index, _, _ in examples], dtype=torch.long),
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention_mask),
            "labels": label_tensor([label for _, _, label in examples]),
        }
