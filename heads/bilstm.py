"""``bilstm``: a bidirectional LSTM over the token states, on packed sequences."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from encoders.base import EncoderOutput
from heads.base import Head
from heads.pooling import lengths_from_mask, masked_max, masked_mean
from heads.registry import register_head

POOLINGS = ("last", "mean", "max")


@register_head("bilstm")
class BiLSTMHead(Head):
    """Bi-LSTM over packed token states → pooling → dropout → Linear.

    ``pooling`` is ``last`` (final forward and backward hidden states), ``mean``
    or ``max`` (over real tokens). Packing keeps padding out of the LSTM.
    """

    defaults = {"dropout": 0.1, "lstm_hidden": 128, "lstm_layers": 1, "pooling": "last"}
    choices = {"pooling": POOLINGS}
    description = "Bi-LSTM over packed token states; last hidden states, masked mean or masked max; Linear."

    def __init__(
        self,
        hidden_size: int,
        num_labels: int,
        dropout: float,
        lstm_hidden: int,
        lstm_layers: int,
        pooling: str,
    ) -> None:
        super().__init__()
        self.check(0 <= dropout < 1, "dropout", "in [0, 1)", dropout)
        self.check(lstm_hidden >= 1, "lstm_hidden", "at least 1", lstm_hidden)
        self.check(lstm_layers >= 1, "lstm_layers", "at least 1", lstm_layers)
        self.check(pooling in POOLINGS, "pooling", f"one of {', '.join(POOLINGS)}", pooling)
        self.pooling = pooling
        self.lstm = nn.LSTM(hidden_size, lstm_hidden, num_layers=lstm_layers, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * lstm_hidden, num_labels)

    def forward(self, features: EncoderOutput) -> torch.Tensor:
        """Logits ``(batch, num_labels)``; every row needs at least one real token."""
        lengths = lengths_from_mask(features.attention_mask)
        states = features.token_states
        packed = pack_padded_sequence(states, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, (final_hidden, _) = self.lstm(packed)
        if self.pooling == "last":
            pooled = torch.cat([final_hidden[-2], final_hidden[-1]], dim=1)
        else:
            padded, _ = pad_packed_sequence(outputs, batch_first=True, total_length=states.size(1))
            pool = masked_mean if self.pooling == "mean" else masked_max
            pooled = pool(padded, features.attention_mask)
        return self.classifier(self.dropout(pooled))

    @classmethod
    def suggest(cls, trial: Any) -> dict[str, Any]:
        """Dropout in [0, 0.5]; 64, 128 or 256 hidden units; 1 or 2 layers; a pooling."""
        return {
            "dropout": trial.suggest_float(cls.trial_param("dropout"), 0.0, 0.5),
            "lstm_hidden": trial.suggest_categorical(cls.trial_param("lstm_hidden"), [64, 128, 256]),
            "lstm_layers": trial.suggest_int(cls.trial_param("lstm_layers"), 1, 2),
            "pooling": trial.suggest_categorical(cls.trial_param("pooling"), list(POOLINGS)),
        }
