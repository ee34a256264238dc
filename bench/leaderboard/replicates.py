"""Macro-F1 of many runs under many bootstrap weightings at once (numpy only): the scores the task table's
bootstrap uses (:meth:`bench.tasks.Task.replicate_macro_f1`)."""

from __future__ import annotations

import numpy as np

_MAX_COUNT_COLUMNS = 2048


def replicate_macro_f1(gold: np.ndarray, predicted: np.ndarray, weights: np.ndarray, num_classes: int) -> np.ndarray:
    """Macro-F1 of each run ``(R, N)`` under each example weighting ``(B, N)``: an ``(R, B)`` array.

    Macro-F1 averages over all ``num_classes`` classes; a class with neither gold
    nor predicted examples scores 0, as scikit-learn's ``zero_division=0``.
    """
    classes = np.arange(num_classes)
    gold_hot = gold[:, None] == classes
    gold_counts = (weights @ gold_hot.astype(np.float32)).astype(np.float64)
    runs_per_block = max(1, _MAX_COUNT_COLUMNS // (2 * num_classes))
    result = np.empty((predicted.shape[0], weights.shape[0]))
    for start in range(0, predicted.shape[0], runs_per_block):
        block = predicted[start : start + runs_per_block]
        predicted_hot = block[:, :, None] == classes  # (R, N, K)
        correct_hot = predicted_hot & gold_hot[None]
        indicators = np.concatenate([predicted_hot, correct_hot], axis=2).transpose(1, 0, 2)
        # Counts are whole numbers below 2**24, exact in float32; the F1 arithmetic runs in float64.
        counts = (weights @ indicators.reshape(gold.size, -1).astype(np.float32)).astype(np.float64)
        counts = counts.reshape(weights.shape[0], block.shape[0], 2, num_classes)
        denominator = gold_counts[:, None, :] + counts[:, :, 0, :]
        f1 = np.divide(2 * counts[:, :, 1, :], denominator, out=np.zeros_like(denominator), where=denominator > 0)
        result[start : start + block.shape[0]] = f1.mean(axis=2).T
    return result


def replicate_multilabel_macro_f1(gold: np.ndarray, predicted: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Macro-F1 over labels of each run's 0/1 predictions ``(R, N, L)`` under each weighting ``(B, N)``: ``(R, B)``.

    A label with neither gold nor predicted examples scores 0 (``zero_division=0``).
    """
    gold_counts = (weights @ gold.astype(np.float32)).astype(np.float64)  # (B, L)
    result = np.empty((predicted.shape[0], weights.shape[0]))
    for run, rows in enumerate(predicted):
        predicted_counts = (weights @ rows.astype(np.float32)).astype(np.float64)
        correct = (weights @ (rows & gold).astype(np.float32)).astype(np.float64)
        denominator = gold_counts + predicted_counts
        f1 = np.divide(2 * correct, denominator, out=np.zeros_like(denominator), where=denominator > 0)
        result[run] = f1.mean(axis=1)
    return result
