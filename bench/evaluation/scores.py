"""Classification scores with scikit-learn: macro-F1 is the headline, accuracy beside it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from bench.data.types import Example
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


@dataclass
class MultilabelScores:
    """Scores of multi-label predictions: macro-F1 over labels (the headline), micro-F1, samples-F1,
    exact match (subset accuracy), and per-label precision/recall/F1/support."""

    macro_f1: float
    micro_f1: float
    samples_f1: float
    exact_match: float
    precision: list[float]
    recall: list[float]
    f1: list[float]
    support: list[int]

    def per_class(self, labels: list[str]) -> dict[str, ClassScores]:
        """Precision, recall, F1 and support by label name (``labels`` in label-id order)."""
        return {
            label: ClassScores(self.precision[i], self.recall[i], self.f1[i], self.support[i])
            for i, label in enumerate(labels)
        }


def multilabel_scores(gold: np.ndarray, predicted: np.ndarray) -> MultilabelScores:
    """Scores of 0/1 indicator matrices ``(examples, labels)``; labels never gold nor predicted score F1 0."""
    gold, predicted = gold.astype(bool), predicted.astype(bool)
    precision, recall, f1, support = precision_recall_fscore_support(gold, predicted, average=None, zero_division=0)
    return MultilabelScores(
        macro_f1=float(f1_score(gold, predicted, average="macro", zero_division=0)),
        micro_f1=float(f1_score(gold, predicted, average="micro", zero_division=0)),
        # An example with no gold and no predicted label agrees perfectly: F1 1 (zero_division=1 per example).
        samples_f1=float(f1_score(gold, predicted, average="samples", zero_division=1)),
        exact_match=float(accuracy_score(gold, predicted)),
        precision=[float(value) for value in precision],
        recall=[float(value) for value in recall],
        f1=[float(value) for value in f1],
        support=[int(value) for value in support],
    )


# Candidate decision thresholds tuned on validation (probabilities of each label).
THRESHOLDS = tuple(round(value, 2) for value in np.arange(0.05, 0.951, 0.05))


def tune_thresholds(gold: np.ndarray, probabilities: np.ndarray, per_label: bool = False) -> np.ndarray:
    """Decision thresholds ``(labels,)`` that maximise validation macro-F1 over labels.

    Global (``per_label=False``): one threshold for every label, the candidate of
    :data:`THRESHOLDS` with the best macro-F1 (ties: the one nearest 0.5). Per
    label: each label's own best F1 (ties: nearest 0.5). An example above no
    threshold gets no label.
    """
    gold = gold.astype(bool)
    candidates = np.asarray(THRESHOLDS)
    above = probabilities[None, :, :] >= candidates[:, None, None]  # (T, N, L)
    true_positives = (above & gold[None]).sum(axis=1)
    predicted = above.sum(axis=1)
    actual = gold.sum(axis=0)[None, :]
    denominator = predicted + actual
    f1 = np.where(denominator > 0, 2 * true_positives / np.maximum(denominator, 1), 0.0)  # (T, L)
    nearness = -np.abs(candidates - 0.5)
    if per_label:
        order = np.lexsort((np.repeat(nearness[:, None], f1.shape[1], axis=1), f1), axis=0)[-1]
        return candidates[order]
    best = np.lexsort((nearness, f1.mean(axis=1)))[-1]
    return np.full(probabilities.shape[1], candidates[best])


def label_targets(examples: Sequence[Example], label_ids: dict[str, int]) -> np.ndarray:
    """Class ids ``(N,)``, or for multi-label examples 0/1 targets ``(N, labels)``."""
    if not any(example.labels for example in examples):
        return np.array([label_ids[example.label] for example in examples], dtype=np.int64)
    targets = np.zeros((len(examples), len(label_ids)), dtype=np.float32)
    for row, example in enumerate(examples):
        targets[row, [label_ids[label] for label in example.labels]] = 1.0
    return targets
