"""``mlp``: a two-layer perceptron with LeakyReLU on the sentence vector."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from encoders.base import EncoderOutput
from heads.base import Head
from heads.registry import register_head


@register_head("mlp")
class MLPHead(Head):
    """Dropout → Linear(h, m) → LeakyReLU(0.1) → dropout → Linear(m, labels).

    The non-linearity matters: two stacked linear layers collapse into one
    affine map (training without it stalled with the loss near 1).
    """

    defaults = {"dropout": 0.1, "hidden_dim": 256}
    description = "Dropout, Linear(h, hidden_dim), LeakyReLU(0.1), dropout, Linear on the sentence vector."

    def __init__(self, hidden_size: int, num_labels: int, dropout: float, hidden_dim: int) -> None:
        super().__init__()
        self.check(0 <= dropout < 1, "dropout", "in [0, 1)", dropout)
        self.check(hidden_dim >= 1, "hidden_dim", "at least 1", hidden_dim)
        self.layers = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(hidden_size, hidden_dim),
            nn.LeakyReLU(0.1),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, num_labels),
        )

    def forward(self, features: EncoderOutput) -> torch.Tensor:
        """Logits ``(batch, num_labels)``."""
        return self.layers(features.sentence_vector)

    @classmethod
    def suggest(cls, trial: Any) -> dict[str, Any]:
        """Dropout in [0, 0.5]; hidden width 128, 256 or 512."""
        return {
            "dropout": trial.suggest_float(cls.trial_param("dropout"), 0.0, 0.5),
            "hidden_dim": trial.suggest_categorical(cls.trial_param("hidden_dim"), [128, 256, 512]),
        }
