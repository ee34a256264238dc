"""The classifier as trained and as served: logits = head(encoder(ids, mask)), one forward pass for both.

Training (:class:`bench.training.module.EmotionClassifier`) wraps it; prediction
(:class:`bench.inference.predictor.Predictor`) and ONNX export load it from a run's
folder. A frozen encoder's outputs are rounded to :data:`FEATURE_DTYPE`, the dtype
of the feature cache (:mod:`bench.training.features`), in both, so a run's stored
test scores are what its saved model predicts.
"""

from __future__ import annotations

import torch
from torch import nn

from encoders.base import EncoderOutput, TextEncoder
from heads.base import Head

FEATURE_DTYPE = torch.float16  # the feature cache's dtype: a frozen encoder's outputs as the head sees them
FEATURE_DTYPES = {"float16": torch.float16}


class SavedClassifier(nn.Module):
    """Encoder and head; state keys ``encoder.*`` and ``head.*``.

    ``feature_dtype`` (a frozen encoder's runs: :data:`FEATURE_DTYPE`) rounds the
    encoder's outputs to that dtype and back before the head sees them.
    """

    def __init__(self, encoder: TextEncoder, head: Head, *, feature_dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.feature_dtype = feature_dtype

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Class logits for a right-padded batch."""
        return self.head(self.features(self.encoder(input_ids, attention_mask)))

    def features(self, output: EncoderOutput) -> EncoderOutput:
        """The encoder's output as the head sees it (rounded to ``feature_dtype`` when one is set)."""
        if self.feature_dtype is None:
            return output
        return EncoderOutput(
            _rounded(output.token_states, self.feature_dtype),
            output.attention_mask,
            _rounded(output.sentence_vector, self.feature_dtype),
        )


def feature_dtype_named(name: str) -> torch.dtype | None:
    """The dtype a model card's ``feature_dtype`` names; ``None`` for ``""`` (outputs used as they are)."""
    return FEATURE_DTYPES[name] if name else None


def feature_dtype_name(dtype: torch.dtype | None) -> str:
    """A model card's ``feature_dtype`` for ``dtype`` (``""`` for none)."""
    return "" if dtype is None else str(dtype).removeprefix("torch.")


def _rounded(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``tensor`` rounded to ``dtype`` and back to its own dtype."""
    return tensor.to(dtype).to(tensor.dtype)
