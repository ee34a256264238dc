"""Seeded, stratified splits that depend only on the data and the split seed.

Each unit (an example, or a whole dialogue when examples have a ``group``) gets
a place in a shuffled order from a hash of the split seed and its uid, so the
split never depends on a training seed or on row order. Units are then dealt,
stratum by stratum, to the split furthest below its share of the stratum
(ties: of all rows dealt so far).
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from bench.data.types import Example, SplitDataset
from bench.errors import UsageError

if TYPE_CHECKING:  # the frames come from the callers; importing bench.config stays free of pandas
    import pandas as pd

SPLITS = ("train", "validation", "test")
TRAIN_VALIDATION_TEST = (8, 1, 1)
TRAIN_VALIDATION = (9, 1, 0)
MIN_PER_CLASS = 10  # smallest class an 80/10/10 split gives at least one validation and one test example
RARE_STRATUM = "\x00rare labels"  # the stratum multi-label examples share when their rarest label is rare


def order_key(seed: int, unit: str) -> bytes:
    """A unit's place in the seeded order."""
    return hashlib.blake2b(f"{seed}\x1f{unit}".encode(), digest_size=8).digest()


def assign_splits(frame: pd.DataFrame, shares: Sequence[int], seed: int) -> pd.Series:
    """The split (``train``/``validation``/``test``) of each row of ``frame`` (columns ``uid``, ``label``, ``group``).

    ``shares`` are integer weights of the splits (``(8, 1, 1)`` is 80/10/10).
    Rows sharing a ``group`` stay together; a group's stratum is its rarest label.
    """
    return assign_parts(frame, shares, seed).map(dict(enumerate(SPLITS)))


def assign_parts(frame: pd.DataFrame, shares: Sequence[int], seed: int) -> pd.Series:
    """The part (index into ``shares``) of each row of ``frame``: stratified, seeded, groups kept whole.

    :func:`assign_splits` deals three parts; cross-validation deals ``K`` equal ones.
    """
    grouped = frame["group"].notna()
    units = frame["group"].where(grouped, "\x00" + frame["uid"])
    counts = frame["label"].value_counts()
    rarest_first = sorted(counts.index, key=lambda label: (counts[label], label))
    rank = frame["label"].map({label: index for index, label in enumerate(rarest_first)})
    stratum_of_unit = rank.groupby(units, sort=False).min()
    sizes = units.value_counts()
    size_of_unit = dict(zip(sizes.index.tolist(), sizes.tolist(), strict=True))
    by_stratum: dict[int, list[str]] = defaultdict(list)
    for unit, stratum in zip(stratum_of_unit.index.tolist(), stratum_of_unit.tolist(), strict=True):
        by_stratum[stratum].append(unit)
    whole = sum(shares)
    part_of_unit: dict[str, int] = {}
    dealt = 0
    overall = [0] * len(shares)
    for stratum in sorted(by_stratum):
        members = sorted(by_stratum[stratum], key=lambda unit: order_key(seed, unit))
        stratum_rows = sum(size_of_unit[unit] for unit in members)
        filled = [0] * len(shares)
        for unit in members:
            size = size_of_unit[unit]
            dealt += size
            # Furthest below its share of the stratum; ties go to the split furthest below overall
            # (deficits scaled by ``whole`` to stay integers).
            deficits = [
                (share * stratum_rows - filled[index] * whole, share * dealt - overall[index] * whole)
                for index, share in enumerate(shares)
            ]
            best = deficits.index(max(deficits))
            filled[best] += size
            overall[best] += size
            part_of_unit[unit] = best
    return units.map(part_of_unit)


def limit_train(dataset: SplitDataset, n: int, seed: int) -> SplitDataset:
    """``dataset`` with a stratified, seeded subset of ``n`` training examples; validation and test untouched.

    Every class (for multi-label data: every rarest-label stratum) keeps at
    least one example; the rest is shared in proportion to class size. The
    fingerprint is kept: it names the data and its split, and a
    run records ``train_limit`` in its own config.
    """
    if n >= len(dataset.train):
        return dataset
    by_label: dict[str, list[Example]] = defaultdict(list)
    for example, stratum in zip(dataset.train, strata(dataset.train), strict=True):
        by_label[stratum].append(example)
    if n < len(by_label):
        classes = len(by_label)
        raise UsageError(f"--train-limit {n} is smaller than the {classes} classes in train; use at least {classes}")
    labels = sorted(by_label)
    quotas = _proportional_quotas(n, [len(by_label[label]) for label in labels])
    chosen: set[str] = set()
    for label, quota in zip(labels, quotas, strict=True):
        members = sorted(by_label[label], key=lambda example: order_key(seed, "limit\x1f" + example.uid))
        chosen.update(example.uid for example in members[:quota])
    train = [example for example in dataset.train if example.uid in chosen]
    report = replace(
        dataset.report,
        rows={**dataset.report.rows, "train": len(train)},
        labels={**dataset.report.labels, "train": label_counts(train)},
    )
    return replace(dataset, train=train, report=report)


def strata(examples: Sequence[Example]) -> list[str]:
    """Each example's stratum: its label, or for multi-label examples see :func:`rarest_label_strata`."""
    if not any(example.labels for example in examples):
        return [example.label for example in examples]
    return rarest_label_strata([example.labels for example in examples])


def rarest_label_strata(label_lists: Sequence[tuple[str, ...]]) -> list[str]:
    """The stratum of each multi-label example: its rarest label (ties: the first by name).

    Examples whose rarest label has fewer than :data:`MIN_PER_CLASS` examples
    share one stratum, so that rare labels are still dealt to every split.
    """
    counts: Counter[str] = Counter(label for labels in label_lists for label in labels)
    result = []
    for labels in label_lists:
        rarest = min(labels, key=lambda label: (counts[label], label))
        result.append(rarest if counts[rarest] >= MIN_PER_CLASS else RARE_STRATUM)
    return result


def _proportional_quotas(n: int, sizes: list[int]) -> list[int]:
    """``n`` shared over classes of ``sizes`` in proportion, at least 1 and at most the size each."""
    total = sum(sizes)
    exact = [n * size / total for size in sizes]
    quotas = [min(size, max(1, math.floor(share))) for size, share in zip(sizes, exact, strict=True)]
    while sum(quotas) > n:
        index = max((i for i in range(len(sizes)) if quotas[i] > 1), key=lambda i: (quotas[i] - exact[i], -i))
        quotas[index] -= 1
    while sum(quotas) < n:
        index = max((i for i in range(len(sizes)) if quotas[i] < sizes[i]), key=lambda i: (exact[i] - quotas[i], -i))
        quotas[index] += 1
    return quotas


def label_counts(examples: Sequence[Example]) -> dict[str, int]:
    """Label → number of examples with it, sorted by label (each label of a multi-label example counts)."""
    counts: dict[str, int] = defaultdict(int)
    for example in examples:
        for label in example.labels or (example.label,):
            counts[label] += 1
    return dict(sorted(counts.items()))
