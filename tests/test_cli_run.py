"""`bench run` end to end for every encoder × head, the JSON export, and one-line CLI errors."""

from __future__ import annotations

import json

import pytest

from heads import list_heads
from tests.conftest import SHARED, bench, tiny_config_args

HEADS = sorted(list_heads())
ENCODERS = {
    "scratch": [],
    "kobert": ["--encoder-path", str(SHARED / "models" / "kobert")],
    "koelectra": ["--encoder-path", str(SHARED / "models" / "koelectra-small-v3")],
}


@pytest.mark.slow
def test_every_encoder_and_head_runs_and_is_exported(capsys, results_dir):
    if not SHARED.exists():
        pytest.skip("../shared is absent: kobert/koelectra tokenizer files are needed")
    expected = set()
    for encoder, extra in ENCODERS.items():
        for head in HEADS:
            code, out, err = bench(
                capsys,
                "run",
                "--encoder",
                encoder,
                "--head",
                head,
                *extra,
                "--random-init",
                *tiny_config_args(),
                "--train-limit",
                "300",
                "--epochs",
                "1",
                "--max-len",
                "48",
                "--results",
                str(results_dir),
                "--no-progress",
            )
            assert code == 0, f"{encoder}/{head}: {err}{out}"
            expected.add((encoder, head))
    code, out, err = bench(capsys, "export", "--results", str(results_dir), "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    assert {(row["encoder"], row["head"]) for row in rows} == expected
    for row in rows:
        assert {"run_id", "encoder", "head", "seed", "dataset", "status", "macro_f1", "accuracy"} <= set(row)
        assert row["status"] == "finished" and 0 <= row["macro_f1"] <= 1


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "--encoder", "nope"], "unknown encoder 'nope'"),
        (["run", "--head", "transformer"], "unknown head 'transformer'"),
        (["run", "--data", "/no/such/file.csv"], "/no/such/file.csv"),
        (["run", "--lr", "0"], "--lr must be a positive number"),
        (["run", "--dropout", "1.5"], "--dropout must be in [0, 1)"),
        (["run", "--batch-size", "0"], "--batch-size must be at least 1"),
        (["run", "--epochs", "0"], "--epochs must be at least 1"),
        (["run", "--max-len", "4"], "--max-len must be at least 8"),
        (["run", "--epochs", "two"], "Invalid value for '--epochs'"),
        (["run", "--head-param", "width"], "KEY=VALUE"),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(capsys, results_dir, args, needle):
    code, out, err = bench(capsys, *args, "--results", str(results_dir))
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1, err


def test_missing_column_names_the_column(capsys, results_dir, tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("문장,감정\n오늘 기분이 좋다,기쁨\n", encoding="utf-8")
    code, _, err = bench(capsys, "run", "--data", str(path), "--text-col", "text", "--results", str(results_dir))
    assert code == 2 and "text" in err and str(path) in err
    assert len(err.strip().splitlines()) == 1
    code, out, _ = bench(capsys, "export", "--results", str(results_dir), "--format", "json")
    assert code == 0 and json.loads(out or "[]") == []
