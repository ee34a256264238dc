"""LightningModule: an encoder and a head trained end to end."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from bench.training.metrics import classification_scores
from encoders.base import TextEncoder
from heads.base import Head


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class EmotionClassifier(L.LightningModule):
    """Encoder + head, AdamW over every trainable parameter, warmup then linear decay."""

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
        class_weights: torch.Tensor | None = None,
        freeze_encoder: bool = False,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.num_labels = num_labels
        self.lr = lr
        self.head_lr = head_lr if head_lr is not None else lr
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.freeze_encoder = freeze_encoder
        self.loss_fn = nn.CrossEntropyLoss(weight=class_weights)
        if freeze_encoder:
            self.encoder.requires_grad_(False)
        self.history: list[dict[str, float]] = []
        self._train_losses: list[float] = []
        self._eval_outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.test_probabilities: np.ndarray | None = None
        self.test_indices: np.ndarray | None = None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Class logits for a padded batch."""
        if self.freeze_encoder:
            self.encoder.eval()
        return self.head(self.encoder(input_ids, attention_mask))

    def training_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> torch.Tensor:
        logits = self(batch["input_ids"], batch["attention_mask"])
        loss = self.loss_fn(logits.float(), batch["labels"])
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"training loss became {loss.item()} at epoch {self.current_epoch}, step {self.global_step}")
        self._train_losses.append(loss.detach().item())
        self.log("train_loss", loss, prog_bar=True, batch_size=batch["labels"].shape[0])
        return loss

    def on_train_epoch_start(self) -> None:
        self._train_losses = []

    def validation_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> None:
        self._collect(batch)

    def test_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> None:
        self._collect(batch)

    def _collect(self, batch: dict[str, torch.Tensor]) -> None:
        logits = self(batch["input_ids"], batch["attention_mask"]).float()
        self._eval_outputs.append((batch["index"].cpu(), logits.cpu(), batch["labels"].cpu()))

    def _gather(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        indices = torch.cat([item[0] for item in self._eval_outputs])
        logits = torch.cat([item[1] for item in self._eval_outputs])
        labels = torch.cat([item[2] for item in self._eval_outputs])
        self._eval_outputs = []
        order = torch.argsort(indices)
        return indices[order].numpy(), logits[order], labels[order]

    def on_validation_epoch_end(self) -> None:
        _, logits, labels = self._gather()
        loss = nn.functional.cross_entropy(logits, labels).item()
        scores = classification_scores(labels.numpy(), logits.argmax(dim=1).numpy(), self.num_labels)
        self.log_dict({"val_macro_f1": scores.macro_f1, "val_accuracy": scores.accuracy, "val_loss": loss}, prog_bar=True)
        if self.trainer.sanity_checking:
            return
        self.history.append(
            {
                "epoch": float(self.current_epoch),
                "train_loss": float(np.mean(self._train_losses)) if self._train_losses else float("nan"),
                "val_loss": loss,
                "val_macro_f1": scores.macro_f1,
                "val_accuracy": scores.accuracy,
            }
        )

    def on_test_epoch_end(self) -> None:
        indices, logits, _ = self._gather()
        self.test_indices = indices
        self.test_probabilities = torch.softmax(logits, dim=1).numpy()

    def parameter_groups(self) -> list[dict[str, Any]]:
        """AdamW groups: encoder and head each with and without weight decay (none on biases and norms)."""
        groups: list[dict[str, Any]] = []
        for module, lr in ((self.encoder, self.lr), (self.head, self.head_lr)):
            decay, no_decay = [], []
            for name, parameter in module.named_parameters():
                if not parameter.requires_grad:
                    continue
                (no_decay if parameter.ndim < 2 or "norm" in name.lower() else decay).append(parameter)
            groups += [
                {"params": decay, "lr": lr, "weight_decay": self.weight_decay},
                {"params": no_decay, "lr": lr, "weight_decay": 0.0},
            ]
        return [group for group in groups if group["params"]]

    def configure_optimizers(self) -> dict[str, Any]:
        fused = torch.cuda.is_available() and all(
            parameter.is_cuda for group in self.parameter_groups() for parameter in group["params"]
        )
        optimizer = torch.optim.AdamW(self.parameter_groups(), fused=fused or None)
        total_steps = max(1, int(self.trainer.estimated_stepping_batches))
        warmup_steps = int(self.warmup_ratio * total_steps)
        scheduler = LambdaLR(optimizer, linear_warmup_decay(warmup_steps, total_steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def linear_warmup_decay(warmup_steps: int, total_steps: int):
    """LR multiplier: 0 → 1 over ``warmup_steps``, then linearly → 0 at ``total_steps``."""

    def multiplier(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return multiplier
