"""``bench data inspect``: tables, ``--json``, token lengths, and one-line errors with exit code 2."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from bench.cli import main
from bench.data import DataOptions, inspect_dataset, load_dataset
from encoders.base import Encoding, TextTokenizer
from tests.conftest import shared_path
from tests.fixtures.data.builders import labelled_rows, write_aihub_dir, write_table


def inspect_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    main(["data", "inspect", *args, "--json"])
    return json.loads(capsys.readouterr().out)


def test_inspect_json_reports_rows_labels_and_drops(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "d.csv"
    body = "".join(f"문장 {i},{'기쁨' if i % 2 else '슬픔'}\n" for i in range(40))
    path.write_text("text,label\n" + body + " ,기쁨\n문장 0,슬픔\n", encoding="utf-8")
    summary = inspect_json(capsys, str(path))
    assert summary["rows"] == {"train": 33, "validation": 4, "test": 4}
    assert summary["labels"]["validation"] == {"기쁨": 2, "슬픔": 2}
    assert summary["dropped"] == {"empty text": 1}
    assert summary["empty_texts"] == 1
    assert summary["classes"] == ["기쁨", "슬픔"]
    assert summary["encoding"] == "utf-8"
    assert summary["length"]["chars"]["max"] == 5
    assert "tokens" not in summary["length"]
    assert sum(summary["duplicates"].values()) <= 1


def test_inspect_json_passes_data_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = write_aihub_dir(tmp_path / "aihub", ".xlsx")
    summary = inspect_json(
        capsys, f"aihub:{directory}", "--labels", "merged5", "--text-field", "dialogue", "--split-seed", "3"
    )
    options = DataOptions(source=f"aihub:{directory}", label_scheme="merged5", text_field="dialogue", split_seed=3)
    assert summary == inspect_dataset(load_dataset(options), None, 128)
    assert summary["classes"] == ["기쁨", "당황", "분노", "불안", "슬픔"]


def test_inspect_renders_tables(capsys: pytest.CaptureFixture[str]) -> None:
    main(["data", "inspect"])
    out = capsys.readouterr().out
    assert "sample" in out and "Rows per split and label" in out and "No rows dropped." in out
    assert "상처" in out and "576" in out and "720" in out


def test_inspect_counts_tokens_with_a_real_tokenizer(capsys: pytest.CaptureFixture[str]) -> None:
    folder = shared_path("models/koelectra-small-v3")
    summary = inspect_json(
        capsys, "sample", "--encoder", "koelectra-small", "--encoder-path", str(folder), "--max-len", "12"
    )
    tokens = summary["length"]["tokens"]
    assert summary["max_len"] == 12
    assert tokens["max"] >= tokens["p95"] >= tokens["mean"] > 2
    assert 0 < tokens["over_max_len"] < 1


def test_inspect_errors_are_one_line_with_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_table(tmp_path / "d.csv", labelled_rows(("a",), 20))
    with pytest.raises(SystemExit) as exited:
        main(["data", "inspect", str(path)])
    assert exited.value.code == 2
    assert capsys.readouterr().err == f"error: {path}: only one label ('a'); classification needs at least two\n"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--max-len", "0"], "--max-len must be at least 8"),  # the same check as a run's --max-len
        (["--encoder-path", "x"], "--encoder-path needs --encoder"),
        (["--labels", "nine"], "--labels must be one of major6, merged5, minor"),
    ],
)
def test_inspect_usage_errors(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["data", "inspect", "sample", *args])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_inspect_counts_tokens_with_the_scratch_tokenizer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # the trained tokenizer is cached under results/cache, as for `bench run`
    summary = inspect_json(capsys, "sample", "--encoder", "scratch", "--max-len", "128")
    assert summary["length"]["tokens"]["over_max_len"] == 0.0
    assert summary["length"]["tokens"]["max"] > summary["length"]["tokens"]["mean"] > 2
    assert (tmp_path / "results" / "cache").is_dir()


class CharacterTokenizer(TextTokenizer):
    """One token per character plus [CLS] and [SEP]: lengths are easy to predict."""

    pad_id = 0
    vocab_size = 2

    def tokenize(self, text: str) -> list[str]:
        return list(text)

    def encode(self, text: str, pair: str | None = None, max_len: int | None = None) -> Encoding:
        ids = [1] * (len(text) + 2)
        return Encoding(ids=ids, token_type_ids=[0] * len(ids), pieces=["[CLS]", *text, "[SEP]"])

    def encode_batch(self, texts: Sequence[str], max_len: int) -> list[list[int]]:
        return [[1] * min(len(text) + 2, max_len) for text in texts]

    def save(self, directory: Path) -> None:
        raise NotImplementedError


def test_inspect_dataset_token_lengths_are_untruncated(tmp_path: Path) -> None:
    rows = [("가" * length, "ab"[length % 2]) for length in range(1, 41)]  # 1..40 characters
    dataset = load_dataset(DataOptions(source=str(write_table(tmp_path / "d.csv", rows))))
    summary = inspect_dataset(dataset, CharacterTokenizer(), max_len=22)
    assert summary["length"]["chars"] == {"mean": 20.5, "p95": 38.05, "max": 40, "over_max_len": 0.45}
    assert summary["length"]["tokens"] == {"mean": 22.5, "p95": 40.05, "max": 42, "over_max_len": 0.5}
    assert summary["warnings"] == ["50.0% of texts are longer than --max-len 22 tokens and will be truncated"]


def test_inspect_without_an_encoder_warns_of_truncation_from_character_lengths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [("가" * length, "ab"[length % 2]) for length in range(1, 41)]  # 1..40 characters
    path = write_table(tmp_path / "d.csv", rows)
    summary = inspect_json(capsys, str(path), "--max-len", "30")
    assert summary["length"]["chars"]["over_max_len"] == 0.25
    assert summary["split_rule"] == "one file split 80/10/10"
    assert summary["dialogues"] == {}
    assert summary["warnings"] == [
        "25.0% of texts are longer than 30 characters and may be truncated at --max-len 30 tokens; "
        "pass --encoder to count tokens"
    ]
    main(["data", "inspect", str(path), "--max-len", "30"])
    out = capsys.readouterr().out
    assert "Split: one file split 80/10/10" in out and "warning:" in out and "25.0% of texts" in out
    assert "Dialogues" not in out
    assert inspect_json(capsys, str(path), "--max-len", "40")["warnings"] == []
