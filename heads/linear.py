"""``linear``: dropout and one linear layer on the sentence vector."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from encoders.base import EncoderOutput
from heads.base import Head
from heads.registry import register_head


@register_head("linear")
class LinearHead(Head):
    """Dropout → Linear(hidden, labels) on ``features.sentence_vector``."""

    defaults = {"dropout": 0.1}
    description = "Dropout then one linear layer on the sentence vector (pooler output or [CLS])."

    def __init__(self, hidden_size: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.check(0 <= dropout < 1, "dropout", "in [0, 1)", dropout)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, features: EncoderOutput) -> torch.Tensor:
        """Logits ``(batch, num_labels)``."""
        return self.classifier(self.dropout(features.sentence_vector))

    @classmethod
    def suggest(cls, trial: Any) -> dict[str, Any]:
        """Dropout in [0, 0.5]."""
        return {"dropout": trial.suggest_float(cls.trial_param("dropout"), 0.0, 0.5)}
