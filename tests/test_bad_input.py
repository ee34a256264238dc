"""Bad input through the CLI (`bench run`, `bench grid`, `bench data inspect`).

Each case: one line on stderr naming the problem (and the file), exit code 2, and
nothing written to the leaderboard. Every error happens before training, so each
case takes a fraction of a second. The loaders' messages themselves are pinned in
``tests/test_data_errors.py``; this module checks what a user of the CLI sees.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from bench.leaderboard.store import database_path
from tests.conftest import bench, tiny_config_args
from tests.fixtures.data.builders import SEVEN, labelled_rows, write_table

# A bad file: (path, extra options) written into a folder.
BadFile = Callable[[Path], tuple[Path, list[str]]]


def leaderboard_rows(results: Path) -> int:
    """How many runs the leaderboard of ``results`` holds (0 when there is none)."""
    path = database_path(results)
    if not path.exists():
        return 0
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


def assert_one_line_error(code: int, err: str, needle: str) -> None:
    assert code == 2, err
    assert needle in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err


def _text(name: str, content: str, encoding: str = "utf-8") -> BadFile:
    def build(folder: Path) -> tuple[Path, list[str]]:
        path = folder / name
        path.write_bytes(content.encode(encoding))
        return path, []

    return build


def _rows(
    name: str, rows: list[tuple[str, str]], *options: str, columns: tuple[str, str] = ("text", "label")
) -> BadFile:
    def build(folder: Path) -> tuple[Path, list[str]]:
        return write_table(folder / name, rows, columns=columns), list(options)

    return build


def _with_label(value: str, row: int = 3) -> list[tuple[str, str]]:
    rows = labelled_rows(SEVEN[:2], 12)
    rows[row] = (rows[row][0], value)
    return rows


def _binary(folder: Path) -> tuple[Path, list[str]]:
    path = folder / "garbage.csv"
    path.write_bytes(random.Random(7).randbytes(8192))
    return path, []


def _two_sheets(*options: str) -> BadFile:
    def build(folder: Path) -> tuple[Path, list[str]]:
        path = folder / "book.xlsx"
        with pd.ExcelWriter(path) as writer:
            for name in ("train", "extra"):
                frame = pd.DataFrame(labelled_rows(SEVEN[:2], 12, name), columns=["text", "label"])
                frame.to_excel(writer, sheet_name=name, index=False)
        return path, list(options)

    return build


def _corrupt_xlsx(folder: Path) -> tuple[Path, list[str]]:
    path = write_table(folder / "broken.xlsx", labelled_rows(SEVEN[:2], 12))
    path.write_bytes(path.read_bytes()[:700])
    return path, []


def _xlsx_with_empty_label(folder: Path) -> tuple[Path, list[str]]:
    frame = pd.DataFrame(labelled_rows(SEVEN[:2], 12), columns=["text", "label"])
    frame.loc[3, "label"] = float("nan")
    path = folder / "nan.xlsx"
    frame.to_excel(path, index=False)
    return path, []


KOREAN = labelled_rows(SEVEN[:2], 12)
BAD_FILES: dict[str, tuple[BadFile, str]] = {
    "empty file": (_text("empty.csv", ""), "empty.csv: file is empty"),
    "header only": (_text("header.csv", "text,label\n"), "header.csv: no data rows (header only)"),
    "missing text column": (
        _rows("d.csv", KOREAN, "--text-col", "text", columns=("문장", "감정")),
        "d.csv: no text column 'text'; columns found: 문장, 감정",
    ),
    "missing label column": (
        _rows("d.csv", KOREAN, "--label-col", "emotion"),
        "d.csv: no label column 'emotion'; columns found: text, label",
    ),
    "undetectable columns": (
        _rows("d.csv", KOREAN, columns=("body", "mood")),
        "d.csv: cannot tell which column holds the text; columns found: body, mood; pass --text-col",
    ),
    "NaN label in a csv": (
        _rows("nan.csv", _with_label("NaN")),
        "nan.csv: row 5: no label in column 'label' (found 'NaN', a missing-value marker)",
    ),
    "empty label cell in an xlsx": (_xlsx_with_empty_label, "nan.xlsx: row 5: no label in column 'label'"),
    "single class": (
        _rows("one.csv", labelled_rows(("기쁨",), 30)),
        "one.csv: only one label ('기쁨'); classification needs at least two",
    ),
    "class too small for the split": (
        _rows("small.csv", labelled_rows(SEVEN[:2], 12) + labelled_rows(("혐오",), 4)),
        "small.csv: too few examples for a stratified split: '혐오' has 4; each class needs at least 10",
    ),
    "binary garbage": (_binary, "garbage.csv: binary data"),
    "shift_jis text": (
        _text("sjis.csv", "text,label\n" + "".join(f"こんにちは {i},{i % 2}\n" for i in range(30)), "shift_jis"),
        "sjis.csv: unsupported encoding or binary data (neither UTF-8 nor cp949/EUC-KR text)",
    ),
    "utf-16 text": (
        _text("u16.csv", "text,label\n" + "".join(f"안녕 {i},{i % 2}\n" for i in range(30)), "utf-16"),
        "u16.csv: UTF-16/32 text is not supported; save the file as UTF-8",
    ),
    "xlsx with several sheets": (
        _two_sheets(),
        "book.xlsx: workbook has 2 sheets (train, extra); choose one with --sheet",
    ),
    "xlsx without the sheet asked for": (_two_sheets("--sheet", "test"), "book.xlsx: no sheet 'test'; sheets found"),
    "corrupt xlsx": (_corrupt_xlsx, "broken.xlsx: not a readable .xlsx workbook ("),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_data_stops_bench_run_and_inspect_with_one_line(capsys, tmp_path: Path, case: str) -> None:
    build, needle = BAD_FILES[case]
    path, options = build(tmp_path)
    results = tmp_path / "results"
    code, _, err = bench(capsys, "run", "--data", str(path), *options, "--results", str(results), "--no-progress")
    assert_one_line_error(code, err, needle)
    assert str(path) in err
    assert leaderboard_rows(results) == 0
    assert not (results / "runs").exists()

    code, _, err = bench(capsys, "data", "inspect", str(path), *options)
    assert_one_line_error(code, err, needle)


def test_the_sheet_option_picks_one_sheet_of_a_workbook(capsys, tmp_path: Path) -> None:
    path, _ = _two_sheets()(tmp_path)
    code, out, err = bench(capsys, "data", "inspect", str(path), "--sheet", "extra", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert sum(summary["rows"].values()) == 24 and summary["classes"] == sorted(SEVEN[:2])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--encoder", "bert-large"], "unknown encoder 'bert-large'"),
        (["--head", "attention"], "unknown head 'attention'"),
        (["--lr", "-1e-5"], "--lr must be a positive number, got -1e-05"),
        (["--lr", "nan"], "--lr must be a positive number, got nan"),
        (["--head-lr", "0"], "--head-lr must be a positive number, got 0.0"),
        (["--dropout", "1"], "--dropout must be in [0, 1), got 1.0"),
        (["--dropout", "-0.1"], "--dropout must be in [0, 1), got -0.1"),
        (["--batch-size", "-4"], "--batch-size must be at least 1, got -4"),
        (["--epochs", "-1"], "--epochs must be at least 1, got -1"),
        (["--max-len", "7"], "--max-len must be at least 8, got 7"),
    ],
)
def test_bad_model_or_hyperparameter_stops_bench_run_before_anything_is_written(
    capsys, tmp_path: Path, args: list[str], needle: str
) -> None:
    # Boundary values; tests/test_cli_run.py checks the message of the obvious ones (--lr 0, --epochs 0 ...).
    results = tmp_path / "results"
    code, _, err = bench(capsys, "run", *args, "--results", str(results), "--no-progress")
    assert_one_line_error(code, err, needle)
    assert leaderboard_rows(results) == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--heads", "linear,attention"], "unknown head 'attention'"),
        (["--lr", "0.001,0"], "--lr must be a positive number, got 0.0"),
        (["--dropout", "0.1,1"], "--dropout must be in [0, 1), got 1.0"),
        (["--batch-size", "16,0"], "--batch-size must be at least 1, got 0"),
        (["--epochs", "0"], "--epochs must be at least 1, got 0"),
        (["--max-len", "64,4"], "--max-len must be at least 8, got 4"),
    ],
)
def test_bad_grid_values_stop_bench_grid_before_any_run(capsys, tmp_path: Path, args: list[str], needle: str) -> None:
    results = tmp_path / "results"
    code, _, err = bench(capsys, "grid", "--heads", "linear", *args, "--results", str(results), "--no-progress")
    assert_one_line_error(code, err, needle)
    assert leaderboard_rows(results) == 0


def test_a_text_far_longer_than_max_len_is_truncated_and_counted(capsys, tmp_path: Path) -> None:
    rows = labelled_rows(SEVEN[:3], 30)
    rows[::9] = [(" ".join([text] * 400), label) for text, label in rows[::9]]  # 10 texts of ~6000 characters
    path = write_table(tmp_path / "long.csv", rows)
    results = tmp_path / "results"
    code, out, err = bench(
        capsys,
        "run",
        "--data",
        str(path),
        *tiny_config_args(),
        "--epochs",
        "1",
        "--max-len",
        "16",
        "--batch-size",
        "16",
        "--results",
        str(results),
        "--no-progress",
    )
    assert code == 0, err + out
    assert "texts cut to --max-len" in out
    with sqlite3.connect(database_path(results)) as conn:
        status, metrics = conn.execute("SELECT status, metrics FROM runs").fetchone()
    truncated = json.loads(metrics)["truncated"]
    assert status == "finished"
    assert set(truncated) == {"train", "validation", "test"}
    assert sum(truncated.values()) == 10, "the ten long texts, not the short ones (about 10 tokens)"


# ------------------------------------------------------------------ issue 14: ambiguous data, odd paths


def _duplicate_header(suffix: str) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        rows = labelled_rows(("기쁨", "슬픔"), 12)
        path = folder / f"dup{suffix}"
        if suffix == ".jsonl":
            lines = [f'{{"text": {json.dumps(text)}, "label": "{label}", "label": "x"}}' for text, label in rows]
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        else:
            frame = pd.DataFrame([(text, label, label) for text, label in rows], columns=["text", "label", "label"])
            frame.to_excel(path, index=False) if suffix == ".xlsx" else frame.to_csv(path, index=False)
        return path

    return build


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".xlsx"])
def test_a_duplicated_column_header_is_refused_not_silently_the_first(capsys, tmp_path: Path, suffix: str) -> None:
    path = _duplicate_header(suffix)(tmp_path)
    results = tmp_path / "results"
    code, _, err = bench(capsys, "run", "--data", str(path), "--results", str(results), "--no-progress")
    assert_one_line_error(code, err, "the header names more than one column 'label'")
    assert not results.exists()
    code, _, err = bench(capsys, "data", "inspect", str(path), "--label-col", "label")
    assert_one_line_error(code, err, "more than one column 'label'")


def test_the_same_column_for_text_and_label_is_refused_before_anything_is_written(capsys, tmp_path: Path) -> None:
    path = write_table(tmp_path / "d.csv", labelled_rows(("기쁨", "슬픔"), 12))
    results = tmp_path / "results"
    args = ["--data", str(path), "--text-col", "text", "--label-col", "text"]
    code, _, err = bench(capsys, "run", *args, "--results", str(results), "--no-progress")
    assert_one_line_error(code, err, "--text-col and --label-col both name column 'text'")
    assert not results.exists()
    code, _, err = bench(capsys, "data", "inspect", str(path), "--text-col", "text", "--label-col", "text")
    assert_one_line_error(code, err, "both name column 'text'")


def test_numerically_equal_labels_are_refused(capsys, tmp_path: Path) -> None:
    rows = [(f"문장 {index}", ("1", "1.0", "2")[index % 3]) for index in range(36)]
    path = write_table(tmp_path / "numbers.csv", rows)
    code, _, err = bench(capsys, "data", "inspect", str(path))
    assert_one_line_error(code, err, "labels '1' and '1.0' are the same number written differently")
    # A label map that merges the spellings makes the file usable.
    label_map = tmp_path / "map.yaml"
    label_map.write_text('"1": one\n"1.0": one\n"2": two\n', encoding="utf-8")
    code, out, err = bench(capsys, "data", "inspect", str(path), "--label-map", str(label_map), "--json")
    assert code == 0, err
    assert json.loads(out)["classes"] == ["one", "two"]


INVISIBLE_TEXTS = ["\u200b", "\ufeff", "\u200d\u200b", " \u3164 ", "\u2060\t"]


def test_texts_of_invisible_characters_only_are_empty_texts_counted_and_reported(capsys, tmp_path: Path) -> None:
    rows = labelled_rows(("기쁨", "슬픔"), 12) + [(text, "기쁨") for text in INVISIBLE_TEXTS]
    path = write_table(tmp_path / "invisible.csv", rows)
    code, out, err = bench(capsys, "data", "inspect", str(path), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["dropped"] == {"empty text": len(INVISIBLE_TEXTS)}
    assert sum(summary["rows"].values()) == 24
    code, out, _ = bench(capsys, "data", "inspect", str(path))
    assert code == 0 and "empty text" in out


def test_a_leaderboard_path_that_is_a_directory_is_an_error_not_an_empty_board(capsys, tmp_path: Path) -> None:
    results = tmp_path / "results"
    database_path(results).mkdir(parents=True)
    for args in (["leaderboard"], ["export", "--format", "md"], ["show", "abc"], ["report"]):
        code, out, err = bench(capsys, *args, "--results", str(results))
        assert_one_line_error(code, err, "leaderboard.db is a directory, not a file")
        assert "does not exist" not in out + err
    path = write_table(tmp_path / "d.csv", labelled_rows(("기쁨", "슬픔"), 12))
    code, _, err = bench(capsys, "baseline", "--data", str(path), "--kind", "majority", "--results", str(results))
    assert_one_line_error(code, err, "leaderboard.db is a directory, not a file")


def test_symlink_loops_and_folders_are_named_for_what_they_are(capsys, tmp_path: Path) -> None:
    loop = tmp_path / "loop.csv"
    loop.symlink_to(loop)
    code, _, err = bench(capsys, "data", "inspect", str(loop))
    assert_one_line_error(code, err, "loop.csv: a symbolic link loop")
    broken = tmp_path / "broken.csv"
    broken.symlink_to(tmp_path / "gone.csv")
    code, _, err = bench(capsys, "data", "inspect", str(broken))
    assert_one_line_error(code, err, "broken.csv: a broken symbolic link")
    folder = tmp_path / "map"
    folder.mkdir()
    code, _, err = bench(capsys, "data", "inspect", "--label-map", str(folder))
    assert_one_line_error(code, err, "map: the label map is a directory, not a file")


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--data", "missing.csv"],
        ["run", "--encoder", "nope"],
        ["run", "--head", "mlp", "--head-param", "hidden=-3"],
        ["run", "--text-col", "text", "--label-col", "text"],
        ["baseline", "--data", "missing.csv"],
        ["baseline", "--text-col", "text", "--label-col", "text"],
        ["baseline", "--kind", "nope"],
        ["baseline", "--c-grid", "x"],
    ],
)
def test_refused_inputs_create_no_results_folder_and_no_leaderboard(capsys, tmp_path: Path, args: list[str]) -> None:
    results = tmp_path / "results"
    extra = ["--no-progress", *tiny_config_args()] if args[0] == "run" else []
    code, _, err = bench(capsys, *args, "--results", str(results), *extra)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert not results.exists()
