"""Callbacks for model selection and timing."""

from __future__ import annotations

import math
import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.trainer.states import RunningStage

from bench.training.collectives import gather_objects


class BestWeights(L.Callback):
    """Keeps a CPU copy of the weights of the epoch with the best validation macro-F1."""

    def __init__(self, monitor: str = "val_macro_f1") -> None:
        self.monitor = monitor
        self.best_score = -math.inf
        self.best_epoch: int | None = None
        self.state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        score = float(trainer.callback_metrics[self.monitor])
        if score > self.best_score:
            self.best_score = score
            self.best_epoch = trainer.current_epoch
            self.state = {name: tensor.detach().to("cpu", copy=True) for name, tensor in module.state_dict().items()}


class FailureStage(L.Callback):
    """Remembers whether the exception that ended a fit or test came while evaluating."""

    def __init__(self) -> None:
        self.evaluating = False

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> None:
        self.evaluating = trainer.state.stage in (RunningStage.VALIDATING, RunningStage.TESTING)


class TrainingTimer(L.Callback):
    """Measures time spent in training batches and the samples they held (on all ranks together).

    Also when the first training step ended (``first_step_end``, a ``perf_counter``
    time) and the time spent validating.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self.samples = 0
        self.first_step_end: float | None = None
        self.validation_seconds = 0.0
        self._started = 0.0
        self._validation_started = 0.0

    def on_validation_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._validation_started = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.validation_seconds += time.perf_counter() - self._validation_started

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Any, batch_index: int) -> None:
        _synchronize()
        self._started = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any, batch_index: int
    ) -> None:
        _synchronize()
        ended = time.perf_counter()
        self.seconds += ended - self._started
        if self.first_step_end is None:
            self.first_step_end = ended
        self.samples += int(batch["labels"].shape[0])

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.samples = sum(gather_objects(self.samples))

    @property
    def samples_per_second(self) -> float:
        """Training throughput."""
        return self.samples / self.seconds if self.seconds else 0.0


def _synchronize() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
