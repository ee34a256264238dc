"""Data sources: ``sample``, a file, ``aihub:``, ``single-turn:``, ``multi-turn:``, ``kote:`` and ``file:``.

Each source is read into a :class:`Collected` frame of examples (columns
``uid``, ``text``, ``label``, ``group``, ``part``) with the rows it dropped and
the labels it knows. Without a ``KIND:`` prefix the kind is detected: a
directory or ``.json`` file is AI Hub data, and a table is detected from its
columns (AI Hub's 감정_대분류/사람문장1, ``dialog #`` → multi-turn,
``Sentence``/``Emotion`` → single-turn, else a plain file). Giving
``text_col``/``label_col`` or ``no_header`` without a prefix reads the table as a plain file.
"""

from __future__ import annotations

import importlib.resources
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.data import aihub, kote
from bench.data.dialogues import find_dialogues, implausible_dialogues_warning
from bench.data.hygiene import drop_unusable_rows
from bench.data.labels import SEVEN_EMOTIONS, found_labels, outside_aihub
from bench.data.readers import Table, clean_text, describe_rows, find_column, read_table
from bench.data.split import TRAIN_VALIDATION, TRAIN_VALIDATION_TEST
from bench.data.types import LABEL_JOIN, MULTILABEL, SINGLE, TASKS, DataOptions
from bench.errors import DataError, UsageError

KINDS = ("aihub", "single-turn", "multi-turn", "kote", "file")
SAMPLE = "sample"
SAMPLE_RESOURCE = "sample/sample_diary.csv"
TEXT_COLUMNS = ("text", "sentence", "문장", "발화", "document", "utterance", "content", "review", "텍스트", "내용")
LABEL_COLUMNS = ("label", "emotion", "감정", "sentiment", "class", "category", "라벨", "레이블")
DIALOGUE_COLUMNS = ("dialog #", "dialog#", "dialogue #", "dialogue#")


@dataclass
class Collected:
    """Examples read from a source, before labels are checked and the data is split.

    ``part`` is ``"split"`` for rows to split 80/10/10; with given splits it is
    ``"train-file"`` (split 90/10 into train and validation: AI Hub's Training
    file, or a train file without a validation file), ``"train"``,
    ``"validation"`` or ``"test"`` (used as they are; AI Hub's Validation file
    is the test split). ``unknown`` marks labels outside the source's label set
    (``None``: any label is valid); ``label_set`` names that set in errors.
    ``warnings`` are problems the data may have that do not stop loading it.
    Multi-label data (``task == "multilabel"``) has a ``labels`` column of
    label tuples, joined into ``label``; ``label_order`` is the source's
    published label list (``None``: sorted labels).
    """

    name: str
    location: Path
    frame: pd.DataFrame
    dropped: Counter[str] = field(default_factory=Counter)
    encoding: str | None = None
    unknown: Callable[[pd.Series], pd.Series] | None = None
    label_set: str = ""
    warnings: list[str] = field(default_factory=list)
    task: str = SINGLE
    label_order: tuple[str, ...] | None = None

    def shares(self, part: str) -> tuple[int, int, int]:
        """Train/validation/test weights for the rows of ``part``."""
        return TRAIN_VALIDATION if part == "train-file" else TRAIN_VALIDATION_TEST


def split_source(source: str) -> tuple[str | None, str]:
    """``(kind, path)`` of a ``--data`` value; kind ``None`` means detect it."""
    kind, separator, rest = source.partition(":")
    if separator and kind in KINDS:
        if not rest.strip():
            raise UsageError(f"--data {source!r} needs a path after '{kind}:'")
        return kind, rest
    return None, source


def collect(options: DataOptions) -> Collected:
    """Read ``options.source`` into examples (see :class:`Collected`)."""
    if options.source == SAMPLE:
        resource = importlib.resources.files("bench.data").joinpath(SAMPLE_RESOURCE)
        with importlib.resources.as_file(resource) as path:
            if not path.is_file():
                raise DataError(f"{path}: the bundled sample data is missing from this installation")
            return _collect_plain(SAMPLE, read_table(path), options)
    if options.task not in TASKS:
        raise UsageError(f"--task must be one of {', '.join(TASKS)}, got {options.task!r}")
    if not options.label_sep.strip():
        raise UsageError("--label-sep must be a non-blank separator such as ','")
    kind, raw_path = split_source(options.source)
    path = Path(raw_path).expanduser()
    if kind == "kote":
        _no_columns(options, "kote")
        return _collect_kote(path, options)
    if options.task == MULTILABEL and kind not in (None, "file"):
        raise UsageError(f"--task multilabel applies to plain tables (file:PATH) and kote: data, not to {kind} data")
    if kind is None and (path.is_dir() or path.suffix.lower() == ".json"):
        kind = "aihub"
    if kind == "aihub":
        _no_columns(options, "aihub")
        return _collect_aihub(path, options)
    if options.no_header and kind not in (None, "file"):
        raise UsageError(f"--no-header applies to plain tables (file:PATH), not to {kind} data")
    table = read_table(path, options.sheet, header=not options.no_header)
    if kind is None:
        kind = _detect(table, options)
    name = f"{kind}:{path.name}"
    if kind == "aihub":
        _no_columns(options, "aihub")
        return _collect_aihub_table(name, table, options)
    if kind == "multi-turn":
        return _collect_multi_turn(name, table, options)
    if kind == "single-turn":
        return _collect_single_turn(name, table, options)
    return _collect_plain(name, table, options)


def _detect(table: Table, options: DataOptions) -> str:
    columns = [str(name) for name in table.frame.columns]
    if options.text_col is not None or options.label_col is not None or options.no_header:
        return "file"
    if aihub.is_aihub_table(columns):
        return "aihub"
    if _dialogue_column(columns) is not None:
        return "multi-turn"
    if "Sentence" in columns and "Emotion" in columns:
        return "single-turn"
    return "file"


def _no_columns(options: DataOptions, kind: str) -> None:
    if options.text_col is not None or options.label_col is not None:
        raise UsageError(f"--text-col/--label-col do not apply to {kind} data; choose its text with --text-field")


def _labelled(table: Table, text_col: str, label_col: str) -> pd.DataFrame:
    return pd.DataFrame(
        {"text": clean_text(table.frame[text_col]), "label": clean_text(table.frame[label_col])},
        index=table.frame.index,
    )


def _finish(frame: pd.DataFrame, uid_prefix: str, group: pd.Series | None = None, part: str = "split") -> pd.DataFrame:
    """Add ``uid`` (prefix + row number), ``group`` and ``part`` columns."""
    frame = frame.copy()
    frame.insert(0, "uid", uid_prefix + frame.index.astype(str))
    frame["group"] = None if group is None else group.loc[frame.index]
    frame["part"] = part
    return frame.reset_index(drop=True)


def _collect_plain(name: str, table: Table, options: DataOptions) -> Collected:
    """A table with a text and a label column; labels as found (``merged5`` merges 상처 into 슬픔)."""
    text_col = find_column(table, options.text_col, TEXT_COLUMNS, "text", "--text-col")
    label_col = find_column(table, options.label_col, LABEL_COLUMNS, "label", "--label-col")
    dropped: Counter[str] = Counter()
    frame = drop_unusable_rows(table.path, _labelled(table, text_col, label_col), label_col, dropped)
    task = options.task
    if task == "auto":
        task = MULTILABEL if holds_label_lists(frame["label"], options.label_sep) else SINGLE
    if task == MULTILABEL:
        lists = frame["label"].map(lambda cell: _split_labels(cell, options.label_sep))
        empty = lists.map(len) == 0
        if empty.any():
            raise DataError(
                f"{table.path}: {describe_rows(frame.index[empty])}: no label in column {label_col!r} "
                f"(only the separator {options.label_sep!r})"
            )
        flat = found_labels(lists.explode(), options.label_scheme, str(table.path))
        labels = flat.groupby(level=0).agg(lambda values: tuple(sorted(set(values))))
        frame = frame.assign(labels=labels, label=labels.map(LABEL_JOIN.join))
    else:
        frame["label"] = found_labels(frame["label"], options.label_scheme, str(table.path))
    return Collected(name, table.path, _finish(frame, _row_prefix(table)), dropped, table.encoding, task=task)


def holds_label_lists(labels: pd.Series, separator: str) -> bool:
    """Whether a label column lists several labels per cell: cells with ``separator`` whose parts are fewer
    distinct values than the cells (label combinations outnumber the labels they combine)."""
    if not labels.str.contains(separator, regex=False).any():
        return False
    parts = {part for cell in labels.unique() for part in _split_labels(cell, separator)}
    return len(parts) < labels.nunique()


def _split_labels(cell: str, separator: str) -> list[str]:
    return [part.strip() for part in cell.split(separator) if part.strip()]


def _collect_kote(path: Path, options: DataOptions) -> Collected:
    """KOTE's folder: the given train/val/test files; without ``val.tsv``, validation is 10 % of train."""
    if options.task == SINGLE:
        raise UsageError("kote: data is multi-label (several emotions per comment); drop --task single")
    if options.label_scheme != "major6":
        raise UsageError(
            f"--labels {options.label_scheme} applies to AI Hub emotions; kote: data has its own 44 labels"
        )
    files = kote.locate(path)
    dropped: Counter[str] = Counter()
    frames, encodings = [], []
    for split, file in files.items():
        frame, encoding = kote.read_split(file, dropped)
        frame = frame.assign(label=frame["labels"].map(LABEL_JOIN.join))
        part = "train-file" if split == "train" and "validation" not in files else split
        frames.append(_finish(frame, f"{file.stem}#", part=part))
        encodings.append(encoding)
    encoding = encodings[0] if len(set(encodings)) == 1 else " / ".join(str(value) for value in encodings)
    return Collected(
        f"kote:{path.name}",
        path,
        pd.concat(frames, ignore_index=True),
        dropped,
        encoding,
        task=MULTILABEL,
        label_order=kote.KOTE_LABELS,
    )


def _collect_single_turn(name: str, table: Table, options: DataOptions) -> Collected:
    """KETI's 단발성 대화 데이터셋: ``Sentence``, ``Emotion``, seven labels."""
    _seven_labels_only(table, options, "single-turn")
    text_col = find_column(table, options.text_col, ("Sentence",), "text", "--text-col")
    label_col = find_column(table, options.label_col, ("Emotion",), "label", "--label-col")
    dropped: Counter[str] = Counter()
    frame = drop_unusable_rows(table.path, _labelled(table, text_col, label_col), label_col, dropped)
    return Collected(
        name,
        table.path,
        _finish(frame, _row_prefix(table)),
        dropped,
        table.encoding,
        _outside(SEVEN_EMOTIONS),
        "the seven labels of the single-turn data (file:PATH keeps any labels)",
    )


def _collect_multi_turn(name: str, table: Table, options: DataOptions) -> Collected:
    """KETI's 연속적 대화 데이터셋: one example per utterance, split by whole dialogues.

    Dialogues are found by :func:`bench.data.dialogues.find_dialogues` (the
    published ``S`` start marker, ids, or blank separator rows) before any row
    is dropped, so an unlabelled first utterance still starts its dialogue.
    Rows without an emotion (the release has 7) are dropped and counted as
    ``missing label``.
    """
    _seven_labels_only(table, options, "multi-turn")
    columns = [str(name) for name in table.frame.columns]
    dialogue_col = _dialogue_column(columns)
    if dialogue_col is None:
        raise DataError(f"{table.path}: no dialogue id column ('dialog #'); columns found: {', '.join(columns)}")
    text_col = find_column(table, options.text_col, ("발화",), "text", "--text-col")
    label_col = find_column(table, options.label_col, ("감정",), "label", "--label-col")
    labelled = _labelled(table, text_col, label_col)
    marker = clean_text(table.frame[dialogue_col])
    dialogues = find_dialogues(marker, (labelled["text"] == "") & (labelled["label"] == "") & (marker == ""))
    dropped: Counter[str] = Counter()
    frame = drop_unusable_rows(table.path, labelled, label_col, dropped, drop_missing_labels=True)
    ids = dialogues.ids.loc[frame.index]
    orphans = frame.index[ids.isna()]
    if len(orphans):
        raise DataError(
            f"{table.path}: row {orphans[0]}: utterance before the first dialogue start in {dialogue_col!r}"
        )
    groups = "dialog " + ids.astype(str)
    warning = implausible_dialogues_warning(groups, dialogue_col, dialogues.layout)
    return Collected(
        name,
        table.path,
        _finish(frame, _row_prefix(table), groups),
        dropped,
        table.encoding,
        _outside(SEVEN_EMOTIONS),
        "the seven labels of the multi-turn data",
        warnings=[warning] if warning else [],
    )


def _collect_aihub(path: Path, options: DataOptions) -> Collected:
    """AI Hub 감성 대화: a directory with Training and Validation files, or one file split 80/10/10."""
    files = aihub.locate(path)
    if files.validation is None:
        plan = [(files.training, "split", "dialogue" if files.training.suffix.lower() == ".json" else "row")]
    else:
        plan = [(files.training, "train-file", "Training#"), (files.validation, "test", "Validation#")]
    dropped: Counter[str] = Counter()
    frames, encodings = [], []
    for file, part, uid_prefix in plan:
        frame, encoding = aihub.read_dialogues(file, options.text_field, options.label_scheme, options.sheet, dropped)
        frames.append(_finish(frame, uid_prefix, part=part))
        encodings.append(encoding)
    encoding = encodings[0] if len(set(encodings)) == 1 else " / ".join(str(value) for value in encodings)
    frame = pd.concat(frames, ignore_index=True)
    return _aihub_collected(f"aihub:{path.name}", path, frame, dropped, encoding, options)


def _collect_aihub_table(name: str, table: Table, options: DataOptions) -> Collected:
    dropped: Counter[str] = Counter()
    frame, encoding = aihub.dialogues_from_table(table, options.text_field, options.label_scheme, dropped)
    return _aihub_collected(name, table.path, _finish(frame, _row_prefix(table)), dropped, encoding, options)


def _aihub_collected(
    name: str, location: Path, frame: pd.DataFrame, dropped: Counter[str], encoding: str | None, options: DataOptions
) -> Collected:
    scheme = options.label_scheme
    return Collected(
        name,
        location,
        frame,
        dropped,
        encoding,
        lambda labels: outside_aihub(labels, scheme),
        f"AI Hub label scheme {scheme}",
    )


def _seven_labels_only(table: Table, options: DataOptions, kind: str) -> None:
    if options.label_scheme != "major6":
        raise DataError(
            f"{table.path}: label scheme {options.label_scheme!r} applies to AI Hub emotions; "
            f"{kind} data has its own seven labels "
            f"({', '.join(SEVEN_EMOTIONS)}); use --label-map to merge them"
        )


def _outside(labels: tuple[str, ...]) -> Callable[[pd.Series], pd.Series]:
    known = list(labels)
    return lambda series: ~series.isin(known)


def _row_prefix(table: Table) -> str:
    return "line" if table.path.suffix.lower() == ".jsonl" else "row"


def _dialogue_column(columns: list[str]) -> str | None:
    by_key = {name.strip().lower(): name for name in columns}
    for candidate in DIALOGUE_COLUMNS:
        if candidate in by_key:
            return by_key[candidate]
    return None
