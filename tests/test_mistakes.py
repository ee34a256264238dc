"""Error analysis from stored predictions: misclassified examples and disagreements between two runs."""

from __future__ import annotations

import pytest

from bench.errors import UsageError
from bench.leaderboard.mistakes import disagreements, misclassified
from bench.leaderboard.records import Predictions

LABELS = ["기쁨", "분노", "슬픔"]


def test_mistakes_are_the_wrong_predictions_most_confident_first_and_filter_by_class() -> None:
    predictions = Predictions(
        example_ids=["a", "b", "c", "d"],
        gold=[0, 1, 2, 2],
        predicted=[0, 2, 0, 1],
        probabilities=[[0.8, 0.1, 0.1], [0.1, 0.3, 0.6], [0.9, 0.05, 0.05], [0.2, 0.5, 0.3]],
        texts=["좋아", "화나", "슬퍼", "울어"],
    )
    found = misclassified(predictions, LABELS)
    assert [(m.example_id, m.gold, m.predicted, m.confidence, m.gold_probability, m.text) for m in found] == [
        ("c", "슬픔", "기쁨", 0.9, 0.05, "슬퍼"),
        ("b", "분노", "슬픔", 0.6, 0.3, "화나"),
        ("d", "슬픔", "분노", 0.5, 0.3, "울어"),
    ]
    assert [m.example_id for m in misclassified(predictions, LABELS, gold="슬픔")] == ["c", "d"]
    assert [m.example_id for m in misclassified(predictions, LABELS, predicted="분노")] == ["d"]
    assert [m.example_id for m in misclassified(predictions, LABELS, either="분노")] == ["b", "d"]
    with pytest.raises(UsageError, match="--gold '공포' is not a class of this run; its classes are 기쁨, 분노, 슬픔"):
        misclassified(predictions, LABELS, gold="공포")


def test_multilabel_mistakes_show_label_sets_and_old_runs_have_no_texts() -> None:
    predictions = Predictions(
        ["a", "b", "c"],
        [[1, 0, 1], [0, 1, 0], [0, 0, 1]],
        [[1, 0, 0], [0, 1, 0], [0, 0, 0]],
        [[0.9, 0.1, 0.4], [0.1, 0.8, 0.1], [0.1, 0.1, 0.2]],
    )
    found = misclassified(predictions, LABELS)
    assert [(m.example_id, m.gold, m.predicted, m.confidence, m.text) for m in found] == [
        ("a", "기쁨+슬픔", "기쁨", None, None),
        ("c", "슬픔", "∅", None, None),
    ]
    assert [m.example_id for m in misclassified(predictions, LABELS, either="기쁨")] == ["a"]


def test_disagreements_align_two_runs_by_example_id() -> None:
    a = Predictions(["x", "y", "z", "only-a"], [0, 1, 2, 0], [0, 1, 1, 2], [], texts=["t-x", "t-y", "t-z", "t-a"])
    b = Predictions(["z", "y", "x"], [2, 1, 0], [2, 0, 0], [])
    shared, found = disagreements(a, b, LABELS)
    assert shared == 3
    assert [(d.example_id, d.text, d.gold, d.a, d.b, d.winner) for d in found] == [
        ("y", "t-y", "분노", "분노", "기쁨", "A"),
        ("z", "t-z", "슬픔", "분노", "슬픔", "B"),
    ]
