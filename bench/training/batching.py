"""Dynamic padding and length-bucketed batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from bench.training.tokencache import TokenArrays

# (index in the split, token ids, class id)
TokenExample = tuple[int, Sequence[int] | np.ndarray, int]


class EncodedDataset(Dataset):
    """Token ids and class ids of one split, tokenised once."""

    def __init__(self, tokens: TokenArrays, labels: Sequence[int]) -> None:
        if len(tokens) != len(labels):
            raise ValueError("ids and labels differ in length")
        self.tokens = tokens
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, index: int) -> TokenExample:
        return index, self.tokens.sequence(index), int(self.labels[index])

    @property
    def lengths(self) -> np.ndarray:
        """Token count of every example."""
        return self.tokens.lengths


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
            "labels": torch.tensor([label for _, _, label in examples], dtype=torch.long),
        }


def length_sorted_batches(lengths: Sequence[int] | np.ndarray, batch_size: int) -> list[list[int]]:
    """All indices sorted by length (stable), cut into batches: the evaluation order."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]


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
            yield from length_sorted_batches(self.lengths, self.batch_size)
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
