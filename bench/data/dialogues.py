"""Where dialogues start in a table of utterances (KETI's 연속적 대화 데이터셋 and files like it).

Three layouts are read, alone or mixed:

* a **start marker**: the dialogue column holds one value that is not a number
  (the published file writes ``S``) on the first utterance of each dialogue and
  nothing on the others; every marked row starts a dialogue;
* **ids**: numbers or several distinct values (``1``, ``2``, ... or ``D001``,
  ...), on a dialogue's first row only or on all of its rows; a row starts a
  dialogue where the id differs from the one before it;
* **blank separator rows**: an empty row (no text, no label, no id) ends a
  dialogue, and the next utterance starts one.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

# One dialogue holding more than this share of the utterances (and at least _GIANT_MIN_ROWS of them)
# means the dialogue column was not read as the file intends (e.g. a marker forward-filled over every row).
_GIANT_SHARE = 0.2
_GIANT_MIN_ROWS = 100


@dataclass(frozen=True)
class Dialogues:
    """The dialogue number of each row (``None`` before the first one), and the layout that found them."""

    ids: pd.Series
    layout: str


def find_dialogues(marker: pd.Series, blank: pd.Series) -> Dialogues:
    """Number the dialogues of a table from its cleaned dialogue column and its blank-row mask.

    ``marker`` and ``blank`` share the table's index (row numbers). Rows before
    the first dialogue start get ``None``.
    """
    marked = marker != ""
    values = set(marker[marked])
    single_marker = len(values) == 1 and not next(iter(values)).replace(".", "", 1).isdigit()
    layout = "start marker" if single_marker else "ids" if values else "blank rows"
    if layout == "start marker":
        starts = marked
    else:
        current = marker.where(marked).ffill()
        starts = marked & (current != current.shift(1))
    if blank.any():
        # The first non-blank row after one or more blank rows starts a dialogue.
        previous_blank = blank.shift(1, fill_value=layout == "blank rows")
        starts = starts | (previous_blank & ~blank)
    numbers = starts.cumsum().tolist()
    ids = pd.Series([number if number else None for number in numbers], index=marker.index, dtype=object)
    return Dialogues(ids=ids, layout=layout)


def implausible_dialogues_warning(groups: pd.Series, column: str, layout: str) -> str | None:
    """A warning when the dialogues of the utterances (``groups``) cannot be what the file means.

    One dialogue holding a large share of the utterances (a column filled down
    from its first cell), or every utterance its own dialogue (a marker written
    on every row).
    """
    if len(groups) < _GIANT_MIN_ROWS:
        return None
    sizes = groups.value_counts()
    largest = int(sizes.iloc[0])
    if largest == 1:
        return (
            f"every one of the {len(groups)} utterances is its own dialogue; column {column!r} was read as "
            f"{layout}: mark only each dialogue's first utterance"
        )
    if largest < _GIANT_MIN_ROWS or largest <= _GIANT_SHARE * len(groups):
        return None
    return (
        f"one dialogue holds {largest} of {len(groups)} utterances ({largest / len(groups):.0%}); "
        f"column {column!r} was read as {layout}: mark each dialogue's first utterance (S or an id) "
        "instead of filling the column down"
    )
