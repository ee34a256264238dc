"""The task table: single-label and multi-label each decide, weigh and score in one place."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from bench.tasks import MULTI_LABEL, SINGLE_LABEL, TASKS, task_named, task_of
from tests.conftest import ROOT

LOGITS = np.array([[2.0, -1.0, 0.5], [-3.0, 4.0, 4.0], [0.0, 0.0, 0.0]], dtype=np.float32)


def test_tasks_are_looked_up_by_name() -> None:
    assert task_named("single") is SINGLE_LABEL and task_named("multilabel") is MULTI_LABEL
    assert set(TASKS) == {"single", "multilabel"}
    with pytest.raises(KeyError, match="unknown task 'regression'; known tasks: single, multilabel"):
        task_named("regression")


def test_single_label_softmax_argmax_and_text_predictions() -> None:
    probabilities = SINGLE_LABEL.probabilities(LOGITS)
    expected = np.exp(LOGITS) / np.exp(LOGITS).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-6)
    assert SINGLE_LABEL.decide(probabilities, None).tolist() == [0, 1, 0]  # ties: the lowest class id
    [first, _, third] = SINGLE_LABEL.text_predictions(["a", "b", "c"], ["x", "y", "z"], probabilities)
    assert first.label == "x" and first.labels is None and first.confidence == pytest.approx(expected[0, 0])
    assert third.label == "x" and sum(third.probabilities.values()) == pytest.approx(1.0)


def test_multi_label_sigmoids_and_thresholds() -> None:
    probabilities = MULTI_LABEL.probabilities(LOGITS)
    np.testing.assert_allclose(probabilities, 1 / (1 + np.exp(-LOGITS.astype(np.float64))), rtol=1e-6)
    thresholds = [0.5, 0.99, 0.6]
    assert MULTI_LABEL.decide(probabilities, thresholds).tolist() == [[1, 0, 1], [0, 0, 1], [1, 0, 0]]
    [first, second, _] = MULTI_LABEL.text_predictions(["a", "b", "c"], ["x", "y", "z"], probabilities, thresholds)
    assert first.label == "x,z" and list(first.labels) == ["x", "z"]  # most probable first
    assert second.label == "z" and second.confidence == pytest.approx(probabilities[1, 2])
    none = MULTI_LABEL.text_predictions(["d"], ["x", "y", "z"], probabilities[:1], [1.0, 1.0, 1.0])[0]
    assert none.label == "" and none.labels == {} and none.confidence == 0.0


def test_class_weights_follow_each_loss() -> None:
    classes = np.array([0, 0, 0, 1, 2, 2])
    weights = SINGLE_LABEL.class_weights(classes, 3)
    assert weights[classes].mean() == pytest.approx(1.0)  # average 1 over the training examples
    assert weights.tolist() == pytest.approx([6 / 9, 6 / 3, 6 / 6])
    assert SINGLE_LABEL.class_weights(classes, 4)[3] == pytest.approx(6 / 4)  # an absent class counts as one
    rows = np.array([[1, 0, 1], [1, 0, 0], [0, 0, 1], [1, 1, 0]], dtype=np.float32)
    assert MULTI_LABEL.class_weights(rows, 3).tolist() == pytest.approx([1 / 3, 3 / 1, 2 / 2])


def test_thresholds_are_tuned_only_where_the_decision_uses_them() -> None:
    gold = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], dtype=np.float32)
    probabilities = np.array([[0.8, 0.3], [0.2, 0.7], [0.6, 0.65], [0.1, 0.2]])
    assert SINGLE_LABEL.tune_thresholds(gold.argmax(axis=1), probabilities, per_label=False) is None
    thresholds = MULTI_LABEL.tune_thresholds(gold, probabilities, per_label=False)
    scores = MULTI_LABEL.evaluate(gold, probabilities, thresholds, ["a", "b"])
    assert scores.macro_f1 == 1.0 and scores.accuracy == 1.0 and scores.confusion == []
    assert scores.extra["task"] == "multilabel" and set(scores.extra["scores"]) == {
        "micro_f1",
        "samples_f1",
        "exact_match",
    }


def test_model_card_thresholds_are_checked_by_the_task() -> None:
    assert SINGLE_LABEL.check_thresholds([], 3) is None
    assert MULTI_LABEL.check_thresholds([0.5, 0.4, 0.3], 3) is None
    for wrong in ([0.5, 0.4], [0.5, True, 0.3], [0.5, float("nan"), 0.3], "0.5"):
        assert MULTI_LABEL.check_thresholds(wrong, 3) == "a multilabel model needs one number in 'thresholds' per label"


def test_stored_targets_tell_their_task() -> None:
    assert task_of([2, 0, 1]) is SINGLE_LABEL and task_of(np.array([[0, 1], [1, 1]])) is MULTI_LABEL
    assert task_of([]) is SINGLE_LABEL
    with pytest.raises(ValueError, match="targets with 3 dimensions belong to no task"):
        task_of(np.zeros((2, 2, 2)))


def test_bootstrap_macro_f1_follows_the_task() -> None:
    """Unit weights give the plain macro-F1: over all classes (absent ones score 0), or over the labels of 0/1 rows."""
    gold, predicted = np.array([0, 1, 1, 2]), np.array([[0, 1, 2, 2]])
    # F1 per class: 1, 2/3, 2/3 and 0 for the absent class 3.
    single = SINGLE_LABEL.replicate_macro_f1(gold, predicted, np.ones((1, 4), np.float32), 4)
    assert single.shape == (1, 1) and single[0, 0] == pytest.approx((1 + 2 / 3 + 2 / 3 + 0) / 4)
    rows = np.array([[1, 0], [1, 1], [0, 1]])
    guesses = np.array([[[1, 0], [0, 1], [0, 1]], [[0, 0], [0, 0], [0, 0]]])
    weights = np.array([[1, 1, 1], [2, 0, 1]], np.float32)  # the second weighting drops example 1, doubles 0
    multi = MULTI_LABEL.replicate_macro_f1(rows, guesses, weights, 2)
    # Unit weights: label 0 has 1 hit of 2 gold, 1 predicted → 2/3; label 1: 2 of 2 → 1.
    assert multi[0].tolist() == pytest.approx([(2 / 3 + 1) / 2, (1 + 1) / 2])
    assert multi[1].tolist() == pytest.approx([0.0, 0.0])  # predicting nothing scores 0 (zero_division=0)


def test_majority_reference_and_predicted_labels() -> None:
    gold = [0, 0, 0, 1, 2]
    # Predicting class 0 everywhere: F1 of class 0 is 2·(3/5)/(3/5 + 1) = 0.75, the other three classes 0.
    assert SINGLE_LABEL.majority_reference(gold, 4) == pytest.approx(0.75 / 4)
    assert SINGLE_LABEL.majority_reference([], 4) is None and SINGLE_LABEL.majority_reference(gold, 0) is None
    assert MULTI_LABEL.majority_reference([[1, 0], [1, 1]], 2) is None  # the label-prior row is its reference
    assert SINGLE_LABEL.labels_predicted([3, 3, 1]) == 2
    assert MULTI_LABEL.labels_predicted([[1, 0, 0], [1, 0, 1]]) == 2 and MULTI_LABEL.labels_predicted([[0, 0]]) == 0


def test_stored_targets_are_described_by_their_task() -> None:
    labels = ["기쁨", "분노", "슬픔"]
    assert SINGLE_LABEL.describe_target(2, labels) == "슬픔" and SINGLE_LABEL.target_names(1, labels) == ["분노"]
    assert SINGLE_LABEL.describe_target(7, labels) == "7"  # an id outside the run's labels stays visible
    assert MULTI_LABEL.describe_target([1, 0, 1], labels) == "기쁨+슬픔"
    assert MULTI_LABEL.describe_target([0, 0, 0], labels) == "∅" and MULTI_LABEL.target_names([0, 0, 0], labels) == []
    row = [0.2, 0.7, 0.1]
    assert SINGLE_LABEL.mistake_confidence(row, 1, 0) == (pytest.approx(0.7), pytest.approx(0.2))
    assert SINGLE_LABEL.mistake_confidence([], 1, 0) == (None, None)
    assert MULTI_LABEL.mistake_confidence(row, [0, 1, 0], [1, 0, 0]) == (None, None)
    assert (SINGLE_LABEL.accuracy_name, MULTI_LABEL.accuracy_name) == ("accuracy", "exact match")


def test_the_task_table_imports_neither_torch_nor_scikit_learn() -> None:
    """ONNX prediction decides through the task table, so its probability and decision parts stay numpy only."""
    code = (
        "import sys, numpy as np\n"
        "from bench.tasks import MULTI_LABEL, SINGLE_LABEL\n"
        "SINGLE_LABEL.decide(SINGLE_LABEL.probabilities(np.ones((2, 3))), None)\n"
        "MULTI_LABEL.text_predictions(['a'], ['x', 'y'], MULTI_LABEL.probabilities(np.ones((1, 2))), [0.5, 0.5])\n"
        "from bench.tasks import task_of\n"
        "task_of([[1, 0]]).describe_target([1, 0], ['x', 'y']), task_of([0]).majority_reference([0, 1], 2)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'sklearn', 'lightning', 'transformers'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
