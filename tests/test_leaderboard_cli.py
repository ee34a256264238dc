"""``bench leaderboard``, ``bench export``, ``bench show`` and ``bench compare`` through ``bench.cli.app.main``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bench.cli.leaderboard  # noqa: F401  (registers the commands)
from bench.leaderboard.store import Leaderboard
from tests.conftest import run_cli
from tests.leaderboard_helpers import LABELS, make_config, make_metrics, noisy_predictions, record_run

pytestmark = pytest.mark.usefixtures("wide_console")


@pytest.fixture
def filled(results_dir: Path) -> dict[str, list[str]]:
    """Two groups of three seeds on one dataset (strong and weak), one run on another dataset, one failure."""
    gold = np.random.default_rng(0).integers(0, 3, 600)
    ids: dict[str, list[str]] = {"strong": [], "weak": [], "other": [], "failed": []}
    with Leaderboard.for_results_dir(results_dir) as board:
        for seed in (1, 2, 3):
            for name, accuracy, lr in (("strong", 0.9, 3e-5), ("weak", 0.6, 1e-3)):
                predicted = noisy_predictions(gold, accuracy, np.random.default_rng([seed, int(lr * 1e6)]), 3)
                metrics = make_metrics(gold, predicted, timings={"train_seconds": 10.0 * seed}, total_params=5_000_000)
                ids[name].append(record_run(board, make_config(seed=seed, lr=lr), metrics))
        ids["other"].append(
            record_run(
                board, make_config(seed=1), make_metrics([0, 1, 2], [0, 1, 1]), fingerprint="fp-b", dataset="other-data"
            )
        )
        failed = board.start_run(make_config(seed=99), "fp-a", "sample", {})
        board.fail_run(failed, "OSError: [Errno 28] exploded [/tmp]")
        ids["failed"].append(failed)
    return ids


def test_empty_leaderboard_is_a_friendly_message(tmp_path: Path, capsys) -> None:
    code, out, _ = run_cli(["leaderboard", "--results", str(tmp_path / "nothing")], capsys)
    assert code == 0 and "No leaderboard yet" in out
    assert not (tmp_path / "nothing").exists()  # reading creates nothing
    Leaderboard.for_results_dir(tmp_path / "empty").close()
    code, out, _ = run_cli(["leaderboard", "--results", str(tmp_path / "empty"), "--view", "groups"], capsys)
    assert code == 0 and "is empty" in out


def test_leaderboard_sorts_runs_by_macro_f1_per_dataset(filled, results_dir: Path, capsys) -> None:
    code, out, _ = run_cli(["leaderboard", "--results", str(results_dir)], capsys)
    assert code == 0
    assert "sample · fingerprint fp-a" in out and "other-data · fingerprint fp-b" in out
    positions = {run_id: out.index(run_id) for run_id in filled["strong"] + filled["weak"]}
    assert max(positions[run_id] for run_id in filled["strong"]) < min(positions[run_id] for run_id in filled["weak"])
    assert "failed" in out and "[Errno 28] exploded [/tmp]" in out  # shown literally, not as markup

    code, out, _ = run_cli(["leaderboard", "--results", str(results_dir), "--status", "failed"], capsys)
    assert code == 0 and filled["failed"][0] in out and filled["strong"][0] not in out


def test_groups_view_shows_mean_std_ci_and_the_best(filled, results_dir: Path, capsys) -> None:
    args = ["leaderboard", "--results", str(results_dir), "--view", "groups", "--resamples", "200"]
    code, out, _ = run_cli(args, capsys)
    assert code == 0
    assert "★" in out and " ± " in out and "95% CI" in out
    strong_line = next(line for line in out.splitlines() if "lr=3e-05" in line)
    assert "★" in strong_line and " 3 " in strong_line  # n


def test_export_to_stdout_and_atomically_to_a_file(filled, results_dir: Path, capsys, tmp_path: Path) -> None:
    code, out, _ = run_cli(["export", "--results", str(results_dir), "--format", "md"], capsys)
    assert code == 0 and out.startswith("### ") and "**" in out
    assert filled["failed"][0] not in out  # finished runs only by default

    target = tmp_path / "paper" / "groups.json"
    code, _, err = run_cli(
        [
            "export",
            "--results",
            str(results_dir),
            "--format",
            "json",
            "--view",
            "groups",
            "--resamples",
            "100",
            "--out",
            str(target),
        ],
        capsys,
    )
    assert code == 0 and "Wrote 3 groups" in err
    rows = json.loads(target.read_text())
    assert sorted(row["n"] for row in rows) == [1, 3, 3]
    assert [path.name for path in target.parent.iterdir()] == ["groups.json"]  # no temporary file left

    csv_file = tmp_path / "runs.csv"
    assert (
        run_cli(
            [
                "export",
                "--results",
                str(results_dir),
                "-f",
                "csv",
                "--status",
                "finished",
                "--status",
                "failed",
                "-o",
                str(csv_file),
            ],
            capsys,
        )[0]
        == 0
    )
    assert len(pd.read_csv(csv_file)) == 8

    code, _, err = run_cli(["export", "--results", str(results_dir), "--format", "docx"], capsys)
    assert code == 2 and "--format must be one of" in err


def test_show_prints_config_per_class_scores_and_confusion(filled, results_dir: Path, capsys) -> None:
    run_id = filled["strong"][0]
    code, out, _ = run_cli(["show", run_id[:7], "--results", str(results_dir)], capsys)
    assert code == 0
    assert f"run {run_id}" in out and "test scores per class" in out and "confusion matrix" in out
    assert all(label in out for label in LABELS)
    assert "data.source" in out and "training history" in out

    code, out, _ = run_cli(["show", filled["failed"][0], "--results", str(results_dir)], capsys)
    assert code == 0 and "[Errno 28] exploded [/tmp]" in out


def test_unknown_run_is_a_one_line_error(filled, results_dir: Path, capsys) -> None:
    for args in (["show", "ffffffffffff"], ["compare", "ffffffffffff", filled["strong"][0]]):
        code, out, err = run_cli([*args, "--results", str(results_dir)], capsys)
        assert code == 2 and out == ""
        assert err.strip().startswith("error: unknown run 'ffffffffffff'") and err.count("\n") == 1


def test_compare_runs_and_groups(filled, results_dir: Path, capsys) -> None:
    strong, weak = filled["strong"][0], filled["weak"][0]
    code, out, _ = run_cli(
        ["compare", strong[:8], weak[:8], "--results", str(results_dir), "--resamples", "300"], capsys
    )
    assert code == 0 and "Δ macro-F1 (A − B) = +" in out and "A is significantly better" in out

    code, out, _ = run_cli(
        ["leaderboard", "--results", str(results_dir), "--view", "groups", "--resamples", "10"], capsys
    )
    keys = sorted({word for word in out.split() if word.startswith("g-")})
    strong_key = next(
        word for line in out.splitlines() if "lr=3e-05" in line for word in line.split() if word.startswith("g-")
    )
    weak_key = next(
        word for line in out.splitlines() if "lr=0.001" in line for word in line.split() if word.startswith("g-")
    )
    assert len(keys) == 3
    code, out, _ = run_cli(["compare", weak_key, strong_key[:6], "--results", str(results_dir)], capsys)
    assert code == 0 and "B is significantly better" in out
    assert [line.split()[-2] for line in out.splitlines() if line.startswith(("A  g-", "B  g-"))] == ["3", "3"]  # seeds

    code, out, _ = run_cli(["compare", strong, strong, "--results", str(results_dir)], capsys)
    assert code == 0 and "no significant difference" in out

    code, _, err = run_cli(["compare", strong, filled["other"][0], "--results", str(results_dir)], capsys)
    assert code == 2 and "different data" in err
    code, _, err = run_cli(["compare", strong, filled["failed"][0], "--results", str(results_dir)], capsys)
    assert code == 2 and "is failed, not finished" in err


def test_storage_url_password_is_never_printed(capsys) -> None:
    code, out, err = run_cli(["leaderboard", "--storage", "postgresql://bench:hunter2@127.0.0.1:1/runs"], capsys)
    assert code == 2 and "hunter2" not in out + err and "bench:***@127.0.0.1" in err
