"""Classification scores with scikit-learn: macro-F1 is the headline, accuracy beside it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from bench.leaderboard.records import ClassScores


@dataclass
class Scores:
    """Macro-F1, accuracy, per-class precision/recall/F1/support and the confusion matrix."""

    macro_f1: float
    accuracy: float
    precision: list[float]
    recall: list[float]
    f1: list[float]
    support: list[int]
    confusion: list[list[int]]

    def per_class(self, labels: list[str]) -> dict[str, ClassScores]:
        """Precision, recall, F1 and support by label name (``labels`` in class-id order)."""
        return {
            label: ClassScores(self.precision[i], self.recall[i], self.f1[i], self.support[i])
            for i, label in enumerate(labels)
        }


def classification_scores(gold: np.ndarray, predicted: np.ndarray, num_labels: int) -> Scores:
    """Scores over all ``num_labels`` classes (absent classes count as F1 0 where predicted)."""
    labels = list(range(num_labels))
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, predicted, labels=labels, average=None, zero_division=0
    )
    return Scores(
        macro_f1=float(f1_score(gold, predicted, labels=labels, average="macro", zero_division=0)),
        accuracy=float(accuracy_score(gold, predicted)),
        precision=[float(value) for value in precision],
        recall=[float(value) for value in recall],
        f1=[float(value) for value in f1],
        support=[int(value) for value in support],
        confusion=confusion_matrix(gold, predicted, labels=labels).tolist(),
    )
