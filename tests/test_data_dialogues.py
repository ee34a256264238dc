"""Multi-turn data (연속적 대화): where dialogues start, splitting by whole dialogues, what inspect reports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main
from bench.data import DataOptions, SplitDataset, load_dataset
from bench.data.split import SPLITS
from bench.errors import DataError
from tests.fixtures.data.builders import SEVEN, multi_turn_rows, write_multi_turn


def dialogue_of(text: str) -> str:
    """The dialogue number the fixtures write into each utterance (``대화 N의 ...``)."""
    match = re.match(r"대화 (\d+)의", text)
    assert match, text
    return match.group(1)


def groups_by_split(dataset: SplitDataset) -> dict[str, set[str]]:
    return {name: {example.group for example in getattr(dataset, name)} for name in SPLITS}


def assert_whole_dialogues(dataset: SplitDataset, dialogues: int) -> None:
    """Each group is exactly one written dialogue, and no dialogue is in two splits."""
    members: dict[str, set[str]] = {}
    for name in SPLITS:
        for example in getattr(dataset, name):
            members.setdefault(example.group, set()).add(dialogue_of(example.text))
    assert len(members) == dialogues
    assert all(len(numbers) == 1 for numbers in members.values())
    by_split = groups_by_split(dataset)
    assert not by_split["train"] & by_split["validation"] and not by_split["train"] & by_split["test"]
    assert not by_split["validation"] & by_split["test"]
    assert all(by_split[name] for name in SPLITS)


def test_published_layout_s_markers_start_dialogues_and_unlabelled_rows_are_counted(tmp_path: Path) -> None:
    path = write_multi_turn(tmp_path / "multi.xlsx", dialogues=40, unlabelled=(0, 9, 22))
    written = len(multi_turn_rows(40))
    dataset = load_dataset(DataOptions(source=str(path)))  # detected from the `dialog #` column
    assert dataset.name == "multi-turn:multi.xlsx"
    assert dataset.labels == SEVEN
    # Row 0 is the first, S-marked utterance of dialogue 1: dropped for its missing label, its dialogue still starts.
    assert dataset.report.dropped == {"missing label": 3}
    assert sum(dataset.report.rows.values()) == written - 3
    assert_whole_dialogues(dataset, 40)
    assert sum(dataset.report.groups.values()) == 40
    assert dataset.report.groups == {name: len(groups_by_split(dataset)[name]) for name in SPLITS}
    assert dataset.report.split_rule == "one file split 80/10/10 by whole dialogue"
    assert dataset.report.warnings == []


def test_the_fixture_reproduces_the_published_columns(tmp_path: Path) -> None:
    frame = pd.read_excel(write_multi_turn(tmp_path / "multi.xlsx"), engine="calamine", dtype=str)
    columns = [str(name) for name in frame.columns]
    assert columns[:3] == ["dialog #", "발화", "감정"]
    assert len(columns) == 3 + 9 and "55628" in columns
    assert set(frame["dialog #"].dropna()) == {"S"}
    assert frame["감정"].isna().sum() == 3


def test_dialogues_are_stratified_by_their_rarest_label(tmp_path: Path) -> None:
    dataset = load_dataset(DataOptions(source=str(write_multi_turn(tmp_path / "multi.xlsx", dialogues=200))))
    assert_whole_dialogues(dataset, 200)
    for label in SEVEN:
        assert all(dataset.report.labels[name].get(label, 0) > 0 for name in SPLITS), label


def write_rows(path: Path, rows: list[list[object]]) -> Path:
    pd.DataFrame(rows, columns=["dialog #", "발화", "감정"]).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("ids", ["first-row", "every-row", "strings"])
def test_numbered_ids_start_dialogues(tmp_path: Path, ids: str) -> None:
    rows = multi_turn_rows(40, unlabelled=())
    number = 0
    for row in rows:
        number += row[0] == "S"
        identifier = f"D{number:03d}" if ids == "strings" else number
        row[0] = identifier if row[0] == "S" or ids != "first-row" else None
    dataset = load_dataset(DataOptions(source=f"multi-turn:{write_rows(tmp_path / 'm.csv', rows)}"))
    assert_whole_dialogues(dataset, 40)


def test_blank_separator_rows_start_dialogues(tmp_path: Path) -> None:
    rows: list[list[object]] = []
    for row in multi_turn_rows(40, unlabelled=()):
        if row[0] == "S" and rows:
            rows.append([None, None, None])
        rows.append([None, row[1], row[2]])
    dataset = load_dataset(DataOptions(source=f"multi-turn:{write_rows(tmp_path / 'm.csv', rows)}"))
    assert_whole_dialogues(dataset, 40)
    assert dataset.report.dropped == {"blank row": 39}


@pytest.mark.parametrize("marker", ["id filled down", "first row only"])
def test_a_column_that_makes_one_dialogue_is_an_error(tmp_path: Path, marker: str) -> None:
    rows = multi_turn_rows(40, unlabelled=())
    for index, row in enumerate(rows):
        row[0] = "1" if marker == "id filled down" else "S" if index == 0 else None
    with pytest.raises(
        DataError,
        match=r"m\.csv: the validation and test splits are empty \(1 dialogues to split\)"
        r": .*one dialogue holds \d+ of \d+ utterances",
    ):
        load_dataset(DataOptions(source=f"multi-turn:{write_rows(tmp_path / 'm.csv', rows)}"))


def test_one_giant_dialogue_among_others_is_a_warning(tmp_path: Path) -> None:
    rows = multi_turn_rows(60, unlabelled=())
    starts = [index for index, row in enumerate(rows) if row[0] == "S"]
    for index in starts[1:30]:
        rows[index][0] = None  # the first 30 dialogues lose their markers and run together
    dataset = load_dataset(DataOptions(source=f"multi-turn:{write_rows(tmp_path / 'm.csv', rows)}"))
    assert sum(dataset.report.groups.values()) == 31
    assert len(dataset.report.warnings) == 1
    assert re.match(
        r".*m\.csv: one dialogue holds 1\d\d of 2\d\d utterances \(\d+%\); column 'dialog #' "
        r"was read as start marker",
        dataset.report.warnings[0],
    )


def test_a_marker_on_every_row_is_a_warning(tmp_path: Path) -> None:
    rows = multi_turn_rows(40, unlabelled=())
    for row in rows:
        row[0] = "S"
    dataset = load_dataset(DataOptions(source=f"multi-turn:{write_rows(tmp_path / 'm.csv', rows)}"))
    assert dataset.report.warnings == [
        f"{tmp_path / 'm.csv'}: every one of the {len(rows)} utterances is its own dialogue; column 'dialog #' "
        "was read as start marker: mark only each dialogue's first utterance"
    ]


def test_an_utterance_before_the_first_dialogue_start_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("dialog #,발화,감정\n,첫 줄,중립\nS,둘째,중립\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"m\.csv: row 2: utterance before the first dialogue start in 'dialog #'"):
        load_dataset(DataOptions(source=f"multi-turn:{path}"))


def test_inspect_reports_dialogues_per_split_and_the_split_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_multi_turn(tmp_path / "multi.xlsx", dialogues=40)
    main(["data", "inspect", str(path), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["split_rule"] == "one file split 80/10/10 by whole dialogue"
    assert sum(summary["dialogues"].values()) == 40
    assert summary["dropped"] == {"missing label": 3}
    main(["data", "inspect", str(path)])
    out = capsys.readouterr().out
    assert "Split: one file split 80/10/10 by whole dialogue" in out
    counts = summary["dialogues"]
    rows = summary["rows"]
    assert f"Dialogues (utterances): train {counts['train']} ({rows['train']})" in out
    assert "missing label" in out
