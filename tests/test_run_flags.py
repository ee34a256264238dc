"""Collapsed and below-majority runs are flagged everywhere they are shown, and never chosen as best."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from sklearn.metrics import f1_score

from bench.leaderboard import flags
from bench.leaderboard.store import Leaderboard
from tests.conftest import bench
from tests.tiny_runs import TRAIN_LIMIT, train_tiny_run

pytestmark = pytest.mark.usefixtures("wide_console")


def test_flag_rules():
    gold = [0, 0, 0, 1, 2, 2]
    assert flags.majority_macro_f1(gold, 4) == pytest.approx(
        f1_score(gold, [0] * 6, labels=range(4), average="macro", zero_division=0)
    )
    assert flags.run_flags(0.2, 1, 0.1) == ["collapsed"]
    assert flags.run_flags(0.1, 3, 0.1) == ["below-majority"], "equal to the majority row is not above it"
    assert flags.run_flags(0.5, 3, 0.1) == []
    assert flags.run_flags(0.5, 3, None) == []
    assert flags.predicted_class_count([[1, 0, 1], [0, 0, 1]]) == 2
    assert flags.distinct_predictions([[0, 0, 1], [0, 0, 1]]) == 1, "one label set for everything is a collapse"
    assert flags.majority_macro_f1([[1, 0], [0, 1]], 2) is None


@pytest.fixture(scope="module")
def flagged_board(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A collapsed tiny run (learning rate far too high), the TF-IDF and majority rows on the same data."""
    results = tmp_path_factory.mktemp("flags") / "results"
    results.mkdir()
    collapsed = train_tiny_run(results, lr=3.0)
    assert collapsed.predicted_classes == 1
    from bench.cli import main

    try:
        main(["baseline", "--results", str(results), "--train-limit", str(TRAIN_LIMIT)])
    except SystemExit as done:
        assert not done.code
    return results


def test_a_collapsed_run_is_flagged_and_never_best(capsys, flagged_board: Path):
    runs = {run.encoder: run for run in Leaderboard.for_results_dir(flagged_board).runs()}
    collapsed, tfidf, majority = runs["scratch"], runs["tfidf"], runs["majority"]
    assert collapsed.flags == ["collapsed", "below-majority"] and collapsed.predicted_classes == 1
    assert tfidf.flags == [] and (tfidf.predicted_classes or 0) > 1
    assert majority.flags == ["collapsed"], "the majority row predicts one class by construction"

    where = ["--results", str(flagged_board)]
    code, out, err = bench(capsys, "leaderboard", *where)
    assert code == 0, err
    row = next(line for line in out.splitlines() if collapsed.run_id in line)
    assert "⚑CM" in row  # short symbols keep the row on one line; the legend below says what they mean
    assert "⚑C collapsed: predicts the same class (or label set) for every test example" in out
    assert "⚑M below-majority: test macro-F1 not above the majority-class row" in out

    code, out, err = bench(capsys, "leaderboard", "--view", "groups", *where)
    assert code == 0, err
    best = [line for line in out.splitlines() if "★" in line]
    assert len(best) == 1 and "tfidf" in best[0]

    code, out, err = bench(capsys, "export", "--format", "json", *where)
    exported = {row["run_id"]: row for row in json.loads(out)}
    assert exported[collapsed.run_id]["flags"] == ["collapsed", "below-majority"]
    assert exported[collapsed.run_id]["predicted_classes"] == 1
    assert exported[tfidf.run_id]["flags"] == []

    code, out, err = bench(capsys, "export", "--format", "csv", *where)
    rows = {row["run_id"]: row for row in csv.DictReader(io.StringIO(out))}
    assert json.loads(rows[collapsed.run_id]["flags"]) == ["collapsed", "below-majority"]
    assert rows[collapsed.run_id]["predicted_classes"] == "1"

    code, out, err = bench(capsys, "export", "--format", "json", "--view", "groups", *where)
    groups = {group["encoder"]: group for group in json.loads(out)}
    assert groups["tfidf"]["best"] and not groups["scratch"]["best"] and not groups["majority"]["best"]
    assert groups["scratch"]["flags"] == ["below-majority", "collapsed"]

    code, out, err = bench(capsys, "export", "--format", "md", *where)
    line = next(line for line in out.splitlines() if collapsed.run_id in line)
    assert "⚑ collapsed" in line and "**" not in line, "a flagged run has no bold best value"

    report = flagged_board / "report.html"
    code, out, err = bench(capsys, "report", *where, "--out", str(report), "--resamples", "50")
    assert code == 0, err
    page = report.read_text(encoding="utf-8")
    assert 'class="flagged"' in page and "⚑ below-majority, collapsed" in page
    assert "collapsed: predicts the same class (or label set) for every test example" in page


def test_include_flagged_lets_a_flagged_run_be_best(capsys, flagged_board: Path):
    code, out, err = bench(
        capsys, "export", "--format", "json", "--view", "groups", "--include-flagged", "--results", str(flagged_board)
    )
    assert code == 0, err
    groups = sorted(json.loads(out), key=lambda group: group["rank"])
    assert groups[0]["best"]
