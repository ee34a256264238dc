"""The split, fingerprints, duplicates and ``limit_train``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.data import DataOptions, SplitDataset, limit_train, load_dataset
from bench.data.split import SPLITS, TRAIN_VALIDATION_TEST, assign_splits
from bench.errors import UsageError
from tests.fixtures.data.builders import labelled_rows, write_aihub_dir, write_table


def membership(dataset: SplitDataset) -> dict[str, list[str]]:
    return {name: [example.uid for example in getattr(dataset, name)] for name in SPLITS}


@pytest.fixture
def uneven_csv(tmp_path: Path) -> Path:
    rows = labelled_rows(("a",), 100) + labelled_rows(("b",), 37) + labelled_rows(("c",), 10)
    return write_table(tmp_path / "uneven.csv", rows)


def test_split_is_stratified_80_10_10(uneven_csv: Path) -> None:
    dataset = load_dataset(DataOptions(source=str(uneven_csv)))
    assert dataset.report.labels == {  # each class within one example of 80/10/10
        "train": {"a": 80, "b": 29, "c": 8},
        "validation": {"a": 10, "b": 4, "c": 1},
        "test": {"a": 10, "b": 4, "c": 1},
    }
    uids = [uid for uids in membership(dataset).values() for uid in uids]
    assert len(uids) == len(set(uids)) == 147


def test_split_depends_only_on_data_and_split_seed(uneven_csv: Path) -> None:
    first = load_dataset(DataOptions(source=str(uneven_csv)))
    again = load_dataset(DataOptions(source=str(uneven_csv)))
    assert membership(first) == membership(again) and first.fingerprint == again.fingerprint
    other_seed = load_dataset(DataOptions(source=str(uneven_csv), split_seed=7))
    assert membership(other_seed)["test"] != membership(first)["test"]
    assert other_seed.report.labels == first.report.labels


def test_uids_are_source_rows(uneven_csv: Path) -> None:
    dataset = load_dataset(DataOptions(source=str(uneven_csv)))
    by_uid = {example.uid: example for name in SPLITS for example in getattr(dataset, name)}
    assert by_uid["row2"].text == "a 문장 0번 오늘 하루"
    assert by_uid["row148"].text == "c 문장 9번 오늘 하루"


def test_fingerprint_covers_content_and_every_choice(tmp_path: Path) -> None:
    directory = write_aihub_dir(tmp_path / "aihub", ".json")
    base = DataOptions(source=f"aihub:{directory}")
    label_map = tmp_path / "map.yaml"
    label_map.write_text("기쁨: 좋음\n당황: 나쁨\n분노: 나쁨\n불안: 나쁨\n상처: 나쁨\n슬픔: 나쁨\n", encoding="utf-8")
    other_map = tmp_path / "other.yaml"
    other_map.write_text("기쁨: 좋음\n당황: 나쁨\n분노: 나쁨\n불안: 나쁨\n상처: 나쁨\n슬픔: null\n", encoding="utf-8")
    variants = [
        base,
        DataOptions(source=base.source, text_field="first-human"),
        DataOptions(source=base.source, text_field="dialogue"),
        DataOptions(source=base.source, label_scheme="merged5"),
        DataOptions(source=base.source, label_scheme="minor"),
        DataOptions(source=base.source, label_map=str(label_map)),
        DataOptions(source=base.source, label_map=str(other_map)),
        DataOptions(source=base.source, split_seed=1),
        DataOptions(source=base.source, dedupe=True),
    ]
    fingerprints = [load_dataset(options).fingerprint for options in variants]
    assert len(set(fingerprints)) == len(variants)
    assert all(len(value) == 64 and int(value, 16) >= 0 for value in fingerprints)


def test_fingerprint_changes_with_one_changed_text(tmp_path: Path) -> None:
    rows = labelled_rows(("a", "b"), 10)
    first = load_dataset(DataOptions(source=str(write_table(tmp_path / "one.csv", rows))))
    rows[4] = ("바뀐 문장", rows[4][1])
    second = load_dataset(DataOptions(source=str(write_table(tmp_path / "two.csv", rows))))
    assert first.fingerprint != second.fingerprint
    assert membership(first) == membership(second)


def test_aihub_training_validation_split_is_the_same_for_every_text_field(tmp_path: Path) -> None:
    directory = write_aihub_dir(tmp_path / "aihub", ".xlsx")
    splits = [
        membership(load_dataset(DataOptions(source=f"aihub:{directory}", text_field=field)))
        for field in ("first-human", "all-human", "dialogue")
    ]
    assert splits[0] == splits[1] == splits[2]


def test_duplicates_are_counted_and_dedupe_removes_them_from_train(tmp_path: Path) -> None:
    rows = labelled_rows(("a", "b"), 30)
    rows += [rows[0], rows[0], rows[1]]  # three extra copies
    path = write_table(tmp_path / "dup.csv", rows)
    dataset = load_dataset(DataOptions(source=str(path)))
    texts = {name: Counter(e.text for e in getattr(dataset, name)) for name in SPLITS}
    within = sum(count - 1 for count in texts["train"].values())
    across = sum(count for text, count in texts["test"].items() if text in texts["train"])
    assert (dataset.report.duplicates_within_train, dataset.report.duplicates_train_test) == (within, across)
    assert within + across + sum(texts["validation"][t] for t in texts["validation"] if t in texts["train"]) > 0
    deduped = load_dataset(DataOptions(source=str(path), dedupe=True))
    assert deduped.report.duplicates_within_train == deduped.report.duplicates_train_test == 0
    held_out = {e.text for e in deduped.validation + deduped.test}
    assert not held_out & {e.text for e in deduped.train}
    assert sum(deduped.report.dropped.values()) == len(dataset.train) - len(deduped.train) > 0
    assert membership(deduped)["test"] == membership(dataset)["test"]


def test_limit_train_is_stratified_deterministic_and_leaves_evaluation_alone(uneven_csv: Path) -> None:
    dataset = load_dataset(DataOptions(source=str(uneven_csv)))
    limited = limit_train(dataset, 20, seed=3)
    assert len(limited.train) == 20
    # 20 of 80/29/8 in proportion: 13.7, 5.0, 1.4 → largest remainders 14, 5, 1
    assert Counter(e.label for e in limited.train) == {"a": 14, "b": 5, "c": 1}
    assert limited.report.rows["train"] == 20 and limited.report.labels["train"] == {"a": 14, "b": 5, "c": 1}
    assert limited.validation == dataset.validation and limited.test == dataset.test
    assert {e.uid for e in limited.train} <= {e.uid for e in dataset.train}
    assert limit_train(dataset, 20, seed=3).train == limited.train
    assert limit_train(dataset, 20, seed=4).train != limited.train
    assert dataset.report.rows["train"] == 117  # the original is not modified
    assert limit_train(dataset, 500, seed=3) is dataset


def test_limit_train_keeps_every_class(uneven_csv: Path) -> None:
    dataset = load_dataset(DataOptions(source=str(uneven_csv)))
    assert {e.label for e in limit_train(dataset, 3, seed=0).train} == {"a", "b", "c"}
    with pytest.raises(UsageError, match="--train-limit 2 is smaller than the 3 classes"):
        limit_train(dataset, 2, seed=0)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=10, max_value=60), min_size=2, max_size=6),
    seed=st.integers(min_value=0, max_value=10**6),
)
def test_every_class_of_ten_or_more_reaches_every_split(sizes: list[int], seed: int) -> None:
    labels = [f"c{index}" for index, size in enumerate(sizes) for _ in range(size)]
    frame = pd.DataFrame({"uid": [f"row{i}" for i in range(len(labels))], "label": labels, "group": None})
    assigned = assign_splits(frame, TRAIN_VALIDATION_TEST, seed)
    per_class = pd.crosstab(frame["label"], assigned)
    assert set(per_class.columns) == set(SPLITS)
    assert (per_class >= 1).all().all()
    for label, size in zip(sorted(set(labels), key=lambda name: int(name[1:])), sizes, strict=True):
        assert abs(per_class.loc[label, "test"] - size / 10) <= 1
        assert abs(per_class.loc[label, "validation"] - size / 10) <= 1


@settings(max_examples=40, deadline=None)
@given(
    dialogue_lengths=st.lists(st.integers(min_value=1, max_value=8), min_size=30, max_size=80),
    seed=st.integers(min_value=0, max_value=10**6),
)
def test_groups_never_straddle_splits(dialogue_lengths: list[int], seed: int) -> None:
    rows = [
        (f"d{d}", f"d{d}u{u}", ("x", "y", "z")[(d + u) % 3])
        for d, length in enumerate(dialogue_lengths)
        for u in range(length)
    ]
    frame = pd.DataFrame(rows, columns=["group", "uid", "label"])
    assigned = assign_splits(frame, TRAIN_VALIDATION_TEST, seed)
    assert (assigned.groupby(frame["group"]).nunique() == 1).all()
    share = assigned.value_counts(normalize=True)
    assert share.get("train", 0) > 0.6
