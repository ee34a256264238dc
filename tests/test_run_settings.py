"""Every row says what sets it apart: trained runs their differing hyperparameters, reference rows their own."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.baselines.specs import baseline_config
from bench.data.types import DataOptions
from bench.leaderboard import stats
from bench.leaderboard.export import export
from bench.leaderboard.store import Leaderboard
from tests.conftest import bench
from tests.leaderboard_helpers import make_config, make_metrics, make_record, record_run

pytestmark = pytest.mark.usefixtures("wide_console")


def test_reference_rows_show_only_their_own_settings():
    tfidf = make_record(baseline_config("tfidf", DataOptions()), 0.6, 0.6)
    majority = make_record(baseline_config("majority", DataOptions()), 0.05, 0.2)
    trained = [make_record(make_config(lr=lr), 0.5, 0.5) for lr in (1e-4, 3e-5)]
    settings = stats.distinguishing_settings([tfidf, majority, *trained])
    assert settings[tfidf.run_id]["c_grid"] == "0.3,1,3,10" and "epochs" not in settings[tfidf.run_id]
    assert settings[majority.run_id] == {}
    assert [settings[run.run_id] for run in trained] == [{"lr": 1e-4}, {"lr": 3e-5}]
    text = export([tfidf, majority, *trained], "md")
    tfidf_line = next(line for line in text.splitlines() if tfidf.run_id in line).replace(
        "\\_", "_"
    )  # Markdown escapes "_"
    assert "c_grid=0.3,1,3,10" in tfidf_line and "lr=" not in tfidf_line and "epochs=" not in tfidf_line


def test_runs_differing_in_one_switch_are_told_apart(capsys, results_dir: Path):
    gold = [0, 1, 2] * 4
    with Leaderboard.for_results_dir(results_dir) as board:
        ids = {
            changes: record_run(board, make_config(**dict(changes)), make_metrics(gold, gold))
            for changes in (
                (("class_weighted", True),),
                (("class_weighted", False),),
                (("freeze_encoder", True),),
                (("max_len", 64),),
            )
        }
    code, out, err = bench(capsys, "leaderboard", "--results", str(results_dir))
    assert code == 0, err
    lines = {changes: next(line for line in out.splitlines() if run_id in line) for changes, run_id in ids.items()}
    assert "class_weighted=True" in lines[(("class_weighted", True),)]
    assert "class_weighted=False" in lines[(("class_weighted", False),)]
    assert "freeze_encoder=True" in lines[(("freeze_encoder", True),)]
    assert "max_len=64" in lines[(("max_len", 64),)]
    code, out, err = bench(capsys, "leaderboard", "--results", str(results_dir), "--wide")
    assert code == 0, err
    assert out.count("warmup_ratio=0.1") == len(ids), "--wide shows every setting of every run"
