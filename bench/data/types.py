"""Data types shared by the loaders, the splitter and training."""

from __future__ import annotations

from dataclasses import dataclass, field

SINGLE = "single"
MULTILABEL = "multilabel"
TASKS = ("auto", SINGLE, MULTILABEL)
LABEL_JOIN = ","  # joins a multi-label example's labels into ``Example.label``


@dataclass(frozen=True)
class DataOptions:
    """How to read a data source (``--data`` and its options).

    ``source`` is ``sample``, a file path, or ``KIND:PATH`` with KIND one of
    ``aihub``, ``single-turn``, ``multi-turn``, ``file``. With ``no_header`` the
    file's first row is data and ``text_col``/``label_col`` are column numbers from 1.
    ``task`` is ``single``, ``multilabel`` (a label cell lists labels separated
    by ``label_sep``) or ``auto`` (multi-label for ``kote:`` and for label
    columns that hold such lists).
    ``folds`` > 1 asks for cross-validation and ``fold`` (1 to ``folds``) picks one
    fold: the test split stays as without folds and validation rotates over the
    rest, or with ``folds_test`` the test split rotates (validation split from
    the rest). Folds depend only on the data and ``split_seed``.
    """

    source: str = "sample"
    text_col: str | None = None
    label_col: str | None = None
    no_header: bool = False
    task: str = "auto"
    label_sep: str = ","
    sheet: str | None = None
    text_field: str = "all-human"
    label_scheme: str = "major6"
    label_map: str | None = None
    split_seed: int = 42
    dedupe: bool = False
    drop_unknown: bool = False
    folds: int | None = None
    fold: int | None = None
    folds_test: bool = False


@dataclass(frozen=True)
class Example:
    """One labelled text; ``uid`` is stable across runs on the same data.

    In multi-label data ``labels`` holds the example's labels (in the dataset's
    label order) and ``label`` joins them with ``,``; ``labels`` is empty otherwise.
    """

    uid: str
    text: str
    label: str
    group: str | None = None
    labels: tuple[str, ...] = ()


@dataclass
class DataReport:
    """What loading found: rows and labels per split, rows dropped and why, how the data was split.

    ``split_rule`` says how the splits were made; ``groups`` counts the
    dialogues per split for data split by dialogue (empty otherwise);
    ``warnings`` are problems worth a look that did not stop loading.
    """

    rows: dict[str, int] = field(default_factory=dict)
    labels: dict[str, dict[str, int]] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    duplicates_within_train: int = 0
    duplicates_train_test: int = 0
    encoding: str | None = None
    split_rule: str = ""
    groups: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class SplitDataset:
    """A dataset split into train, validation and test.

    ``labels`` is the label set (sorted, or a source's published order); a
    label's index is its class id. ``task`` is ``single`` or ``multilabel``.
    ``fingerprint`` covers content, text field, label scheme and split.
    """

    name: str
    labels: tuple[str, ...]
    train: list[Example]
    validation: list[Example]
    test: list[Example]
    fingerprint: str
    report: DataReport
    task: str = "single"

    @property
    def multilabel(self) -> bool:
        """Whether examples have any number of labels (``task == "multilabel"``)."""
        return self.task == MULTILABEL
