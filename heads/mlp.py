"""``mlp``: a two-layer perceptron with LeakyReLU on the sentence vector."""

from __future__ import annotations

import torch
from torch import nn

from bench.search_space import Param
from encoders.base import EncoderOutput
from heads import Head, Hyperparameter, dropout, register_head


@register_head("mlp")
class MLPHead(Head):
    """Dropout → Linear(h, m) → LeakyReLU(0.1) → dropout → Linear(m, labels).

    The non-linearity matters: two stacked linear layers collapse into one
    affine map (training without it stalled with the loss near 1).
    """

    description = "Dropout, Linear(h, hidden_dim), LeakyReLU(0.1), dropout, Linear on the sentence vector."
    hyperparameters = (
        dropout(),
        Hyperparameter("hidden_dim", 256, "Width of the hidden layer.", low=1, search=Param.choice(128, 256, 512)),
    )

    def __init__(self, *, hidden_size: int, num_labels: int, dropout: float, hidden_dim: int) -> None:
        super().__init__()
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
