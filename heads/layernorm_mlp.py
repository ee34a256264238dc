"""``layernorm-mlp``: LayerNorm on the sentence vector, then a wide MLP (the published setup)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from encoders.base import EncoderOutput
from heads.base import Head
from heads.registry import register_head

ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU}


@register_head("layernorm-mlp")
class LayerNormMLPHead(Head):
    """Dropout → LayerNorm(h) → Linear(h, m) → activation → Linear(m, labels)."""

    defaults = {"dropout": 0.1, "hidden_dim": 512, "activation": "gelu"}
    choices = {"activation": tuple(ACTIVATIONS)}
    description = "Dropout, LayerNorm on the sentence vector, Linear(h, hidden_dim), activation, Linear."

    def __init__(self, hidden_size: int, num_labels: int, dropout: float, hidden_dim: int, activation: str) -> None:
        super().__init__()
        self.check(0 <= dropout < 1, "dropout", "in [0, 1)", dropout)
        self.check(hidden_dim >= 1, "hidden_dim", "at least 1", hidden_dim)
        self.check(activation in ACTIVATIONS, "activation", f"one of {', '.join(ACTIVATIONS)}", activation)
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

    @classmethod
    def suggest(cls, trial: Any) -> dict[str, Any]:
        """Dropout in [0, 0.5]; hidden width 256, 512 or 1024; activation."""
        return {
            "dropout": trial.suggest_float(cls.trial_param("dropout"), 0.0, 0.5),
            "hidden_dim": trial.suggest_categorical(cls.trial_param("hidden_dim"), [256, 512, 1024]),
            "activation": trial.suggest_categorical(cls.trial_param("activation"), list(ACTIVATIONS)),
        }
