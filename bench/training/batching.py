"""Datasets of token ids and length-bucketed, sharded batches (padding: :mod:`bench.model.padding`)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Dataset, Sampler

from bench.model.padding import TokenExample, label_array
from bench.training.tokencache import TokenArrays


class EncodedDataset(Dataset):
    """Token ids and labels (class ids, or multi-label 0/1 rows) of one split, tokenised once."""

    def __init__(self, tokens: TokenArrays, labels: Sequence[int] | np.ndarray) -> None:
        if len(tokens) != len(labels):
            raise ValueError("ids and labels differ in length")
        self.tokens = tokens
        self.labels = label_array(labels)

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, index: int) -> TokenExample:
        return index, self.tokens.sequence(index), self.labels[index]

    @property
    def lengths(self) -> np.ndarray:
        """Token count of every example."""
        return self.tokens.lengths


def eval_batches(
    lengths: Sequence[int] | np.ndarray, batch_size: int, *, by_length: bool, rank: int = 0, world: int = 1
) -> list[list[int]]:
    """Evaluation batches of rank ``rank`` of ``world``: every ``world``-th example, in length order if ``by_length``.

    Sharding by example (not by batch) gives every rank examples whenever the split
    has at least ``world`` of them, and no example twice.
    """
    indices = np.arange(len(lengths))[rank::world]
    if by_length:
        indices = indices[np.argsort(np.asarray(lengths)[indices], kind="stable")]
    return [indices[i : i + batch_size].tolist() for i in range(0, len(indices), batch_size)]


def shard(batches: Sequence[list[int]], rank: int, world: int) -> list[list[int]]:
    """Rank ``rank``'s part of every batch: its every ``world``-th example.

    Together the ranks' i-th parts make the i-th batch, so data-parallel training
    steps through the same global batches as one process. In a batch with fewer
    than ``world`` examples (at most the last) ranks share examples, as no part may be empty.
    """
    return [batch[rank::world] or [batch[rank % len(batch)]] for batch in batches]


class ShardedBatchSampler(Sampler[list[int]]):
    """Rank ``rank``'s part (:func:`shard`) of the global batches of ``batches``, which every rank draws identically."""

    def __init__(self, batches: Sampler[list[int]], rank: int, world: int) -> None:
        super().__init__()
        self.batches = batches
        self.rank = rank
        self.world = world

    def set_epoch(self, epoch: int) -> None:
        """Passed on to the wrapped sampler."""
        if hasattr(self.batches, "set_epoch"):
            self.batches.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        # Exactly len() batches, as a single-process loader takes them: exhausting the wrapped sampler
        # could draw from its random generator once more (torch's RandomSampler does).
        yield from shard(list(itertools.islice(self.batches, len(self.batches))), self.rank, self.world)


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length, in random order.

    Each epoch shuffles all indices, cuts them into pools of ``pool_batches``
    batches, sorts each pool by length, batches it, and shuffles the batches:
    training stays random while padding shrinks.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, *, seed: int, pool_batches: int = 50) -> None:
        super().__init__()
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.pool_batches = pool_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffle :meth:`__iter__` yields."""
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
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
