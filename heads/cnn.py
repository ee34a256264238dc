"""``cnn``: TextCNN (Kim, 2014) over the token states."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from encoders.base import EncoderOutput
from heads.base import Head
from heads.pooling import lengths_from_mask, mask_from_lengths, masked_max, zero_padding
from heads.registry import register_head

KERNEL_SIZE_SETS = ("2,3,4", "3,4,5", "1,2,3", "2,3,4,5")


@register_head("cnn")
class TextCNNHead(Head):
    """Convolutions of several widths → ReLU → max over time → dropout → Linear.

    ``kernel_sizes`` is text such as ``"2,3,4"``. Only windows inside a sentence
    count; a sentence shorter than a kernel gets one window padded with zeros,
    so the logits never depend on how much padding the batch adds.
    """

    defaults = {"dropout": 0.1, "num_filters": 64, "kernel_sizes": "2,3,4"}
    description = "TextCNN over token states: one Conv1d per kernel size, ReLU, masked max over time, Linear."

    def __init__(
        self, hidden_size: int, num_labels: int, dropout: float, num_filters: int, kernel_sizes: str
    ) -> None:
        super().__init__()
        self.check(0 <= dropout < 1, "dropout", "in [0, 1)", dropout)
        self.check(num_filters >= 1, "num_filters", "at least 1", num_filters)
        self.kernel_sizes = parse_kernel_sizes(kernel_sizes)
        self.check(
            bool(self.kernel_sizes), "kernel_sizes", "comma-separated positive integers like '2,3,4'", kernel_sizes
        )
        self.convs = nn.ModuleList(nn.Conv1d(hidden_size, num_filters, width) for width in self.kernel_sizes)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(num_filters * len(self.kernel_sizes), num_labels)

    def forward(self, features: EncoderOutput) -> torch.Tensor:
        """Logits ``(batch, num_labels)``."""
        lengths = lengths_from_mask(features.attention_mask)
        states = zero_padding(features.token_states, features.attention_mask)
        missing = max(self.kernel_sizes) - states.size(1)
        if missing > 0:
            states = F.pad(states, (0, 0, 0, missing))
        channels_first = states.transpose(1, 2)
        pooled = []
        for width, conv in zip(self.kernel_sizes, self.convs):
            activations = F.relu(conv(channels_first)).transpose(1, 2)
            windows = mask_from_lengths((lengths - width + 1).clamp(min=1), activations.size(1))
            pooled.append(masked_max(activations, windows))
        return self.classifier(self.dropout(torch.cat(pooled, dim=1)))

    @classmethod
    def suggest(cls, trial: Any) -> dict[str, Any]:
        """Dropout in [0, 0.5]; 32, 64 or 128 filters per width; a kernel-size set."""
        return {
            "dropout": trial.suggest_float(cls.trial_param("dropout"), 0.0, 0.5),
            "num_filters": trial.suggest_categorical(cls.trial_param("num_filters"), [32, 64, 128]),
            "kernel_sizes": trial.suggest_categorical(cls.trial_param("kernel_sizes"), list(KERNEL_SIZE_SETS)),
        }


def parse_kernel_sizes(text: str) -> tuple[int, ...]:
    """``"2,3,4"`` as ``(2, 3, 4)``; empty when the text is not comma-separated positive integers."""
    parts = [part.strip() for part in str(text).split(",")]
    if not all(part.isdecimal() and int(part) >= 1 for part in parts):
        return ()
    return tuple(int(part) for part in parts)
