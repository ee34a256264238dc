"""Row hygiene: blank rows, missing labels, empty texts and duplicate texts, all counted."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from bench.data.types import Example
from bench.errors import DataError

if TYPE_CHECKING:  # the frames come from the readers; bench predict checks texts without pandas
    import pandas as pd

BLANK_ROW = "blank row"
MISSING_LABEL = "missing label"
EMPTY_TEXT = "empty text"
DUPLICATE_IN_TRAIN = "duplicate text in train (dedupe)"
DUPLICATE_OF_EVAL = "train text also in validation/test (dedupe)"
# What spreadsheet and dataframe tools write into a cell without a value; never a real label.
MISSING_VALUE_MARKERS = frozenset({"nan", "na", "n/a", "#n/a", "null"})
# Whitespace and characters that draw nothing: zero-width spaces and joiners, the byte-order mark, soft hyphen,
# bidi marks, variation selectors and the Hangul fillers. A text made only of these is an empty text.
_INVISIBLE = (
    r"\s\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    r"\u3164\ufe00-\ufe0f\ufeff\uffa0"
)
_BLANK = re.compile(f"[{_INVISIBLE}]*")


def is_blank(text: str) -> bool:
    """Whether ``text`` is empty or made only of whitespace and invisible characters (zero-width space, BOM, ...)."""
    return _BLANK.fullmatch(text) is not None


def blank_mask(values: pd.Series) -> pd.Series:
    """:func:`is_blank` of each string of ``values``."""
    return values.str.fullmatch(_BLANK.pattern).fillna(True).astype(bool)


def drop_unusable_rows(
    path: Path, frame: pd.DataFrame, label_column: str, dropped: Counter[str], *, drop_missing_labels: bool = False
) -> pd.DataFrame:
    """Drop and count blank rows and empty texts; a missing label is an error naming its rows.

    ``frame`` has cleaned ``text`` and ``label`` columns and is indexed by row
    number. A text or label made only of invisible characters (zero-width spaces,
    a byte-order mark) is empty. A label written as a missing-value marker (``NaN``, ``NA``, ``N/A``,
    ``null``) is missing too. With ``drop_missing_labels`` (for sources known to
    have a few unlabelled rows) such rows are dropped and counted instead.
    """
    no_text = blank_mask(frame["text"])
    no_label = blank_mask(frame["label"])
    frame = _drop(frame, no_text & no_label, BLANK_ROW, dropped)
    markers = frame["label"].str.lower().isin(MISSING_VALUE_MARKERS)
    missing = blank_mask(frame["label"]) | markers
    if missing.any() and not drop_missing_labels:
        found = sorted(set(frame["label"][markers]))
        shown = f" (found {', '.join(map(repr, found))}, a missing-value marker)" if found else ""
        from bench.data.readers import describe_rows  # the readers load pandas; is_blank alone needs none

        raise DataError(f"{path}: {describe_rows(frame.index[missing])}: no label in column {label_column!r}{shown}")
    frame = _drop(frame, missing, MISSING_LABEL, dropped)
    return _drop(frame, blank_mask(frame["text"]), EMPTY_TEXT, dropped)


def check_label_spellings(location: str, labels: Iterable[str]) -> None:
    """Refuse labels that are one number written two ways (``1`` and ``1.0``): they would become two classes."""
    by_number: dict[float, list[str]] = {}
    for label in sorted(set(labels)):
        number = _as_number(label)
        if number is not None:
            by_number.setdefault(number, []).append(label)
    clashes = [spellings for spellings in by_number.values() if len(spellings) > 1]
    if clashes:
        shown = "; ".join(" and ".join(map(repr, spellings)) for spellings in clashes[:3])
        raise DataError(
            f"{location}: labels {shown} are the same number written differently and would be separate classes; "
            "write each label one way, or map the spellings to one label with --label-map"
        )


def _as_number(label: str) -> float | None:
    try:
        number = float(label)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _drop(frame: pd.DataFrame, mask: pd.Series, reason: str, dropped: Counter[str]) -> pd.DataFrame:
    count = int(mask.sum())
    if count:
        dropped[reason] += count
        return frame.loc[~mask]
    return frame


def duplicate_counts(train: list[Example], test: list[Example]) -> tuple[int, int]:
    """Extra copies of texts within ``train``, and ``test`` examples whose text is in ``train``."""
    train_texts = [example.text for example in train]
    unique = set(train_texts)
    return len(train_texts) - len(unique), sum(1 for example in test if example.text in unique)


def dedupe_train(
    train: list[Example], validation: list[Example], test: list[Example], dropped: Counter[str]
) -> list[Example]:
    """``train`` without repeated texts (first kept) and without texts of validation or test."""
    held_out = {example.text for example in validation} | {example.text for example in test}
    seen: set[str] = set()
    kept: list[Example] = []
    for example in train:
        if example.text in held_out:
            dropped[DUPLICATE_OF_EVAL] += 1
        elif example.text in seen:
            dropped[DUPLICATE_IN_TRAIN] += 1
        else:
            seen.add(example.text)
            kept.append(example)
    return kept
