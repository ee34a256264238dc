"""Data types shared by the loaders, the splitter and training."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DataOptions:
    """How to read a data source (``--data`` and its options).

    ``source`` is ``sample``, a file path, or ``KIND:PATH`` with KIND one of
    ``aihub``, ``single-turn``, ``multi-turn``, ``file``. With ``no_header`` the
    file's first row is data and ``text_col``/``label_col`` are column numbers from 1.
    """

    source: str = "sample"
    text_col: str | None = None
    label_col: str | None = None
    no_header: bool = False
    sheet: str | None = None
    text_field: str = "all-human"
    label_scheme: str = "major6"
    label_map: str | None = None
    split_seed: int = 42
    dedupe: bool = False
    drop_unknown: bool = False


@dataclass(frozen=True)
class Example:
    """One labelled text; ``uid`` is stable across runs on the same data."""

    uid: str
    text: str
    label: str
    group: str | None = None


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

    ``labels`` is the sorted label set; a label's index is its class id.
    ``fingerprint`` covers content, text field, label scheme and split.
    """

    name: str
    labels: tuple[str, ...]
    train: list[Example]
    validation: list[Example]
    test: list[Example]
    fingerprint: str
    report: DataReport
