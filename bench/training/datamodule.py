"""LightningDataModule: tokenise each split once, pad per batch, bucket by length."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader

from bench.data.types import Example, SplitDataset
from bench.training.batching import BucketBatchSampler, EncodedDataset, PadCollator
from encoders.base import TextTokenizer

SPLITS = ("train", "validation", "test")


class EmotionDataModule(L.LightningDataModule):
    """Train, validation and test loaders over a :class:`SplitDataset`."""

    def __init__(
        self,
        dataset: SplitDataset,
        tokenizer: TextTokenizer,
        *,
        max_len: int,
        batch_size: int,
        seed: int,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        bucketing: bool = True,
    ) -> None:
        super().__init__()
        self.dataset = dataset
        self.tokenizer = tokenizer
        self.max_len = max_len
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or max(batch_size, 128)
        self.seed = seed
        self.num_workers = num_workers
        self.bucketing = bucketing
        self.label_ids = {label: index for index, label in enumerate(dataset.labels)}
        self.splits: dict[str, EncodedDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        """Tokenise every split with the tokenizer's batch path (once)."""
        if self.splits:
            return
        for name in SPLITS:
            examples: list[Example] = getattr(self.dataset, name)
            ids = self.tokenizer.encode_batch([example.text for example in examples], self.max_len)
            self.splits[name] = EncodedDataset(ids, [self.label_ids[example.label] for example in examples])

    def train_dataloader(self) -> DataLoader:
        split = self.splits["train"]
        if self.bucketing:
            sampler = BucketBatchSampler(split.lengths, self.batch_size, shuffle=True, seed=self.seed)
            return self._loader(split, batch_sampler=sampler)
        generator = torch.Generator().manual_seed(self.seed)
        return self._loader(split, batch_size=self.batch_size, shuffle=True, generator=generator)

    def val_dataloader(self) -> DataLoader:
        return self.eval_dataloader("validation")

    def test_dataloader(self) -> DataLoader:
        return self.eval_dataloader("test")

    def eval_dataloader(self, name: str, batch_size: int | None = None) -> DataLoader:
        """Loader over split ``name`` in length order (batches carry each example's ``index``)."""
        split = self.splits[name]
        size = batch_size or self.eval_batch_size
        if self.bucketing:
            sampler = BucketBatchSampler(split.lengths, size, shuffle=False, seed=self.seed)
            return self._loader(split, batch_sampler=sampler)
        return self._loader(split, batch_size=size, shuffle=False)

    def _loader(self, split: EncodedDataset, **kwargs: object) -> DataLoader:
        return DataLoader(
            split,
            collate_fn=PadCollator(self.tokenizer.pad_id),
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
            **kwargs,
        )
