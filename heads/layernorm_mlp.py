"""``layernorm-mlp``: LayerNorm on the sentence vector, then a wide MLP (the published setup)."""

from __future__ import annotations

import torch
from torch import nn

from bench.search_space import Param
from encoders.base import EncoderOutput
from heads import Head, Hyperparameter, dropout, register_head

ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU}


@register_head("layernorm-mlp")
class LayerNormMLPHead(Head):
    """Dropout → LayerNorm(h) → Linear(h, m) → activation → Linear(m, labels)."""

    description = "Dropout, LayerNorm on the sentence vector, Linear(h, hidden_dim), activation, Linear."
    hyperparameters = (
        dropout(),
        Hyperparameter("hidden_dim", 512, "Width of the hidden layer.", low=1, search=Param.choice(256, 512, 1024)),
        Hyperparameter("activation", "gelu", "Activation after the hidden layer.", choices=tuple(ACTIVATIONS)),
    )

    def __init__(self, *, hidden_size: int, num_labels: int, dropout: float, hidden_dim: int, activation: str) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Dropout(dropout),
            nn.LayerNorm(hidden_size),
            nn.Linear(hidden_size, hidden_dim),
            ACTIVATIONS[activation](),
            nn.Linear(hidden_dim, num_labels),
        )

    def forward(self, features: EncoderOutput) -> torch.Tensor:
        """Logits ``(batch, num_labels)``."""
        return self.layers(features.sentence_vector)
