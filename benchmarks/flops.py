"""Model FLOPs of a BERT-like encoder from its config, and the GPUs' dense bf16 peaks, for MFU.

Training FLOPs of one sequence of ``s`` computed (padded) tokens, forward and backward (3 × forward)::

    6 × N × s  +  12 × L × h × s²

``N`` is the parameters in matrix multiplications — per layer the query, key, value and output
projections (4h²) and the feed-forward pair (2 × h × intermediate), plus the embedding projection
when the embedding size differs from h (ELECTRA-small); embedding tables, biases and norms excluded;
the second term is attention's two score products (QKᵀ and scores × V, 2 × 2 × L × h × s² forward).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) by device-name fragment, most specific first.
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
)


@dataclass(frozen=True)
class EncoderShape:
    """The sizes the FLOPs formula needs."""

    layers: int
    hidden: int
    intermediate: int
    embedding: int

    @classmethod
    def from_config(cls, config: Any) -> EncoderShape:
        """From a transformers config (``embedding_size`` defaults to the hidden size)."""
        hidden = int(config.hidden_size)
        return cls(
            int(config.num_hidden_layers),
            hidden,
            int(config.intermediate_size),
            int(getattr(config, "embedding_size", None) or hidden),
        )

    @property
    def matmul_parameters(self) -> int:
        """N: parameters in matrix multiplications."""
        projection = self.embedding * self.hidden if self.embedding != self.hidden else 0
        return self.layers * (4 * self.hidden**2 + 2 * self.hidden * self.intermediate) + projection

    def training_flops(self, sequences: int, length: int) -> float:
        """FLOPs of one training step over ``sequences`` sequences padded to ``length`` tokens."""
        per_sequence = 6 * self.matmul_parameters * length + 12 * self.layers * self.hidden * length**2
        return float(sequences * per_sequence)


def peak_tflops(device_name: str | None, explicit: float | None = None) -> float | None:
    """Dense bf16 peak of a GPU: ``explicit``, else the table, else unknown."""
    if explicit is not None:
        return explicit
    if device_name is None:
        return None
    return next((peak for fragment, peak in PEAK_BF16_TFLOPS if fragment in device_name), None)
