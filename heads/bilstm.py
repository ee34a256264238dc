"""``bilstm``: a bidirectional LSTM over the token states, on packed sequences."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from bench.search_space import Param
from encoders.base import EncoderOutput
from heads import Head, Hyperparameter, dropout, register_head
from heads.pooling import lengths_from_mask, masked_max, masked_mean

POOLINGS = ("last", "mean", "max")


@register_head("bilstm")
class BiLSTMHead(Head):
    """Bi-LSTM over packed token states → pooling → dropout → Linear.

    ``pooling`` is ``last`` (final forward and backward hidden states), ``mean``
    or ``max`` (over real tokens). Packing keeps padding out of the LSTM.
    """

    description = "Bi-LSTM over packed token states; last hidden states, masked mean or masked max; Linear."
    hyperparameters = (
        dropout(),
        Hyperparameter("lstm_hidden", 128, "LSTM units per direction.", low=1, search=Param.choice(64, 128, 256)),
        Hyperparameter("lstm_layers", 1, "Stacked LSTM layers.", low=1, search=Param.integer(1, 2)),
        Hyperparameter("pooling", "last", "How token states become one vector.", choices=POOLINGS),
    )

    def __init__(
        self, *, hidden_size: int, num_labels: int, dropout: float, lstm_hidden: int, lstm_layers: int, pooling: str
    ) -> None:
        super().__init__()
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
        if self.pooling == "last" and not torch.onnx.is_in_onnx_export():
            pooled = torch.cat([final_hidden[-2], final_hidden[-1]], dim=1)
        elif self.pooling == "last":
            # torch.onnx cannot export a packed LSTM whose outputs go unused; the same final states, read from them.
            padded, _ = pad_packed_sequence(outputs, batch_first=True, total_length=states.size(1))
            pooled = final_states(padded, lengths)
        else:
            padded, _ = pad_packed_sequence(outputs, batch_first=True, total_length=states.size(1))
            pool = masked_mean if self.pooling == "mean" else masked_max
            pooled = pool(padded, features.attention_mask)
        return self.classifier(self.dropout(pooled))


def final_states(outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The top layer's final forward (last real token) and backward (first token) states of padded Bi-LSTM outputs."""
    width = outputs.size(2) // 2
    last = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, width)
    forward = outputs[:, :, :width].gather(1, last).squeeze(1)
    return torch.cat([forward, outputs[:, 0, width:]], dim=1)
