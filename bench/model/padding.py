"""Padding a batch of token-id sequences to one tensor: the input format of training and prediction."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

# (index in the split, token ids, label: a class id, or a multi-label 0/1 row)
TokenExample = tuple[int, Sequence[int] | np.ndarray, int | np.ndarray]


def label_array(labels: Sequence[int] | np.ndarray) -> np.ndarray:
    """Class ids as ``int64`` ``(N,)``, or multi-label targets ``(N, labels)`` as ``float32`` 0/1."""
    array = np.asarray(labels)
    return array.astype(np.float32) if array.ndim == 2 else array.astype(np.int64)


def label_tensor(labels: Sequence[int | np.ndarray]) -> torch.Tensor:
    """A batch of labels: ``long`` class ids, or ``float`` multi-label targets from :func:`label_array` rows."""
    return torch.from_numpy(label_array(np.stack(labels)))


class PadCollator:
    """Pads a list of ``(index, ids, label)`` examples to the longest one in the batch (right padding)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, examples: Sequence[TokenExample]) -> dict[str, torch.Tensor]:
        lengths = np.fromiter((len(ids) for _, ids, _ in examples), dtype=np.int64, count=len(examples))
        input_ids = np.full((len(examples), int(lengths.max())), self.pad_id, dtype=np.int64)
        for row, (_, ids, _) in enumerate(examples):
            input_ids[row, : lengths[row]] = ids
        attention_mask = np.arange(input_ids.shape[1]) < lengths[:, None]
        return {
            "index": torch.tensor([index for index, _, _ in examples], dtype=torch.long),
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention_mask.astype(np.int64)),
            "labels": label_tensor([label for _, _, label in examples]),
        }
