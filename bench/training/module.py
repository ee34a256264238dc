"""LightningModule: an encoder and a head trained end to end."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from bench.model.classifier import FEATURE_DTYPE, SavedClassifier
from bench.tasks import SINGLE_LABEL, Task
from bench.training.collectives import gather_objects
from bench.training.errors import NonFiniteLossError
from bench.training.finetuning import optimizer_groups
from encoders.base import EncoderOutput, TextEncoder
from heads.base import Head

MULTI_TENSOR_DEVICES = frozenset({"cpu", "cuda"})  # where AdamW's fused and foreach kernels run


class EmotionClassifier(L.LightningModule):
    """The saved classifier (:class:`SavedClassifier`: encoder + head) trained with AdamW (fused or
    multi-tensor) over every trainable parameter, warmup then linear decay.

    ``task`` (:mod:`bench.tasks`) gives the loss, the probabilities, the decision and
    the validation thresholds. A frozen encoder runs in eval mode and its outputs are
    rounded to the feature cache's float16 (:data:`FEATURE_DTYPE`) by the classifier
    itself, so batches that carry cached ``token_states`` skip the encoder and give the
    same logits, and the saved model predicts what was tested. ``compile_encoder``
    compiles the encoder's forward with ``torch.compile`` (dynamic shapes).
    """

    classifier: SavedClassifier

    def __init__(
        self,
        encoder: TextEncoder,
        head: Head,
        *,
        num_labels: int,
        lr: float,
        head_lr: float | None = None,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        layer_lr_decay: float = 1.0,
        class_weights: torch.Tensor | None = None,
        freeze_encoder: bool = False,
        compile_encoder: bool = False,
        task: Task = SINGLE_LABEL,
        per_label_threshold: bool = False,
    ) -> None:
        super().__init__()
        classifier = SavedClassifier(encoder, head, feature_dtype=FEATURE_DTYPE if freeze_encoder else None)
        # The classifier's encoder and head are this module's children, so the state keys are the saved
        # model's own (``encoder.*``, ``head.*``); the classifier itself is kept beside them, not registered twice.
        self.encoder = classifier.encoder
        self.head = classifier.head
        self.__dict__["classifier"] = classifier
        self.num_labels = num_labels
        self.lr = lr
        self.head_lr = head_lr if head_lr is not None else lr
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.layer_lr_decay = layer_lr_decay
        self.freeze_encoder = freeze_encoder
        self.task = task
        self.per_label_threshold = per_label_threshold
        self.loss_fn: nn.Module = task.loss(class_weights)
        self._plain_loss = task.loss()  # the validation loss, unweighted
        # The decision thresholds tuned on each validation are a buffer, so the best epoch's weights carry theirs.
        self.register_buffer("thresholds", torch.full((num_labels,), 0.5) if task.uses_thresholds else None)
        if freeze_encoder:
            self.encoder.requires_grad_(False)
        if compile_encoder:
            self.encoder.compile(dynamic=True)
        self.history: list[dict[str, float]] = []
        self._train_losses: list[float] = []
        self._eval_outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.test_probabilities: np.ndarray | None = None
        self.test_indices: np.ndarray | None = None

    def setup(self, stage: str) -> None:
        """TF32 matrix multiplications on CUDA (fp32 matmuls outside autocast on tensor cores)."""
        if self.trainer.strategy.root_device.type == "cuda":
            torch.set_float32_matmul_precision("high")

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Class logits for a padded batch."""
        if self.freeze_encoder:
            self.encoder.eval()
        return self.classifier(input_ids, attention_mask)

    def batch_logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits of a batch of token ids, or of cached encoder outputs (``token_states``) for a frozen encoder."""
        if "token_states" not in batch:
            return self(batch["input_ids"], batch["attention_mask"])
        features = EncoderOutput(
            batch["token_states"].float(), batch["attention_mask"].bool(), batch["sentence_vector"].float()
        )
        return self.head(features)

    def training_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> torch.Tensor:
        logits = self.batch_logits(batch)
        loss = self.loss_fn(logits.float(), batch["labels"])
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"training loss became {loss.item()} at epoch {self.current_epoch}, step {self.global_step}"
            )
        self._train_losses.append(loss.detach().item())
        self.log("train_loss", loss, prog_bar=True, logger=False, batch_size=batch["labels"].shape[0])
        return loss

    def on_fit_start(self) -> None:
        """Training mode for what trains (dropout on): Lightning keeps each module's mode, and ``from_pretrained``
        leaves a loaded encoder in eval mode. A frozen encoder stays in eval mode."""
        self.train()
        if self.freeze_encoder:
            self.encoder.eval()

    def on_train_epoch_start(self) -> None:
        self._train_losses = []

    def validation_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> None:
        self._collect(batch)

    def test_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> None:
        self._collect(batch)

    def _collect(self, batch: dict[str, torch.Tensor]) -> None:
        logits = self.batch_logits(batch).float()
        self._eval_outputs.append((batch["index"].cpu(), logits.cpu(), batch["labels"].cpu()))

    def _gather(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Index, logits and label of every evaluated example, of all ranks, in index order."""
        outputs = [item for rank_outputs in gather_objects(self._eval_outputs) for item in rank_outputs]
        self._eval_outputs = []
        indices = torch.cat([item[0] for item in outputs])
        logits = torch.cat([item[1] for item in outputs])
        labels = torch.cat([item[2] for item in outputs])
        order = torch.argsort(indices)
        return indices[order].numpy(), logits[order], labels[order]

    def _validation_scores(self, logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float, float]:
        """Loss, macro-F1 and accuracy of the validation split, at the decision thresholds the task tunes on it
        (multi-label: exact match as the accuracy)."""
        probabilities, gold = self.task.probabilities(logits.numpy()), labels.numpy()
        thresholds = self.task.tune_thresholds(gold, probabilities, self.per_label_threshold)
        if self.thresholds is not None and thresholds is not None:
            self.thresholds.copy_(torch.as_tensor(thresholds, dtype=self.thresholds.dtype))
        scores = self.task.evaluate(gold, probabilities, thresholds, [str(index) for index in range(self.num_labels)])
        return self._plain_loss(logits, labels).item(), scores.macro_f1, scores.accuracy

    def on_validation_epoch_end(self) -> None:
        # Every rank scores the predictions of all ranks, so the logged values agree without sync_dist.
        _, logits, labels = self._gather()
        loss, macro_f1, accuracy = self._validation_scores(logits, labels)
        self.log_dict(
            {"val_macro_f1": macro_f1, "val_accuracy": accuracy, "val_loss": loss}, prog_bar=True, logger=False
        )
        if self.trainer.sanity_checking:
            return
        train_losses = [loss for rank_losses in gather_objects(self._train_losses) for loss in rank_losses]
        self.history.append(
            {
                "epoch": float(self.current_epoch),
                "train_loss": float(np.mean(train_losses)) if train_losses else float("nan"),
                "val_loss": loss,
                "val_macro_f1": macro_f1,
                "val_accuracy": accuracy,
            }
        )

    def on_test_epoch_end(self) -> None:
        indices, logits, _ = self._gather()
        self.test_indices = indices
        self.test_probabilities = self.task.probabilities(logits.numpy())

    def parameter_groups(self) -> list[dict[str, Any]]:
        """AdamW groups (:func:`~bench.training.finetuning.optimizer_groups`): encoder layers and head."""
        return optimizer_groups(
            self.encoder,
            self.head,
            lr=self.lr,
            head_lr=self.head_lr,
            weight_decay=self.weight_decay,
            layer_lr_decay=self.layer_lr_decay,
        )

    def configure_optimizers(self) -> dict[str, Any]:
        groups = self.parameter_groups()
        optimizer = torch.optim.AdamW(groups, **adamw_kernel(groups, self.trainer))
        total_steps = max(1, int(self.trainer.estimated_stepping_batches))
        warmup_steps = int(self.warmup_ratio * total_steps)
        scheduler = LambdaLR(optimizer, linear_warmup_decay(warmup_steps, total_steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def adamw_kernel(groups: list[dict[str, Any]], trainer: L.Trainer) -> dict[str, bool]:
    """``fused`` or ``foreach`` for AdamW: torch's default on CPU is a Python loop over the tensors.

    The fused kernel (CPU and CUDA) updates every tensor in one call; under Lightning's
    mixed precision it cannot be combined with gradient clipping, so there the
    multi-tensor (``foreach``) kernel is used.
    """
    parameters = [parameter for group in groups for parameter in group["params"]]
    if not all(parameter.device.type in MULTI_TENSOR_DEVICES for parameter in parameters):
        return {}
    if str(trainer.precision).endswith("-mixed") and trainer.gradient_clip_val:
        return {"foreach": True}
    return {"fused": True}


def linear_warmup_decay(warmup_steps: int, total_steps: int):
    """LR multiplier: 0 → 1 over ``warmup_steps``, then linearly → 0 at ``total_steps``."""

    def multiplier(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return multiplier
