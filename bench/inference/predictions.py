"""Predicted labels from class probabilities, shared by the PyTorch and the ONNX Runtime predictors (no torch)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

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


def text_predictions(
    texts: Sequence[str], labels: Sequence[str], rows: np.ndarray, thresholds: Sequence[float] | None = None
) -> list[TextPrediction]:
    """One :class:`TextPrediction` per text from its row of probabilities (columns in the order of ``labels``).

    With ``thresholds`` (a multi-label model) every label at or over its threshold is predicted.
    """
    predictions = []
    for text, row in zip(texts, rows, strict=True):
        probabilities = dict(zip(labels, map(float, row), strict=True))
        if thresholds is None:
            predictions.append(TextPrediction(text, labels[int(row.argmax())], probabilities))
            continue
        chosen = sorted(np.flatnonzero(row >= np.asarray(thresholds)).tolist(), key=lambda index: -row[index])
        over = {labels[index]: float(row[index]) for index in chosen}
        predictions.append(TextPrediction(text, ",".join(over), probabilities, over))
    return predictions


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (less padding); every index exactly once."""
    order = sorted(range(len(lengths)), key=lambda index: lengths[index])
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
