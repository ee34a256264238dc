"""Leaderboard exports: csv, md, latex, html and json for the runs and groups views."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from bench.errors import UsageError
from bench.escaping import latex as latex_escape
from bench.leaderboard import stats
from bench.leaderboard.export import FORMATS, export
from tests.leaderboard_helpers import make_config, make_metrics, make_record

GOLD = [0, 1, 2, 0, 1, 2]


def _records():
    """Three finished runs on one dataset (best: seed 2) and one on another, one failed run."""
    runs = []
    settings = ((1, [0, 1, 2, 0, 1, 1], 30.0), (2, GOLD, 40.0), (3, [0, 0, 2, 0, 1, 1], 20.0))
    for seed, predicted, train_seconds in settings:
        metrics = make_metrics(
            GOLD,
            predicted,
            timings={"train_seconds": train_seconds, "latency_ms_batch1": 2.5},
            total_params=110_000_000,
            trainable_params=600_000,
        )
        runs.append(make_record(make_config(seed=seed), metrics.macro_f1, metrics.accuracy, metrics=metrics))
    other = make_metrics(GOLD, [0, 1, 2, 2, 1, 2])
    runs.append(
        make_record(
            make_config(encoder="hf:my_org/ko_model", seed=1),
            other.macro_f1,
            other.accuracy,
            fingerprint="fp-b",
            dataset="aihub_multi",
            metrics=other,
        )
    )
    failed = make_record(make_config(seed=9), 0.0, 0.0)
    failed.status, failed.macro_f1, failed.accuracy, failed.error = "failed", None, None, "RuntimeError: boom"
    return [*runs, failed]


def test_markdown_bolds_the_best_value_per_column() -> None:
    records = _records()
    text = export(records, "md")
    assert text.count("### ") == 2  # one table per fingerprint
    best_line = next(line for line in text.splitlines() if records[1].run_id in line)
    assert "**1.0000**" in best_line  # best macro-F1 and accuracy
    worst_line = next(line for line in text.splitlines() if records[2].run_id in line)
    assert "**" in worst_line and "**20.0**" in worst_line  # fastest training is the best train time
    assert "1.0000" not in worst_line
    other_header, sample_header = [line for line in text.splitlines() if line.startswith("| Run")]
    assert "Params" in sample_header and "Train (s)" in sample_header and "Latency b1 (ms)" in sample_header
    assert "Samples/s" not in sample_header  # not recorded by any run
    assert "Params" not in other_header  # efficiency columns only where a section has them
    assert "failed" in text and "—" in text  # the failed run has no scores


def test_latex_is_booktabs_and_escaped() -> None:
    text = export(_records(), "latex")
    assert r"\toprule" in text and r"\midrule" in text and r"\bottomrule" in text
    assert text.count(r"\begin{tabular}") == 2
    assert r"hf:my\_org/ko\_model" in text and r"aihub\_multi" in text
    assert r"\textbf{1.0000}" in text
    assert latex_escape("50% & $x_1$ {#} ~^\\") == (
        r"50\% \& \$x\_1\$ \{\#\} \textasciitilde{}\textasciicircum{}\textbackslash{}"
    )


def test_html_is_a_standalone_escaped_page() -> None:
    records = _records()
    records[3].encoder = "<script>"
    text = export(records, "html")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "<table>" in text and "<strong>1.0000</strong>" in text
    assert "&lt;script&gt;" in text and "<script>" not in text


def test_json_has_the_documented_keys() -> None:
    records = _records()
    rows = json.loads(export(records, "json"))
    assert len(rows) == 5
    for row in rows:
        assert {"run_id", "encoder", "head", "seed", "dataset", "status", "macro_f1", "accuracy"} <= row.keys()
    best = next(row for row in rows if row["run_id"] == records[1].run_id)
    assert best["macro_f1"] == 1.0 and best["total_params"] == 110_000_000 and best["params"]["lr"] == 3e-5


def test_csv_parses_with_pandas() -> None:
    records = _records()
    frame = pd.read_csv(io.StringIO(export(records, "csv")))
    assert len(frame) == 5
    assert frame.loc[frame["run_id"] == records[1].run_id, "macro_f1"].item() == 1.0
    assert frame["macro_f1"].isna().sum() == 1  # the failed run
    assert set(frame["dataset"]) == {"sample", "aihub_multi"}


def test_groups_view_in_every_format() -> None:
    records = _records()[:4]
    predictions = {record.run_id: record.metrics.predictions for record in records}
    groups = stats.aggregate(records, predictions, resamples=200)
    rows = json.loads(export(groups, "json", "groups"))
    assert {
        "key",
        "encoder",
        "head",
        "n",
        "macro_f1_mean",
        "macro_f1_std",
        "macro_f1_ci_low",
        "macro_f1_ci_high",
        "accuracy_mean",
        "rank",
        "p_vs_best",
        "indistinguishable_from_best",
    } <= rows[0].keys()
    assert sorted(row["n"] for row in rows) == [1, 3]
    markdown = export(groups, "md", "groups")
    assert " ± " in markdown and "95% CI" in markdown
    assert len(pd.read_csv(io.StringIO(export(groups, "csv", "groups")))) == 2
    assert r"$\pm$" in export(groups, "latex", "groups")
    for fmt in FORMATS:
        assert export(groups, fmt, "groups")


def test_bad_format_or_view_is_a_usage_error() -> None:
    records = _records()
    with pytest.raises(UsageError, match="unknown export format 'docx'"):
        export(records, "docx")
    with pytest.raises(UsageError, match="unknown view"):
        export(records, "md", "seeds")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="groups view exports GroupStats"):
        export(records, "md", "groups")
