"""The task table (as in KLUE-baseline): single-label and multi-label classification, one entry each.

A task owns everything that differs between one label per text and any number of
labels per text: the training loss, logits → probabilities, the decision
(argmax, or every label at or over its threshold), the thresholds tuned on
validation, the test scores and the headline figures shown for a run, and how the
leaderboard bootstraps, flags and describes a run's stored test predictions. Training,
the baselines, both predictors and the CLI look the task up by name
(:func:`task_named`, the ``task`` of a dataset, a run's metrics or a model card)
instead of branching on it.

The probability, decision and threshold parts are numpy only, so that ONNX
prediction imports neither torch nor scikit-learn; :meth:`Task.loss` imports
torch and :meth:`Task.evaluate` scikit-learn when called.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.inference.predictions import TextPrediction

if TYPE_CHECKING:
    from torch import Tensor, nn

    from bench.leaderboard.records import ClassScores, RunMetrics


@dataclass
class Evaluation:
    """Scores of decided predictions: the leaderboard's headline macro-F1 and accuracy, and the rest.

    ``accuracy`` is exact match for multi-label predictions; ``confusion`` is empty
    there; ``extra`` holds the task's own :class:`~bench.leaderboard.records.RunMetrics`
    fields (multi-label: ``task``, ``thresholds`` and ``scores``).
    """

    predicted: np.ndarray
    macro_f1: float
    accuracy: float
    per_class: dict[str, ClassScores]
    confusion: list[list[int]]
    extra: dict[str, Any] = field(default_factory=dict)


class Task:
    """One kind of classification; the two entries are :data:`SINGLE_LABEL` and :data:`MULTI_LABEL`."""

    name: str
    description: str
    uses_thresholds: bool  # whether the decision needs thresholds tuned on validation
    target_ndim: int  # dimensions of a run's stored gold/predicted targets: 1 (class ids) or 2 (0/1 rows)
    target_dtype: str  # the dtype training targets have: int64 class ids (cross-entropy), float32 0/1 rows (BCE)
    accuracy_name: str  # what :attr:`Evaluation.accuracy` measures, for reports

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Probabilities ``(N, labels)`` in float32 from logits ``(N, labels)``."""
        raise NotImplementedError

    def decide(self, probabilities: np.ndarray, thresholds: Sequence[float] | np.ndarray | None) -> np.ndarray:
        """Predictions: class ids ``(N,)``, or 0/1 rows ``(N, labels)`` (int64)."""
        raise NotImplementedError

    def chosen(self, row: np.ndarray, thresholds: Sequence[float] | np.ndarray | None) -> list[int]:
        """The labels predicted for one row of probabilities, most probable first."""
        raise NotImplementedError

    def tune_thresholds(self, gold: np.ndarray, probabilities: np.ndarray, per_label: bool) -> np.ndarray | None:
        """Decision thresholds tuned on validation (``None`` where the decision needs none)."""
        raise NotImplementedError

    def loss(self, class_weights: Tensor | None = None) -> nn.Module:
        """The training loss of logits against label targets; ``class_weights`` from :meth:`class_weights`."""
        raise NotImplementedError

    def class_weights(self, targets: np.ndarray, num_labels: int) -> np.ndarray:
        """Weights against label imbalance, from the training label targets (``--class-weighted``)."""
        raise NotImplementedError

    def label_prior(self, targets: np.ndarray, num_labels: int) -> np.ndarray:
        """Each label's frequency in ``targets`` (the training split): the majority baseline's probabilities."""
        raise NotImplementedError

    def linear_model(self, c: float, max_iter: int) -> Any:
        """The TF-IDF baseline's scikit-learn logistic regression for this task, with inverse regularisation ``c``."""
        raise NotImplementedError

    def evaluate(
        self, gold: np.ndarray, probabilities: np.ndarray, thresholds: np.ndarray | None, labels: Sequence[str]
    ) -> Evaluation:
        """Decide and score ``probabilities`` against ``gold`` targets (test or validation)."""
        raise NotImplementedError

    def headline(self, metrics: RunMetrics) -> list[tuple[str, str]]:
        """The test figures shown for a finished run, as (name, value) rows."""
        raise NotImplementedError

    def check_thresholds(self, thresholds: Sequence[Any], num_labels: int) -> str | None:
        """What is wrong with a model card's ``thresholds`` for this task, or ``None``."""
        raise NotImplementedError

    def text_predictions(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        rows: np.ndarray,
        thresholds: Sequence[float] | None = None,
    ) -> list[TextPrediction]:
        """One :class:`TextPrediction` per text from its row of probabilities (columns in the order of ``labels``)."""
        predictions = []
        for text, row in zip(texts, rows, strict=True):
            probabilities = dict(zip(labels, map(float, row), strict=True))
            chosen = {labels[index]: float(row[index]) for index in self.chosen(row, thresholds)}
            predictions.append(self._prediction(text, probabilities, chosen))
        return predictions

    def _prediction(self, text: str, probabilities: dict[str, float], chosen: dict[str, float]) -> TextPrediction:
        raise NotImplementedError

    def replicate_macro_f1(
        self, gold: np.ndarray, predicted: np.ndarray, weights: np.ndarray, num_labels: int
    ) -> np.ndarray:
        """Macro-F1 of each run's stored predictions under each bootstrap weighting of the examples: ``(R, B)``."""
        raise NotImplementedError

    def majority_reference(self, gold: Sequence[Any], num_labels: int) -> float | None:
        """Test macro-F1 of the majority answer, computed from the gold targets (``None`` where it is not)."""
        raise NotImplementedError

    def labels_predicted(self, predicted: Sequence[Any]) -> int:
        """Number of different labels the stored test predictions use at least once."""
        raise NotImplementedError

    def target_names(self, target: Any, labels: Sequence[str]) -> list[str]:
        """The label names of one stored target (a class id, or a 0/1 row); out-of-range ids as numbers."""
        raise NotImplementedError

    def describe_target(self, target: Any, labels: Sequence[str]) -> str:
        """One stored target as text for a report."""
        raise NotImplementedError

    def mistake_confidence(
        self, probabilities: Sequence[float], predicted: Any, gold: Any
    ) -> tuple[float | None, float | None]:
        """The probability given the (wrong) prediction and the one given the gold target, where they are one number."""
        raise NotImplementedError


class SingleLabel(Task):
    """One class per text: softmax, argmax, cross-entropy (optionally class-weighted), macro-F1 and accuracy."""

    name = "single"
    description = "one label per text"
    uses_thresholds = False
    target_ndim = 1
    target_dtype = "int64"
    accuracy_name = "accuracy"

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Row-wise softmax in float32."""
        shifted = logits.astype(np.float32) - logits.max(axis=1, keepdims=True)
        exponentials = np.exp(shifted)
        return exponentials / exponentials.sum(axis=1, keepdims=True)

    def decide(self, probabilities: np.ndarray, thresholds: Sequence[float] | np.ndarray | None) -> np.ndarray:
        """The most probable class of each row."""
        return probabilities.argmax(axis=1).astype(np.int64)

    def chosen(self, row: np.ndarray, thresholds: Sequence[float] | np.ndarray | None) -> list[int]:
        """The most probable class."""
        return [int(row.argmax())]

    def tune_thresholds(self, gold: np.ndarray, probabilities: np.ndarray, per_label: bool) -> np.ndarray | None:
        """None: argmax needs no threshold."""
        return None

    def loss(self, class_weights: Tensor | None = None) -> nn.Module:
        """Cross-entropy, with ``class_weights`` per class."""
        from torch import nn

        return nn.CrossEntropyLoss(weight=class_weights)

    def class_weights(self, targets: np.ndarray, num_labels: int) -> np.ndarray:
        """Inverse class frequencies in train; they average 1 over the training examples."""
        counts = np.bincount(targets.astype(np.int64), minlength=num_labels).astype(float)
        return (counts.sum() / (num_labels * np.maximum(counts, 1))).astype(np.float32)

    def label_prior(self, targets: np.ndarray, num_labels: int) -> np.ndarray:
        """Class frequencies: the most frequent class (ties: the lowest id) is the majority baseline's answer."""
        return np.bincount(targets.astype(np.int64), minlength=num_labels) / max(len(targets), 1)

    def linear_model(self, c: float, max_iter: int) -> Any:
        """A multinomial logistic regression over the classes."""
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=c, max_iter=max_iter)

    def evaluate(
        self, gold: np.ndarray, probabilities: np.ndarray, thresholds: np.ndarray | None, labels: Sequence[str]
    ) -> Evaluation:
        """Macro-F1 over all classes, accuracy, per-class scores and the confusion matrix."""
        from bench.evaluation.scores import classification_scores

        predicted = self.decide(probabilities, None)
        scores = classification_scores(gold, predicted, len(labels))
        return Evaluation(predicted, scores.macro_f1, scores.accuracy, scores.per_class(list(labels)), scores.confusion)

    def headline(self, metrics: RunMetrics) -> list[tuple[str, str]]:
        """Test macro-F1 and accuracy."""
        return [("test macro-F1", f"{metrics.macro_f1:.4f}"), ("test accuracy", f"{metrics.accuracy:.4f}")]

    def check_thresholds(self, thresholds: Sequence[Any], num_labels: int) -> str | None:
        """Any: a single-label model decides by argmax."""
        return None

    def _prediction(self, text: str, probabilities: dict[str, float], chosen: dict[str, float]) -> TextPrediction:
        return TextPrediction(text, next(iter(chosen)), probabilities)

    def replicate_macro_f1(
        self, gold: np.ndarray, predicted: np.ndarray, weights: np.ndarray, num_labels: int
    ) -> np.ndarray:
        """Macro-F1 over all ``num_labels`` classes (:func:`bench.leaderboard.stats.replicate_macro_f1`)."""
        from bench.leaderboard.replicates import replicate_macro_f1

        return replicate_macro_f1(gold, predicted, weights, num_labels)

    def majority_reference(self, gold: Sequence[Any], num_labels: int) -> float | None:
        """Macro-F1 over ``num_labels`` classes of answering the most frequent test class for every example."""
        if not len(gold) or num_labels < 1:
            return None
        count = Counter(int(value) for value in gold).most_common(1)[0][1]
        precision, recall = count / len(gold), 1.0
        return 2 * precision * recall / (precision + recall) / num_labels

    def labels_predicted(self, predicted: Sequence[Any]) -> int:
        """Distinct predicted classes."""
        return len({int(value) for value in predicted})

    def target_names(self, target: Any, labels: Sequence[str]) -> list[str]:
        """The class's label."""
        return [_label_name(int(target), labels)]

    def describe_target(self, target: Any, labels: Sequence[str]) -> str:
        """The class's label."""
        return _label_name(int(target), labels)

    def mistake_confidence(
        self, probabilities: Sequence[float], predicted: Any, gold: Any
    ) -> tuple[float | None, float | None]:
        """The probabilities of the predicted and of the gold class (``None`` without stored probabilities)."""
        if not len(probabilities):
            return None, None
        return float(probabilities[int(predicted)]), float(probabilities[int(gold)])


class MultiLabel(Task):
    """Any number of labels per text: one sigmoid per label, BCE (optionally ``pos_weight``), thresholds tuned
    on validation (global or per label), macro-F1 over labels with micro-F1, samples-F1 and exact match."""

    name = "multilabel"
    description = "any number of labels per text"
    uses_thresholds = True
    target_ndim = 2
    target_dtype = "float32"
    accuracy_name = "exact match"

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Element-wise logistic function in float32."""
        return 1.0 / (1.0 + np.exp(-logits.astype(np.float32)))

    def decide(self, probabilities: np.ndarray, thresholds: Sequence[float] | np.ndarray | None) -> np.ndarray:
        """1 for every label at or over its threshold."""
        return (probabilities >= np.asarray(thresholds)).astype(np.int64)

    def chosen(self, row: np.ndarray, thresholds: Sequence[float] | np.ndarray | None) -> list[int]:
        """Every label at or over its threshold, most probable first (possibly none)."""
        over = np.flatnonzero(row >= np.asarray(thresholds)).tolist()
        return sorted(over, key=lambda index: -row[index])

    def tune_thresholds(self, gold: np.ndarray, probabilities: np.ndarray, per_label: bool) -> np.ndarray | None:
        """The best validation macro-F1 thresholds over labels (:func:`bench.evaluation.scores.tune_thresholds`)."""
        from bench.evaluation.scores import tune_thresholds

        return tune_thresholds(gold > 0.5, probabilities, per_label)

    def loss(self, class_weights: Tensor | None = None) -> nn.Module:
        """Binary cross-entropy per label; ``class_weights`` is its ``pos_weight``."""
        from torch import nn

        return nn.BCEWithLogitsLoss(pos_weight=class_weights)

    def class_weights(self, targets: np.ndarray, num_labels: int) -> np.ndarray:
        """Each label's ``pos_weight``: its negatives over its positives in train."""
        positives = (targets > 0.5).sum(axis=0)
        return ((len(targets) - positives) / np.maximum(positives, 1)).astype(np.float32)

    def label_prior(self, targets: np.ndarray, num_labels: int) -> np.ndarray:
        """Each label's share of the training texts that carry it."""
        return (targets > 0.5).mean(axis=0) if len(targets) else np.zeros(num_labels)

    def linear_model(self, c: float, max_iter: int) -> Any:
        """One binary logistic regression per label (one-vs-rest)."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier

        return OneVsRestClassifier(LogisticRegression(C=c, max_iter=max_iter))

    def evaluate(
        self, gold: np.ndarray, probabilities: np.ndarray, thresholds: np.ndarray | None, labels: Sequence[str]
    ) -> Evaluation:
        """Macro-F1 over labels at ``thresholds``, exact match as the accuracy, micro- and samples-F1."""
        from bench.evaluation.scores import multilabel_scores

        assert thresholds is not None, "a multi-label decision needs thresholds"
        predicted = self.decide(probabilities, thresholds)
        scores = multilabel_scores(gold > 0.5, predicted)
        extra = {
            "task": self.name,
            "thresholds": [round(float(value), 4) for value in thresholds],
            "scores": {"micro_f1": scores.micro_f1, "samples_f1": scores.samples_f1, "exact_match": scores.exact_match},
        }
        return Evaluation(predicted, scores.macro_f1, scores.exact_match, scores.per_class(list(labels)), [], extra)

    def headline(self, metrics: RunMetrics) -> list[tuple[str, str]]:
        """Macro-F1 over labels, micro-/samples-F1 and exact match."""
        return [
            ("test macro-F1 (over labels)", f"{metrics.macro_f1:.4f}"),
            ("test micro-F1 / samples-F1", f"{metrics.scores['micro_f1']:.4f} / {metrics.scores['samples_f1']:.4f}"),
            ("test exact match", f"{metrics.accuracy:.4f}"),
        ]

    def check_thresholds(self, thresholds: Sequence[Any], num_labels: int) -> str | None:
        """One finite number per label."""
        numbers = isinstance(thresholds, list) and all(
            isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)
            for value in thresholds
        )
        if numbers and len(thresholds) == num_labels:
            return None
        return "a multilabel model needs one number in 'thresholds' per label"

    def _prediction(self, text: str, probabilities: dict[str, float], chosen: dict[str, float]) -> TextPrediction:
        return TextPrediction(text, ",".join(chosen), probabilities, chosen)

    def replicate_macro_f1(
        self, gold: np.ndarray, predicted: np.ndarray, weights: np.ndarray, num_labels: int
    ) -> np.ndarray:
        """Macro-F1 over the labels of the 0/1 rows (:func:`bench.leaderboard.stats.replicate_multilabel_macro_f1`)."""
        from bench.leaderboard.replicates import replicate_multilabel_macro_f1

        return replicate_multilabel_macro_f1(gold, predicted, weights)

    def majority_reference(self, gold: Sequence[Any], num_labels: int) -> float | None:
        """None: the reference of label sets is the label-prior (majority) row, when recorded."""
        return None

    def labels_predicted(self, predicted: Sequence[Any]) -> int:
        """Labels predicted for at least one example."""
        return len({label for row in predicted for label, on in enumerate(row) if on})

    def target_names(self, target: Any, labels: Sequence[str]) -> list[str]:
        """The labels set in the row."""
        return [_label_name(index, labels) for index, on in enumerate(target) if on]

    def describe_target(self, target: Any, labels: Sequence[str]) -> str:
        """The labels set in the row joined by ``+`` (``∅`` for none)."""
        return "+".join(self.target_names(target, labels)) or "∅"

    def mistake_confidence(
        self, probabilities: Sequence[float], predicted: Any, gold: Any
    ) -> tuple[float | None, float | None]:
        """None for both: a label set has no single probability."""
        return None, None


SINGLE_LABEL = SingleLabel()
MULTI_LABEL = MultiLabel()
TASKS: dict[str, Task] = {task.name: task for task in (SINGLE_LABEL, MULTI_LABEL)}


def task_named(name: str) -> Task:
    """The task called ``name`` (``single`` or ``multilabel``); :class:`KeyError` naming the choices otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None


def task_of(targets: Sequence[Any] | np.ndarray) -> Task:
    """The task whose stored targets look like ``targets`` (gold or predictions of one run: class ids, or 0/1
    rows); for stored predictions, which do not carry their run's task. Empty targets count as single-label."""
    ndim = np.asarray(targets).ndim
    for task in TASKS.values():
        if task.target_ndim == ndim:
            return task
    raise ValueError(f"targets with {ndim} dimensions belong to no task; known tasks: {', '.join(TASKS)}")


def _label_name(index: int, labels: Sequence[str]) -> str:
    return labels[index] if 0 <= index < len(labels) else str(index)
