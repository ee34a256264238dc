"""Error analysis from stored test predictions: misclassified examples and where two runs disagree."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.errors import UsageError
from bench.leaderboard.records import Predictions
from bench.tasks import task_of


@dataclass(frozen=True)
class Mistake:
    """One misclassified test example.

    ``confidence`` is the probability the run gave its (wrong) prediction and ``gold_probability`` the one it
    gave the gold class (single-label runs; ``None`` for multi-label runs and for runs without probabilities).
    ``text`` is ``None`` for runs recorded before test texts were stored.
    """

    position: int
    example_id: str
    text: str | None
    gold: str
    predicted: str
    confidence: float | None
    gold_probability: float | None


@dataclass(frozen=True)
class Disagreement:
    """A test example two runs label differently: each run's label and which one (if either) is right."""

    example_id: str
    text: str | None
    gold: str
    a: str
    b: str

    @property
    def winner(self) -> str:
        """``"A"``, ``"B"`` or ``"neither"``: the run whose label is the gold one."""
        return "A" if self.a == self.gold else ("B" if self.b == self.gold else "neither")


def check_label(option: str, label: str | None, labels: Sequence[str]) -> None:
    """A one-line error when ``label`` (given with ``option``) is not one of the run's ``labels``."""
    if label is not None and label not in labels:
        raise UsageError(f"{option} {label!r} is not a class of this run; its classes are {', '.join(labels)}")


def misclassified(
    predictions: Predictions,
    labels: Sequence[str],
    *,
    gold: str | None = None,
    predicted: str | None = None,
    either: str | None = None,
) -> list[Mistake]:
    """The test examples whose prediction is not the gold label, most confident mistakes first.

    ``gold`` / ``predicted`` keep the mistakes with that gold / predicted class, ``either`` those where it is
    the gold or the predicted class (for multi-label runs: where the label is among the gold or predicted ones).
    """
    for option, value in (("--gold", gold), ("--predicted", predicted), ("--class", either)):
        check_label(option, value, labels)
    task = task_of(predictions.gold)
    found: list[Mistake] = []
    for position, (example_id, gold_value, predicted_value) in enumerate(
        zip(predictions.example_ids, predictions.gold, predictions.predicted, strict=True)
    ):
        if gold_value == predicted_value:
            continue
        gold_names = set(task.target_names(gold_value, labels))
        predicted_names = set(task.target_names(predicted_value, labels))
        if gold is not None and gold not in gold_names:
            continue
        if predicted is not None and predicted not in predicted_names:
            continue
        if either is not None and either not in gold_names | predicted_names:
            continue
        row = predictions.probabilities[position] if predictions.probabilities else []
        confidence, gold_probability = task.mistake_confidence(row, predicted_value, gold_value)
        found.append(
            Mistake(
                position=position,
                example_id=example_id,
                text=predictions.texts[position] if predictions.texts is not None else None,
                gold=task.describe_target(gold_value, labels),
                predicted=task.describe_target(predicted_value, labels),
                confidence=confidence,
                gold_probability=gold_probability,
            )
        )
    return sorted(found, key=lambda mistake: -(mistake.confidence or 0.0))


def disagreements(a: Predictions, b: Predictions, labels: Sequence[str]) -> tuple[int, list[Disagreement]]:
    """The number of test examples both runs scored, and those of them the two runs label differently."""
    b_positions = {example_id: position for position, example_id in enumerate(b.example_ids)}
    texts = a.texts if a.texts is not None else b.texts
    text_positions = a if a.texts is not None else b
    text_index = {example_id: position for position, example_id in enumerate(text_positions.example_ids)}
    task = task_of(a.gold)
    shared = 0
    found: list[Disagreement] = []
    for position, example_id in enumerate(a.example_ids):
        other = b_positions.get(example_id)
        if other is None:
            continue
        shared += 1
        if a.predicted[position] == b.predicted[other]:
            continue
        found.append(
            Disagreement(
                example_id=example_id,
                text=texts[text_index[example_id]] if texts is not None else None,
                gold=task.describe_target(a.gold[position], labels),
                a=task.describe_target(a.predicted[position], labels),
                b=task.describe_target(b.predicted[other], labels),
            )
        )
    return shared, found
