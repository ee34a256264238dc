"""Warnings a finished run carries: it collapsed to one class, or it is no better than the majority class.

Flagged runs are listed with a marker and never chosen as "best" unless asked for
(``--include-flagged``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from bench.tasks import task_of

COLLAPSED = "collapsed"
BELOW_MAJORITY = "below-majority"
DUPLICATE = "duplicate"
LEGACY_IDENTITY = "legacy-identity"
FLAG_MARKER = "⚑"

FLAG_MEANINGS: dict[str, str] = {
    COLLAPSED: "predicts the same class (or label set) for every test example",
    BELOW_MAJORITY: "test macro-F1 not above the majority-class row on the same data",
    DUPLICATE: "same configuration as another row (recorded before run identities resolved defaults)",
    LEGACY_IDENTITY: "recorded before run identities covered the weights, and its weights folder is gone",
}
# Ties at the majority score (a collapsed run equals it exactly) count as not above it.
_TOLERANCE = 1e-9


def predicted_class_count(predicted: Sequence[int] | Sequence[Sequence[int]]) -> int:
    """Number of distinct classes among the test predictions (multi-label 0/1 rows: labels predicted at least once)."""
    return task_of(predicted).labels_predicted(predicted)


def distinct_predictions(predicted: Sequence[int] | Sequence[Sequence[int]]) -> int:
    """Number of different predictions (a class, or a multi-label 0/1 row) over the test examples."""
    return len(np.unique(np.asarray(predicted), axis=0))


def majority_macro_f1(gold: Sequence[int] | Sequence[Sequence[int]], num_labels: int) -> float | None:
    """Macro-F1 over ``num_labels`` classes of predicting the most frequent test class for every example.

    ``None`` for multi-label gold rows (their reference is the label-prior row, when recorded); see
    :meth:`bench.tasks.Task.majority_reference`.
    """
    return task_of(gold).majority_reference(gold, num_labels)


def run_flags(macro_f1: float | None, distinct: int | None, majority_f1: float | None) -> list[str]:
    """The flags of a finished run (empty when nothing is wrong).

    ``distinct`` is the number of different test predictions: one means the run collapsed.
    """
    flags: list[str] = []
    if distinct is not None and distinct <= 1:
        flags.append(COLLAPSED)
    if macro_f1 is not None and majority_f1 is not None and macro_f1 <= majority_f1 + _TOLERANCE:
        flags.append(BELOW_MAJORITY)
    return flags


def legend(flags: Iterable[str]) -> str:
    """One line explaining the flags that occur, e.g. ``⚑ collapsed: predicts one class …``."""
    present = sorted(set(flags))
    return "; ".join(f"{FLAG_MARKER} {flag}: {FLAG_MEANINGS.get(flag, flag)}" for flag in present)
