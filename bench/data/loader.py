"""``load_dataset``: read a source, check its labels, split it, report what was dropped, fingerprint it."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pandas as pd

from bench.data.aihub import check_text_field
from bench.data.folds import check_fold_options, fold_fingerprint, fold_parts, fold_splits, require_fold, scheme_digest
from bench.data.hygiene import check_label_spellings, dedupe_train, duplicate_counts
from bench.data.labels import check_scheme, describe_counts, read_label_map
from bench.data.sources import Collected, collect, holds_label_lists
from bench.data.split import MIN_PER_CLASS, SPLITS, assign_splits, label_counts, rarest_label_strata
from bench.data.types import LABEL_JOIN, MULTILABEL, SINGLE, DataOptions, DataReport, Example, SplitDataset
from bench.errors import DataError, UsageError

UNKNOWN_LABEL = "unknown label"
_SPLIT_PARTS = ("split", "train-file")  # rows the seeded splitter assigns; other parts name their split
DROPPED_BY_MAP = "dropped by label map"
_LISTED = 10  # classes an error message names at most


def load_dataset(options: DataOptions) -> SplitDataset:
    """Load ``options.source``, split it train/validation/test and report its hygiene.

    The split depends only on the data and ``options.split_seed``. Rows that
    cannot be used are dropped and counted in ``report.dropped``; problems a
    user must fix raise :class:`~bench.errors.DataError`. The duplicate counts
    describe the returned splits (after ``dedupe``, if asked for).
    """
    check_text_field(options.text_field)
    check_scheme(options.label_scheme)
    if options.text_col is not None and options.text_col == options.label_col:
        raise UsageError(
            f"--text-col and --label-col both name column {options.text_col!r}; the text and the label must be "
            "different columns"
        )
    label_map = read_label_map(Path(options.label_map).expanduser()) if options.label_map else None
    collected = collect(options)
    frame = _checked_labels(collected, options, label_map)
    _check_classes(collected, frame, options.label_sep)
    check_fold_options(options)
    strata = _strata(collected, frame)
    assigned = _assign(collected, frame, strata, options.split_seed)
    examples = _examples(collected, frame)
    splits = _by_split(examples, assigned)
    _check_splits(collected, frame, splits)
    labels = _label_set(collected, frame)
    rule = split_rule(frame)
    if options.folds is None:
        data_fingerprint = fingerprint(options, label_map, labels, splits, collected.task)
    else:
        if options.folds_test and set(frame["part"]) != {"split"}:
            raise DataError(
                f"{collected.location}: --folds-test rotates the test split over all rows, but this data comes "
                "with its own test file; use --folds without --folds-test"
            )
        parts = fold_parts(strata, assigned, options)
        fold = require_fold(options)
        splits = _by_split(examples, fold_splits(strata, parts, options, str(collected.location)))
        choices = _choices_digest(options, label_map, labels, collected.task)
        scheme = scheme_digest(choices, [_content(example) for example in examples], parts, options)
        data_fingerprint = fold_fingerprint(scheme, fold, options.folds)
        if options.folds_test:
            by_dialogue = " by whole dialogue" if frame["group"].notna().any() else ""
            rule = (
                f"one file in {options.folds} folds{by_dialogue}: fold {fold} is the test split, "
                "validation 10 % of the rest"
            )
        else:
            rule = f"{rule}; validation is fold {fold} of {options.folds} of train + validation, test fixed"
    if options.dedupe:
        splits["train"] = dedupe_train(splits["train"], splits["validation"], splits["test"], collected.dropped)
    within_train, train_test = duplicate_counts(splits["train"], splits["test"])
    report = DataReport(
        rows={name: len(splits[name]) for name in SPLITS},
        labels={name: label_counts(splits[name]) for name in SPLITS},
        dropped=dict(sorted(collected.dropped.items())),
        duplicates_within_train=within_train,
        duplicates_train_test=train_test,
        encoding=collected.encoding,
        split_rule=rule,
        groups=_group_counts(splits),
        warnings=[f"{collected.location}: {warning}" for warning in collected.warnings],
    )
    return SplitDataset(
        name=collected.name,
        labels=labels,
        train=splits["train"],
        validation=splits["validation"],
        test=splits["test"],
        fingerprint=data_fingerprint,
        report=report,
        task=collected.task,
    )


def _label_set(collected: Collected, frame: pd.DataFrame) -> tuple[str, ...]:
    """The dataset's labels: sorted, or in the source's published order (labels found in the data only)."""
    if collected.task != MULTILABEL:
        return tuple(sorted(set(frame["label"])))
    found = {label for labels in frame["labels"] for label in labels}
    if collected.label_order is not None:
        return tuple(label for label in collected.label_order if label in found)
    return tuple(sorted(found))


def _checked_labels(
    collected: Collected, options: DataOptions, label_map: dict[str, str | None] | None
) -> pd.DataFrame:
    """Labels checked against the source's label set, or the label map's keys when there is a map, then mapped.

    Unknown labels raise :class:`DataError` or, with ``drop_unknown``, are dropped and counted.
    """
    frame = collected.frame
    if collected.task == MULTILABEL:
        return _checked_label_lists(collected, options, label_map)
    if label_map is not None:
        unknown = ~frame["label"].isin(list(label_map))
        label_set = f"label map {options.label_map}"
    elif collected.unknown is not None:
        unknown = collected.unknown(frame["label"])
        label_set = collected.label_set
    else:
        unknown = pd.Series(False, index=frame.index)
        label_set = ""
    if unknown.any():
        if not options.drop_unknown:
            raise DataError(
                f"{collected.location}: labels outside {label_set}: {describe_counts(frame.loc[unknown, 'label'])}; "
                "fix them, map them with --label-map, or drop them with --drop-unknown"
            )
        collected.dropped[UNKNOWN_LABEL] += int(unknown.sum())
        frame = frame.loc[~unknown]
    if label_map is not None:
        frame = frame.assign(label=frame["label"].map(label_map))
        removed = frame["label"].isna()
        if removed.any():
            collected.dropped[DROPPED_BY_MAP] += int(removed.sum())
            frame = frame.loc[~removed]
    if frame.empty:
        raise DataError(f"{collected.location}: no usable rows left (dropped: {_describe_dropped(collected.dropped)})")
    return frame


def _checked_label_lists(
    collected: Collected, options: DataOptions, label_map: dict[str, str | None] | None
) -> pd.DataFrame:
    """Multi-label examples with ``label_map`` applied to each label.

    A label the map does not name is an error, or with ``drop_unknown`` is
    removed from its example; an example left without labels is dropped and counted.
    """
    frame = collected.frame
    if label_map is None:
        return frame
    flat = frame["labels"].explode()
    unknown = ~flat.isin(list(label_map))
    if unknown.any() and not options.drop_unknown:
        raise DataError(
            f"{collected.location}: labels outside label map {options.label_map}: {describe_counts(flat[unknown])}; "
            "map them with --label-map or drop them with --drop-unknown"
        )
    mapped = flat[~unknown].map(label_map).dropna()
    labels = mapped.groupby(level=0).agg(lambda values: tuple(sorted(set(values))))
    kept = frame.index.isin(labels.index)
    removed = int((~kept).sum())
    if removed:
        collected.dropped[DROPPED_BY_MAP] += removed
    frame = frame.loc[kept].assign(labels=labels, label=lambda rows: rows["labels"].map(LABEL_JOIN.join))
    if frame.empty:
        raise DataError(f"{collected.location}: no usable rows left (dropped: {_describe_dropped(collected.dropped)})")
    return frame


def _describe_dropped(dropped: Counter[str]) -> str:
    return ", ".join(f"{reason} {count}" for reason, count in sorted(dropped.items())) or "none"


def _check_classes(collected: Collected, frame: pd.DataFrame, label_sep: str) -> None:
    """At least two classes, each with enough rows to be split (in AI Hub's Training file for aihub data)."""
    if collected.task == MULTILABEL:
        found = sorted({label for labels in frame["labels"] for label in labels})
        if len(found) < 2:
            raise DataError(f"{collected.location}: only one label ({found[0]!r}); classification needs at least two")
        return  # labels are spread by each example's rarest label; a label may be rare in a split
    labels = sorted(set(frame["label"]))
    check_label_spellings(str(collected.location), labels)
    if len(labels) < 2:
        raise DataError(f"{collected.location}: only one label ({labels[0]!r}); classification needs at least two")
    to_split = frame.loc[frame["part"].isin(_SPLIT_PARTS), "label"].value_counts()
    if to_split.empty:
        return
    small = [(label, int(to_split.get(label, 0))) for label in labels if to_split.get(label, 0) < MIN_PER_CLASS]
    if small:
        where = " in the training file" if (frame["part"] == "train-file").any() else ""
        listed = ", ".join(f"{label!r} has {count}" for label, count in small[:_LISTED])
        more = f" and {len(small) - _LISTED} more classes" if len(small) > _LISTED else ""
        hint = "merge or drop small classes with --label-map"
        if holds_label_lists(frame["label"], label_sep):
            hint = f"the labels look like lists of labels: read them as multi-label with --task multilabel; or {hint}"
        raise DataError(
            f"{collected.location}: too few examples{where} for a stratified split: {listed}{more}; "
            f"each class needs at least {MIN_PER_CLASS} ({hint})"
        )


def _strata(collected: Collected, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each row's stratum as its label (multi-label rows: their rarest label)."""
    if collected.task != MULTILABEL:
        return frame
    return frame.assign(label=rarest_label_strata(frame["labels"].tolist()))


def _assign(collected: Collected, frame: pd.DataFrame, strata: pd.DataFrame, seed: int) -> pd.Series:
    """Each row's split: seeded for the parts the splitter deals, as given for the others."""
    assigned = frame["part"].copy()
    for part in _SPLIT_PARTS:
        rows = frame["part"] == part
        if rows.any():
            assigned.loc[rows] = assign_splits(strata.loc[rows], collected.shares(part), seed)
    return assigned


def _examples(collected: Collected, frame: pd.DataFrame) -> list[Example]:
    """The rows of ``frame`` as examples, in source order."""
    columns = (frame[name].tolist() for name in ("uid", "text", "label", "group"))
    label_lists = frame["labels"].tolist() if collected.task == MULTILABEL else [()] * len(frame)
    return [
        Example(uid=uid, text=text, label=label, group=group, labels=labels)
        for uid, text, label, group, labels in zip(*columns, label_lists, strict=True)
    ]


def _by_split(examples: list[Example], assigned: pd.Series) -> dict[str, list[Example]]:
    """Examples per split, in source order."""
    splits: dict[str, list[Example]] = {name: [] for name in SPLITS}
    for example, split in zip(examples, assigned.tolist(), strict=True):
        splits[split].append(example)
    return splits


def split_rule(frame: pd.DataFrame) -> str:
    """How the rows of ``frame`` (see :class:`~bench.data.sources.Collected`) are split, in words."""
    parts = set(frame["part"])
    by_dialogue = " by whole dialogue" if frame["group"].notna().any() else ""
    if parts == {"split"}:
        return f"one file split 80/10/10{by_dialogue}"
    if "train-file" in parts:
        return f"given splits: test file as given, validation 10 % of the training file{by_dialogue}"
    return "given splits: train, validation and test files as given"


def _check_splits(collected: Collected, frame: pd.DataFrame, splits: dict[str, list[Example]]) -> None:
    """Every split holds examples; dialogues that cannot be spread over the splits are an error."""
    empty = [name for name in SPLITS if not splits[name]]
    if not empty:
        return
    units = frame["group"].nunique() if frame["group"].notna().any() else len(frame)
    what = "dialogues" if frame["group"].notna().any() else "examples"
    hint = "; ".join(collected.warnings) or "add more data"
    raise DataError(
        f"{collected.location}: the {' and '.join(empty)} split{'s are' if len(empty) > 1 else ' is'} empty "
        f"({units} {what} to split): {hint}"
    )


def _group_counts(splits: dict[str, list[Example]]) -> dict[str, int]:
    """Distinct groups (dialogues) per split; empty when examples have no group."""
    if not any(example.group for name in SPLITS for example in splits[name]):
        return {}
    return {name: len({example.group for example in splits[name]}) for name in SPLITS}


def fingerprint(
    options: DataOptions,
    label_map: dict[str, str | None] | None,
    labels: tuple[str, ...],
    splits: dict[str, list[Example]],
    task: str = SINGLE,
) -> str:
    """SHA-256 (hex) of the choices that shape the data and of every example in every split."""
    digest = _choices_digest(options, label_map, labels, task)
    for name in SPLITS:
        digest.update(f"\x1d{name}\x1d".encode())
        for example in splits[name]:
            digest.update(f"{_content(example)}\x1e".encode())
    return digest.hexdigest()


def _choices_digest(
    options: DataOptions, label_map: dict[str, str | None] | None, labels: tuple[str, ...], task: str
) -> hashlib._Hash:
    """A SHA-256 hasher fed with the choices that shape the data."""
    digest = hashlib.sha256()
    choices = {
        "text_field": options.text_field,
        "label_scheme": options.label_scheme,
        "label_map": sorted(label_map.items(), key=lambda item: item[0]) if label_map is not None else None,
        "split_seed": options.split_seed,
        "dedupe": options.dedupe,
        "drop_unknown": options.drop_unknown,
        "labels": labels,
    }
    if task != SINGLE:  # single-label fingerprints stay as they were before multi-label data existed
        choices["task"] = task
    digest.update(json.dumps(choices, ensure_ascii=False, sort_keys=True).encode())
    return digest


def _content(example: Example) -> str:
    """What the fingerprint records of one example."""
    return f"{example.uid}\x1f{example.text}\x1f{example.label}\x1f{example.group or ''}"
