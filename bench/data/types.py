"""Data types shared by the loaders, the splitter and training."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from bench.settings import DATA, path_text
from bench.settings import setting as declared_setting

# A data option's declaration (:mod:`bench.settings`): its command-line option is derived from it.
setting = partial(declared_setting, panel=DATA)


SINGLE = "single"
MULTILABEL = "multilabel"
TASKS = ("auto", SINGLE, MULTILABEL)
LABEL_JOIN = ","  # joins a multi-label example's labels into ``Example.label``


@dataclass(frozen=True)
class DataOptions:
    """How to read a data source (``--data`` and its options; each field declares its option).

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

    source: str = setting(
        "sample",
        "--data",
        option="data",
        help="sample, a .csv/.tsv/.jsonl/.xlsx file, or aihub:PATH, single-turn:FILE, multi-turn:FILE, kote:DIR, "
        "file:PATH.",
    )
    text_col: str | None = setting(None, "--text-col", help="Text column (auto-detected if omitted).")
    label_col: str | None = setting(None, "--label-col", help="Label column (auto-detected if omitted).")
    no_header: bool = setting(
        False, "--no-header", help="The file has no header row: --text-col/--label-col are column numbers from 1."
    )
    task: str = setting(
        "auto",
        "--task",
        help="single, multilabel (a label cell lists labels) or auto (multilabel for kote: and for label lists).",
    )
    label_sep: str = setting(",", "--label-sep", help="Separator of the labels in a multi-label cell.")
    sheet: str | None = setting(None, "--sheet", help="Sheet of a multi-sheet xlsx file.")
    text_field: str = setting(
        "all-human", "--text", "--text-field", option="text", help="AI Hub text: first-human, all-human or dialogue."
    )
    label_scheme: str = setting("major6", "--labels", option="labels", help="AI Hub labels: major6, merged5 or minor.")
    label_map: str | None = setting(
        None,
        "--label-map",
        cli_type=Path | None,
        convert=path_text,
        help="YAML/JSON file: source label → target label (null drops).",
    )
    split_seed: int = setting(42, "--split-seed", help="Seed of the train/validation/test split.")
    dedupe: bool = setting(False, "--dedupe", help="Remove duplicate texts from train.")
    drop_unknown: bool = setting(False, "--drop-unknown", help="Drop (and count) labels outside the scheme.")
    # The fold scheme is not part of a run's hash: the folds of one configuration share it, and the dataset
    # fingerprint names the fold.
    folds: int | None = setting(
        None,
        "--folds",
        identity=False,
        help="k-fold cross-validation: train each configuration on K stratified folds (one leaderboard row each; "
        "validation rotates, the test split stays fixed).",
    )
    fold: int | None = setting(
        None, identity=False, help="The fold to load (1 to folds); bench run, grid and tune span them all."
    )
    folds_test: bool = setting(
        False,
        "--folds-test",
        identity=False,
        help="With --folds: rotate the test split over the K folds instead (validation 10 % of the rest).",
    )


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
