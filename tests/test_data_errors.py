"""Bad input: each case is one :class:`DataError` on one line naming the file and the problem."""

from __future__ import annotations

import json
import os
import random
import zipfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from bench.data import DataOptions, load_dataset
from bench.errors import DataError
from tests.fixtures.data.builders import aihub_frame, labelled_rows, write_aihub_dir, write_table


def load_error(source: Path | str, **options: object) -> str:
    """The message of the DataError that loading ``source`` raises; it must be one line naming the file."""
    with pytest.raises(DataError) as caught:
        load_dataset(DataOptions(source=str(source), **options))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path: Path) -> None:
    assert load_error(tmp_path / "nope.csv") == f"{tmp_path / 'nope.csv'}: no such file"


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "blank.csv").write_text("\n\n  \n", encoding="utf-8")
    assert load_error(tmp_path / "empty.csv").endswith("empty.csv: file is empty")
    assert load_error(tmp_path / "blank.csv").endswith("blank.csv: file is empty")


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".xlsx"])
def test_header_only(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"header{suffix}"
    if suffix == ".xlsx":
        pd.DataFrame(columns=["text", "label"]).to_excel(path, index=False)
    else:
        path.write_text("text\tlabel\n" if suffix == ".tsv" else "text,label\n", encoding="utf-8")
    assert load_error(path).endswith(f"header{suffix}: no data rows (header only)")


def test_missing_columns_are_named_with_the_columns_found(tmp_path: Path) -> None:
    path = write_table(tmp_path / "d.csv", labelled_rows(("a", "b"), 10), columns=("body", "mood"))
    assert load_error(path).endswith(
        "d.csv: cannot tell which column holds the text; columns found: body, mood; pass --text-col"
    )
    assert load_error(path, text_col="body").endswith(
        "d.csv: cannot tell which column holds the label; columns found: body, mood; pass --label-col"
    )
    assert load_error(path, text_col="body", label_col="emotion").endswith(
        "d.csv: no label column 'emotion'; columns found: body, mood"
    )
    assert load_error(path, text_col="sentence", label_col="mood").endswith(
        "d.csv: no text column 'sentence'; columns found: body, mood"
    )


def test_missing_labels_name_their_rows(tmp_path: Path) -> None:
    rows = labelled_rows(("a", "b"), 10)
    rows[3] = (rows[3][0], "")
    rows[7] = (rows[7][0], "  ")
    path = write_table(tmp_path / "d.csv", rows)
    # Header is row 1, so the 4th and 8th data rows are rows 5 and 9.
    assert load_error(path).endswith("d.csv: rows 5, 9: no label in column 'label'")
    xlsx = write_table(tmp_path / "d.xlsx", rows)
    assert load_error(xlsx).endswith("d.xlsx: rows 5, 9: no label in column 'label'")


def test_many_missing_labels_are_summarised(tmp_path: Path) -> None:
    rows = [(text, "" if index % 2 else label) for index, (text, label) in enumerate(labelled_rows(("a", "b"), 10))]
    assert load_error(write_table(tmp_path / "d.csv", rows)).endswith(
        "d.csv: rows 3, 5, 7, 9, 11 and 5 more: no label in column 'label'"
    )


def test_single_class(tmp_path: Path) -> None:
    assert load_error(write_table(tmp_path / "d.csv", labelled_rows(("a",), 30))).endswith(
        "d.csv: only one label ('a'); classification needs at least two"
    )


def test_class_too_small_for_the_split(tmp_path: Path) -> None:
    rows = labelled_rows(("a", "b"), 20) + labelled_rows(("c",), 9)
    assert load_error(write_table(tmp_path / "d.csv", rows)).endswith(
        "d.csv: too few examples for a stratified split: 'c' has 9; each class needs at least 10 "
        "(merge or drop small classes with --label-map)"
    )


def test_binary_garbage(tmp_path: Path) -> None:
    garbage = random.Random(0).randbytes(4096)
    (tmp_path / "garbage.csv").write_bytes(garbage)
    assert "garbage.csv: binary data" in load_error(tmp_path / "garbage.csv")
    (tmp_path / "controls.csv").write_bytes(bytes(range(1, 32)) * 50)
    assert "controls.csv: binary data (control characters)" in load_error(tmp_path / "controls.csv")


@pytest.mark.parametrize(
    "encoding, expected",
    [
        ("utf-16", "UTF-16/32 text is not supported; save the file as UTF-8"),
        ("utf-16-le", "binary data (NUL bytes), not a text table; UTF-16 text must be saved as UTF-8"),
        ("shift_jis", "unsupported encoding or binary data (neither UTF-8 nor cp949/EUC-KR text)"),
        ("cp1252", "unsupported encoding or binary data (neither UTF-8 nor cp949/EUC-KR text)"),
    ],
)
def test_unsupported_encodings(tmp_path: Path, encoding: str, expected: str) -> None:
    text = {"shift_jis": "こんにちは世界", "cp1252": "Élève été à Noël"}.get(encoding, "안녕하세요")
    path = tmp_path / "d.csv"
    path.write_bytes(("text,label\n" + "".join(f"{text} {i},{i % 2}\n" for i in range(30))).encode(encoding))
    assert load_error(path) == f"{path}: {expected}"


def test_xlsx_with_several_sheets_needs_a_sheet(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as writer:
        for name in ("train", "extra"):
            pd.DataFrame(labelled_rows(("a", "b"), 10), columns=["text", "label"]).to_excel(
                writer, sheet_name=name, index=False
            )
    assert load_error(path).endswith("book.xlsx: workbook has 2 sheets (train, extra); choose one with --sheet")
    assert load_error(path, sheet="test").endswith("book.xlsx: no sheet 'test'; sheets found: train, extra")
    csv = write_table(tmp_path / "d.csv", labelled_rows(("a", "b"), 10))
    assert load_error(csv, sheet="train").endswith("d.csv: --sheet applies to .xlsx files only")


def _not_a_zip(path: Path) -> None:
    path.write_text("text,label\n안녕,a\n", encoding="utf-8")


def _zip_without_workbook(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hi")


def _truncated(path: Path) -> None:
    write_table(path, labelled_rows(("a", "b"), 10))
    path.write_bytes(path.read_bytes()[:600])


@pytest.mark.parametrize("corrupt", [_not_a_zip, _zip_without_workbook, _truncated])
def test_corrupt_xlsx(tmp_path: Path, corrupt: Callable[[Path], None]) -> None:
    path = tmp_path / "broken.xlsx"
    corrupt(path)
    assert f"{path}: not a readable .xlsx workbook (" in load_error(path)


def test_unsupported_file_type(tmp_path: Path) -> None:
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0" + os.urandom(100))
    assert load_error(tmp_path / "old.xls").endswith(
        "old.xls: unsupported file type '.xls'; use one of .csv, .tsv, .jsonl, .xlsx"
    )


def test_malformed_csv_and_jsonl(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text('text,label\n"unclosed,a\n', encoding="utf-8")
    assert "d.csv: cannot parse as CSV:" in load_error(tmp_path / "d.csv")
    (tmp_path / "d.jsonl").write_text('{"text": "a", "label": "x"}\n{"text": \n', encoding="utf-8")
    assert load_error(tmp_path / "d.jsonl").endswith("d.jsonl: line 2: invalid JSON (Expecting value)")
    (tmp_path / "e.jsonl").write_text('["a", "x"]\n', encoding="utf-8")
    assert load_error(tmp_path / "e.jsonl").endswith("e.jsonl: line 1: expected a JSON object, got list")


@pytest.mark.parametrize(
    "content, suffix, problem",
    [
        ("a: [x, y]\n", ".yaml", "label map entry 'a': ['x', 'y'] must map a label to a label or null"),
        ("- a\n- b\n", ".yaml", "label map must be a non-empty mapping 'source label: target label'"),
        ("a: x\n  b: : y\n", ".yaml", "label map is not valid YAML"),
        ('{"a": "x",}', ".json", "label map is not valid JSON"),
        ("", ".yaml", "label map must be a non-empty mapping"),
    ],
)
def test_bad_label_map(tmp_path: Path, content: str, suffix: str, problem: str) -> None:
    data = write_table(tmp_path / "d.csv", labelled_rows(("a", "b"), 10))
    label_map = tmp_path / f"map{suffix}"
    label_map.write_text(content, encoding="utf-8")
    assert load_error(data, label_map=str(label_map)).startswith(f"{label_map}: {problem}")


def test_missing_label_map(tmp_path: Path) -> None:
    data = write_table(tmp_path / "d.csv", labelled_rows(("a", "b"), 10))
    assert load_error(data, label_map=str(tmp_path / "nope.yaml")) == f"{tmp_path / 'nope.yaml'}: label map not found"


def test_label_map_that_drops_everything(tmp_path: Path) -> None:
    data = write_table(tmp_path / "d.csv", labelled_rows(("a", "b"), 10))
    label_map = tmp_path / "map.yaml"
    label_map.write_text("a: null\nb: null\n", encoding="utf-8")
    assert load_error(data, label_map=str(label_map)).endswith(
        "d.csv: no usable rows left (dropped: dropped by label map 20)"
    )


def test_aihub_directory_problems(tmp_path: Path) -> None:
    only_training = tmp_path / "half"
    write_aihub_dir(only_training, ".xlsx")
    next(only_training.glob("*_Validation.xlsx")).unlink()
    assert load_error(f"aihub:{only_training}") == (
        f"{only_training}: no *_Validation.xlsx or *_Validation.json file found; "
        "pass a single file to split it 80/10/10"
    )
    zipped = tmp_path / "zipped"
    zipped.mkdir()
    with zipfile.ZipFile(zipped / "감성대화말뭉치(최종데이터)_Training.zip", "w") as archive:
        archive.writestr("x.json", "[]")
    assert load_error(f"aihub:{zipped}").endswith("unzip 감성대화말뭉치(최종데이터)_Training.zip first")
    twice = tmp_path / "twice"
    write_aihub_dir(twice / "a", ".xlsx")
    write_aihub_dir(twice / "b", ".xlsx")
    assert "several Training .xlsx files" in load_error(f"aihub:{twice}")
    assert load_error(f"aihub:{tmp_path / 'absent'}") == f"{tmp_path / 'absent'}: no such file or directory"


def test_aihub_file_problems(tmp_path: Path) -> None:
    plain = write_table(tmp_path / "plain.xlsx", labelled_rows(("a", "b"), 10))
    assert "plain.xlsx: not an AI Hub 감성 대화 table (needs 감정_대분류" in load_error(f"aihub:{plain}")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('[{"profile": {}}]', encoding="utf-8")
    assert load_error(bad_json).endswith(
        "bad.json: dialogue 1: expected profile.emotion.type and talk.content (AI Hub 감성 대화 format)"
    )
    bad_json.write_text('{"not": "a list"}', encoding="utf-8")
    assert "bad.json: expected a non-empty JSON list of dialogues" in load_error(bad_json)
    bad_json.write_text('[{"profile": ', encoding="utf-8")
    assert "bad.json: invalid JSON at line 1" in load_error(bad_json)
    frame = aihub_frame(10)
    frame.loc[[2, 5], "감정_대분류"] = None
    missing = tmp_path / "missing.xlsx"
    frame.to_excel(missing, index=False)
    assert load_error(missing).endswith("missing.xlsx: rows 4, 7: no label in column '감정_대분류'")


def test_aihub_columns_with_text_col_is_a_usage_error(tmp_path: Path) -> None:
    from bench.errors import UsageError

    directory = write_aihub_dir(tmp_path / "aihub", ".json")
    with pytest.raises(UsageError, match="--text-col/--label-col do not apply to aihub data"):
        load_dataset(DataOptions(source=f"aihub:{directory}", text_col="사람문장1"))


def test_json_files_must_be_valid_aihub_json(tmp_path: Path) -> None:
    path = tmp_path / "records.json"
    path.write_text(json.dumps([{"text": "a", "label": "b"}]), encoding="utf-8")
    assert "records.json: dialogue 1: expected profile.emotion.type" in load_error(path)


def test_byte_order_mark_followed_by_other_bytes(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "text,label\n안녕,a\n".encode("cp949"))
    assert load_error(path) == f"{path}: starts with a UTF-8 byte-order mark but byte 14 is not UTF-8"
