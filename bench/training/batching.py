"""Dynamic padding and length-bucketed batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


class EncodedDataset(Dataset):
    """Token ids and class ids of one split, tokenised once."""

    def __init__(self, ids: Sequence[Sequence[int]], labels: Sequence[int]) -> None:
        if len(ids) != len(labels):
            raise ValueError("ids and labels differ in length")
        self.ids = [list(sequence) for sequence in ids]
        self.labels = list(labels)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[int, list[int], int]:
        return index, self.ids[index], self.labels[index]

    @property
    def lengths(self) -> list[int]:
        """Token count of every example."""
        return [len(sequence) for sequence in self.ids]


class PadCollator:
    """Pads a list of examples to the longest one in the batch (right padding)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, examples: Sequence[tuple[int, list[int], int]]) -> dict[str, torch.Tensor]:
        longest = max(len(ids) for _, ids, _ in examples)
        input_ids = torch.full((len(examples), longest), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(examples), longest), dtype=torch.long)
        for row, (_, ids, _) in enumerate(examples):
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, : len(ids)] = 1
        return {
            "index": torch.tensor([index for index, _, _ in examples], dtype=torch.long),
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": torch.tensor([label for _, _, label in examples], dtype=torch.long),
        }


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length, in random order.

    Each epoch shuffles all indices, cuts them into pools of ``pool_batches``
    batches, sorts each pool by length, batches it, and shuffles the batches:
    training stays random while padding shrinks. ``shuffle=False`` sorts the whole
    split by length (for evaluation).
    """

    def __init__(
        self, lengths: Sequence[int], batch_size: int, *, shuffle: bool, seed: int, pool_batches: int = 50
    ) -> None:
        super().__init__()
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool_batches = pool_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffle :meth:`__iter__` yields."""
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            yield from (order[i : i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size))
            return
        rng = np.random.default_rng((self.seed, self.epoch))
        self.epoch += 1
        permutation = rng.permutation(len(self.lengths))
        pool_size = self.batch_size * self.pool_batches
        batches: list[list[int]] = []
        for start in range(0, len(permutation), pool_size):
            pool = permutation[start : start + pool_size]
            pool = pool[np.argsort(self.lengths[pool], kind="stable")]
            batches.extend(pool[i : i + self.batch_size].tolist() for i in range(0, len(pool), self.batch_size))
        for position in rng.permutation(len(batches)):
            yield batches[position]
