"""`bench grid` end to end on SQLite: a tiny grid runs, a failure does not stop it, a rerun resumes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bench.leaderboard.store import Leaderboard
from bench.training import runner
from tests.conftest import bench, tiny_config_args

GRID = [
    "grid",
    "--encoders",
    "scratch",
    "--heads",
    "linear,mlp",
    "--seeds",
    "1,2",
    *tiny_config_args(),
    "--train-limit",
    "60",
    "--epochs",
    "1",
    "--max-len",
    "32",
    "--no-progress",
]


@dataclass
class Trainings:
    """The (head, seed) of every run that reached training; runs in ``failing`` raise there."""

    calls: list[tuple[str, int]] = field(default_factory=list)
    failing: set[tuple[str, int]] = field(default_factory=set)


@pytest.fixture
def trainings(monkeypatch) -> Trainings:
    """Spy on (and inject failures into) training."""
    record = Trainings()
    train_and_test = runner.train_and_test

    def spy(prepared, *args, **kwargs):
        key = (prepared.config.head, prepared.config.seed)
        record.calls.append(key)
        if key in record.failing:
            raise RuntimeError("injected failure")
        return train_and_test(prepared, *args, **kwargs)

    monkeypatch.setattr(runner, "train_and_test", spy)
    return record


def test_grid_runs_survives_a_failure_and_resumes(capsys, results_dir: Path, trainings: Trainings):
    grid = [*GRID, "--results", str(results_dir)]
    code, out, err = bench(capsys, *grid, "--dry-run")
    assert code == 0, err
    assert out.count("to run") >= 4 and "grid-" in out and not trainings.calls

    trainings.failing = {("mlp", 2)}
    code, out, err = bench(capsys, *grid)
    assert code == 1, "a failed run makes the grid exit 1"
    assert sorted(trainings.calls) == [("linear", 1), ("linear", 2), ("mlp", 1), ("mlp", 2)]
    board = Leaderboard.for_results_dir(results_dir)
    runs = {(run.head, run.seed): run for run in board.runs()}
    assert {key: run.status for key, run in runs.items()} == {
        ("linear", 1): "finished",
        ("linear", 2): "finished",
        ("mlp", 1): "finished",
        ("mlp", 2): "failed",
    }
    assert "injected failure" in (runs["mlp", 2].error or "")
    assert len({run.study for run in runs.values()}) == 1 and (runs["linear", 1].study or "").startswith("grid-")
    assert "3 ran, 1 failed" in out

    trainings.calls.clear()
    trainings.failing.clear()
    code, out, err = bench(capsys, *grid)
    assert code == 0, err + out
    assert trainings.calls == [("mlp", 2)], "only the failed run is retried"
    retried = board.find(runs["mlp", 2].config_hash, runs["mlp", 2].fingerprint)
    assert retried is not None and retried.status == "finished"

    trainings.calls.clear()
    code, out, err = bench(capsys, *grid)
    assert code == 0 and trainings.calls == [], "a finished grid runs nothing"

    board.delete_run(runs["linear", 2].run_id)
    code, out, err = bench(capsys, *grid)
    assert code == 0, err + out
    assert trainings.calls == [("linear", 2)], "a deleted row runs again"
    assert {run.status for run in board.runs()} == {"finished"} and len(board.runs()) == 4


def test_grid_with_its_default_progress_shows_a_line_per_point(capsys, results_dir: Path):
    """As `make demo` runs it: progress on (the default), output not a terminal."""
    grid = [option for option in GRID if option != "--no-progress"]
    code, out, err = bench(capsys, *grid, "--seeds", "1", "--results", str(results_dir))
    assert code == 0, err + out
    assert "0/2" in out and "1/2" in out and out.count("✓") == 2
    assert "Traceback" not in out + err


def test_grid_option_errors_are_one_line(capsys, results_dir: Path):
    for args, needle in [
        (["--seeds", "1,x"], "--seeds: 'x' is not an integer"),
        (["--heads", "linear", "--head-param", "lstm_hidden=64"], "none of the heads linear has"),
        (["--encoders", "scratch,nope"], "unknown encoder 'nope'"),
        (["--encoders", "scratch,kobert", "--encoder-path", "/x"], "give ENCODER=PATH"),
        (["--gpus", "a"], "--gpus expects"),
        (["--storage", "::nonsense"], "invalid --storage URL"),
        (["--study-storage", "::nonsense"], "invalid --study-storage URL"),
        (["--leaderboard", "sqlite:///x.db"], "--leaderboard is now --storage"),
        (["--workers", "3", "--gpus", "0,1"], "--gpus starts one worker per GPU group"),
    ]:
        code, out, err = bench(capsys, "grid", *args, "--results", str(results_dir))
        assert code == 2, (args, out, err)
        assert needle in err and len(err.strip().splitlines()) == 1, err


def test_storage_is_the_leaderboard_of_every_command_and_the_study_sits_beside_it(capsys, tmp_path: Path):
    shared = tmp_path / "shared"
    storage = f"sqlite:///{shared / 'board.db'}"
    results = str(tmp_path / "results")
    run = ["run", "--head", "linear", *GRID[7:], "--storage", storage, "--results", results, "--threads", "1"]
    code, out, err = bench(capsys, *run)
    assert code == 0, err
    code, out, err = bench(
        capsys, "grid", "--heads", "linear", "--seeds", "3", *GRID[7:], "--storage", storage, "--results", results
    )
    assert code == 0, err
    assert {"board.db", "optuna.db"} <= {path.name for path in shared.iterdir()}
    assert not (Path(results) / "leaderboard.db").exists() and not (Path(results) / "optuna.db").exists()
    runs = Leaderboard(storage).runs()
    assert sorted(run.seed for run in runs) == [1, 3]
    threads = {run.seed: run.environment["threads"] for run in runs}
    assert threads[1] == "1"  # --threads: recorded in the run's environment, not in its identity
    code, out, err = bench(capsys, "export", "--format", "json", "--storage", storage)
    assert code == 0 and {row["run_id"] for row in json.loads(out)} == {run.run_id for run in runs}, out
