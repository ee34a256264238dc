"""What both predictors (PyTorch and ONNX Runtime) give and share: per-text predictions, batching (no torch).

Which labels a row of probabilities predicts is the task's (:meth:`bench.tasks.Task.text_predictions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_BATCH_SIZE = 64


@dataclass
class TextPrediction:
    """The predicted label of one text and the probability of every label.

    For a multi-label model ``labels`` maps every label over its threshold to
    its probability (most probable first) and ``label`` joins their names with
    ``,`` (empty when no label passes).
    """

    text: str
    label: str
    probabilities: dict[str, float]
    labels: dict[str, float] | None = None

    @property
    def confidence(self) -> float:
        """Probability of the predicted label (multi-label: of the most probable label over its threshold)."""
        if self.labels is not None:
            return max(self.labels.values(), default=0.0)
        return self.probabilities[self.label]


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (less padding); every index exactly once."""
    order = sorted(range(len(lengths)), key=lambda index: lengths[index])
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
