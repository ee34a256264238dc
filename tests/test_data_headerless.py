"""Tables without a header row: detected when columns cannot be found, read with --no-header and column numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.data import DataOptions, load_dataset
from bench.data.readers import first_row_is_data
from bench.data.split import SPLITS
from bench.errors import DataError, UsageError
from tests.fixtures.data.builders import labelled_rows

ROWS = labelled_rows(("기쁨", "슬픔", "분노"), 12)


def write_headerless(path: Path, separator: str = "\t") -> Path:
    """id, text, label on every line, no header (KOTE-like)."""
    path.write_text(
        "".join(f"{i}{separator}{text}{separator}{label}\n" for i, (text, label) in enumerate(ROWS)), encoding="utf-8"
    )
    return path


def test_a_first_row_of_data_is_detected_and_the_error_names_the_options(tmp_path: Path) -> None:
    path = write_headerless(tmp_path / "h.tsv")
    with pytest.raises(DataError) as raised:
        load_dataset(DataOptions(source=str(path)))
    message = str(raised.value)
    assert message == (
        f"{path}: cannot tell which column holds the text: the first row looks like data, not a header "
        f"(0, 기쁨 문장 0번 오늘 하루, 기쁨); if the file has no header row, pass --no-header with --text-col and "
        "--label-col as column numbers (from 1)"
    )


@pytest.mark.parametrize("suffix", [".tsv", ".csv"])
def test_no_header_reads_columns_by_number(tmp_path: Path, suffix: str) -> None:
    path = write_headerless(tmp_path / f"h{suffix}", "\t" if suffix == ".tsv" else ",")
    dataset = load_dataset(DataOptions(source=str(path), no_header=True, text_col="2", label_col="3"))
    examples = [example for name in SPLITS for example in getattr(dataset, name)]
    assert len(examples) == len(ROWS)  # the first line is an example, not a header
    assert {(example.text, example.label) for example in examples} == set(ROWS)
    assert any(example.uid == "row1" for example in examples)
    assert dataset.labels == ("기쁨", "분노", "슬픔")


def test_no_header_xlsx(tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "h.xlsx"
    pd.DataFrame([(text, label) for text, label in ROWS]).to_excel(path, index=False, header=False)
    dataset = load_dataset(DataOptions(source=str(path), no_header=True, text_col="1", label_col="2"))
    assert sum(dataset.report.rows.values()) == len(ROWS)


def test_no_header_errors_name_the_option(tmp_path: Path) -> None:
    path = write_headerless(tmp_path / "h.tsv")
    with pytest.raises(DataError, match=r"h\.tsv: --no-header needs --text-col to give the text column's number"):
        load_dataset(DataOptions(source=str(path), no_header=True))
    with pytest.raises(DataError, match=r"h\.tsv: --label-col '5' is not a column number; the file has columns 1 to 3"):
        load_dataset(DataOptions(source=str(path), no_header=True, text_col="2", label_col="5"))
    with pytest.raises(UsageError, match=r"--no-header applies to plain tables \(file:PATH\), not to multi-turn"):
        load_dataset(DataOptions(source=f"multi-turn:{path}", no_header=True))
    jsonl = tmp_path / "h.jsonl"
    jsonl.write_text('{"text": "a", "label": "b"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"h\.jsonl: --no-header applies to \.csv, \.tsv and \.xlsx files only"):
        load_dataset(DataOptions(source=str(jsonl), no_header=True, text_col="1", label_col="2"))


def test_error_messages_cap_the_columns_they_list(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    header = ",".join(f"열{index}" for index in range(200))
    path.write_text(header + "\n" + ",".join("x" for _ in range(200)) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as raised:
        load_dataset(DataOptions(source=str(path)))
    assert "and 192 more" in str(raised.value) and len(str(raised.value)) < 300


@pytest.mark.parametrize(
    ("columns", "is_data"),
    [
        (["text", "label"], False),
        (["dialog #", "발화", "감정"], False),
        (["Sentence", "Emotion"], False),
        (["0", "그냥 내 느낌일 뿐이겠지?", "2,13"], True),
        (["오늘 정말 너무 행복한 하루였다", "기쁨"], True),
        (["좋아요!", "기쁨"], True),
    ],
)
def test_first_row_is_data(columns: list[str], is_data: bool) -> None:
    assert first_row_is_data(columns) is is_data


def test_cli_no_header(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_headerless(tmp_path / "h.tsv")
    main(["data", "inspect", str(path), "--no-header", "--text-col", "2", "--label-col", "3", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert sum(summary["rows"].values()) == len(ROWS)
    with pytest.raises(SystemExit) as raised:
        main(["data", "inspect", str(path)])
    assert raised.value.code == 2
    assert "--no-header" in capsys.readouterr().err
