"""``linear``: dropout and one linear layer on the sentence vector."""

from __future__ import annotations

import torch
from torch import nn

from encoders.base import EncoderOutput
from heads import Head, dropout, register_head


@register_head("linear")
class LinearHead(Head):
    """Dropout → Linear(hidden, labels) on ``features.sentence_vector``."""

    description = "Dropout then one linear layer on the sentence vector (pooler output or [CLS])."
    hyperparameters = (dropout(),)

    def __init__(self, *, hidden_size: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, features: EncoderOutput) -> torch.Tensor:
        """Logits ``(batch, num_labels)``."""
        return self.classifier(self.dropout(features.sentence_vector))
