"""``cnn``: TextCNN (Kim, 2014) over the token states."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.search_space import Param
from encoders.base import EncoderOutput
from heads import Head, Hyperparameter, dropout, register_head
from heads.pooling import lengths_from_mask, mask_from_lengths, masked_max, zero_padding

KERNEL_SIZE_SETS = ("2,3,4", "3,4,5", "1,2,3", "2,3,4,5")


def parse_kernel_sizes(text: str) -> tuple[int, ...]:
    """``"2,3,4"`` as ``(2, 3, 4)``; empty when the text is not comma-separated positive integers."""
    parts = [part.strip() for part in str(text).split(",")]
    if not all(part.isdecimal() and int(part) >= 1 for part in parts):
        return ()
    return tuple(int(part) for part in parts)


@register_head("cnn")
class TextCNNHead(Head):
    """Convolutions of several widths → ReLU → max over time → dropout → Linear.

    ``kernel_sizes`` is text such as ``"2,3,4"``. Only windows inside a sentence
    count; a sentence shorter than a kernel gets one window padded with zeros,
    so the logits never depend on how much padding the batch adds.
    """

    description = "TextCNN over token states: one Conv1d per kernel size, ReLU, masked max over time, Linear."
    hyperparameters = (
        dropout(),
        Hyperparameter("num_filters", 64, "Filters per kernel size.", low=1, search=Param.choice(32, 64, 128)),
        Hyperparameter(
            "kernel_sizes",
            "2,3,4",
            "Convolution widths, comma-separated.",
            rule=lambda text: bool(parse_kernel_sizes(text)),
            rule_text="comma-separated positive integers like '2,3,4'",
            search=Param.choice(*KERNEL_SIZE_SETS),
        ),
    )

    def __init__(
        self, *, hidden_size: int, num_labels: int, dropout: float, num_filters: int, kernel_sizes: str
    ) -> None:
        super().__init__()
        self.kernel_sizes = parse_kernel_sizes(kernel_sizes)
        self.convs = nn.ModuleList(nn.Conv1d(hidden_size, num_filters, width) for width in self.kernel_sizes)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(num_filters * len(self.kernel_sizes), num_labels)

    def forward(self, features: EncoderOutput) -> torch.Tensor:
        """Logits ``(batch, num_labels)``."""
        lengths = lengths_from_mask(features.attention_mask)
        states = zero_padding(features.token_states, features.attention_mask)
        missing = max(self.kernel_sizes) - states.size(1)
        if torch.onnx.is_in_onnx_export():
            # A traced graph cannot branch on the length: pad every batch for the widest kernel (the windows past
            # a text are masked below, so the logits are the same).
            states = F.pad(states, (0, 0, 0, max(self.kernel_sizes) - 1))
        elif missing > 0:
            states = F.pad(states, (0, 0, 0, missing))
        channels_first = states.transpose(1, 2)
        pooled = []
        for width, conv in zip(self.kernel_sizes, self.convs):
            activations = F.relu(conv(channels_first)).transpose(1, 2)
            windows = mask_from_lengths((lengths - width + 1).clamp(min=1), activations.size(1))
            pooled.append(masked_max(activations, windows))
        return self.classifier(self.dropout(torch.cat(pooled, dim=1)))
