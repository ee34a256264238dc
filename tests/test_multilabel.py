"""Multi-label scores and validation-tuned decision thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from bench.training.metrics import THRESHOLDS, multilabel_scores, tune_thresholds


def brute_f1(gold: np.ndarray, predicted: np.ndarray) -> float:
    true_positives = (gold & predicted).sum()
    denominator = gold.sum() + predicted.sum()
    return 2 * true_positives / denominator if denominator else 0.0


def test_multilabel_scores_by_hand() -> None:
    gold = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]], bool)
    predicted = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]], bool)
    scores = multilabel_scores(gold, predicted)
    per_label = [brute_f1(gold[:, k], predicted[:, k]) for k in range(3)]
    assert scores.f1 == pytest.approx(per_label) == [1.0, 2 / 3, 0.0]
    assert scores.macro_f1 == pytest.approx(np.mean(per_label))
    assert scores.micro_f1 == pytest.approx(brute_f1(gold, predicted))  # 2*3 / (5 + 3)
    assert scores.exact_match == pytest.approx(0.5)  # rows 2 and 4
    # Per example F1: 2/3, 1, 2/3, and 1 for "no label, none predicted".
    assert scores.samples_f1 == pytest.approx((2 / 3 + 1 + 2 / 3 + 1) / 4)
    assert scores.support == [2, 2, 1]
    assert set(scores.per_class(["a", "b", "c"])) == {"a", "b", "c"}


def brute_best_global(gold: np.ndarray, probabilities: np.ndarray) -> float:
    def macro(threshold: float) -> float:
        predicted = probabilities >= threshold
        return float(np.mean([brute_f1(gold[:, k], predicted[:, k]) for k in range(gold.shape[1])]))

    return max(THRESHOLDS, key=lambda threshold: (round(macro(threshold), 12), -abs(threshold - 0.5)))


@pytest.mark.parametrize("seed", range(5))
def test_global_threshold_maximises_validation_macro_f1(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gold = rng.random((60, 5)) < 0.25
    probabilities = np.clip(gold * rng.uniform(0.1, 0.6) + rng.random((60, 5)) * 0.6, 0, 1)
    thresholds = tune_thresholds(gold, probabilities)
    assert len(set(thresholds.tolist())) == 1
    assert thresholds[0] == pytest.approx(brute_best_global(gold, probabilities))


def test_per_label_thresholds_fit_each_label() -> None:
    # Label 0 is separable at 0.2, label 1 at 0.8: one global threshold cannot fit both.
    gold = np.array([[1, 0], [0, 1], [1, 1], [0, 0]] * 5, bool)
    probabilities = np.where(gold, [0.25, 0.85], [0.1, 0.7])
    per_label = tune_thresholds(gold, probabilities, per_label=True)
    assert per_label[0] <= 0.25 and per_label[0] > 0.1
    assert 0.7 < per_label[1] <= 0.85
    predicted = probabilities >= per_label
    assert multilabel_scores(gold, predicted).macro_f1 == 1.0
    assert multilabel_scores(gold, probabilities >= tune_thresholds(gold, probabilities)).macro_f1 < 1.0


def test_ties_prefer_the_threshold_nearest_one_half() -> None:
    gold = np.array([[1], [0]], bool)
    probabilities = np.array([[0.99], [0.01]])
    assert tune_thresholds(gold, probabilities)[0] == 0.5
    assert tune_thresholds(gold, probabilities, per_label=True)[0] == 0.5
