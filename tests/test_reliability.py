"""Faults during long runs: Ctrl-C, kill -9, numerical blow-ups, out-of-memory, an unusable results directory.

The Ctrl-C and kill -9 cases start ``bench grid`` as a real subprocess and signal it
while its second run trains (one scenario, to start as few Python processes as
possible). Concurrent writers to one SQLite leaderboard are tested in
``tests/test_leaderboard_store.py::test_four_processes_writing_at_once_lose_nothing``.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import optuna
import pytest
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from bench.config import RunConfig
from bench.data.types import DataReport, SplitDataset
from bench.errors import Terminated
from bench.leaderboard.records import RunMetrics
from bench.leaderboard.store import Leaderboard, database_path, sqlite_url
from bench.training.module import EmotionClassifier
from bench.training.runner import run_experiment
from bench.tuning import grid_worker
from bench.tuning.grid_worker import GridWorker, open_grid_study
from bench.tuning.storage import open_storage
from tests.conftest import ROOT, bench, tiny_config_args
from tests.test_training import tiny_config

CLI = "from bench.cli import main; main()"
# Two points: epochs 1 (finishes first) and epochs 12 (long enough to be signalled while it trains, even when
# a loaded machine delays the signal).
GRID = [
    "grid",
    "--encoders",
    "scratch",
    "--heads",
    "linear",
    "--epochs",
    "1,12",
    *tiny_config_args(),
    "--train-limit",
    "120",
    "--max-len",
    "32",
    "--batch-size",
    "16",
    "--lr",
    "0.001",
    "--no-progress",
]


def start_bench(args: list[str], results: Path) -> subprocess.Popen[str]:
    """``bench ARGS --results RESULTS`` in a new process, as a user would start it."""
    return subprocess.Popen(
        [sys.executable, "-c", CLI, *args, "--results", str(results)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as in a terminal, even when the test suite itself runs in the background, which ignores SIGINT
        # (and a child would inherit that).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def rows(results: Path) -> dict[int, sqlite3.Row]:
    """Leaderboard rows by the epochs of their config (read with plain sqlite3, writing nothing)."""
    with sqlite3.connect(database_path(results), timeout=30) as conn:
        conn.row_factory = sqlite3.Row
        found = conn.execute("SELECT * FROM runs").fetchall()
    return {json.loads(row["config"])["epochs"]: row for row in found}


def wait_until_training(process: subprocess.Popen[str], results: Path, epochs: int, timeout: float = 240) -> None:
    """Return once the run with ``epochs`` is marked running (it then trains for a few seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"bench exited with {process.returncode} before run epochs={epochs} started:\n{out}\n{err}")
        try:
            row = rows(results).get(epochs)
        except sqlite3.OperationalError:  # database or table not created yet
            row = None
        if row is not None and row["status"] == "running":
            return
        time.sleep(0.02)
    process.kill()
    pytest.fail(f"run epochs={epochs} did not start within {timeout} s")


def integrity_ok(path: Path) -> bool:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def grid_trials(results: Path) -> list[optuna.trial.FrozenTrial]:
    storage = optuna.storages.RDBStorage(sqlite_url(results / "optuna.db"))
    (name,) = optuna.study.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


def predictions_of(results: Path, run_id: str) -> int:
    with sqlite3.connect(database_path(results)) as conn:
        return conn.execute("SELECT COUNT(*) FROM predictions WHERE run_id = ?", (run_id,)).fetchone()[0]


RUN = [
    "run",
    "--encoder",
    "scratch",
    "--head",
    "linear",
    *tiny_config_args(),
    "--train-limit",
    "120",
    "--epochs",
    "1",
    "--max-len",
    "32",
    "--batch-size",
    "16",
    "--lr",
    "0.001",
    "--no-progress",
]


@pytest.mark.slow
def test_ctrl_c_then_kill_9_during_a_grid_leave_true_records_and_reruns_resume(results_dir: Path) -> None:
    # 1. Ctrl-C while the second run trains: it stops cleanly and is recorded interrupted.
    process = start_bench(GRID, results_dir)
    wait_until_training(process, results_dir, epochs=12)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, out + err
    assert err.strip().splitlines()[-1] == "error: interrupted (Ctrl-C); rerun the same command to resume"
    assert "Traceback" not in err
    first = rows(results_dir)
    assert first[1]["status"] == "finished" and predictions_of(results_dir, first[1]["run_id"]) == 1
    assert (first[12]["status"], first[12]["error"]) == ("interrupted", "interrupted by the user (SIGINT)")
    assert predictions_of(results_dir, first[12]["run_id"]) == 0
    assert not [trial for trial in grid_trials(results_dir) if trial.state == optuna.trial.TrialState.RUNNING]

    # 2. A rerun skips the finished run and retries the interrupted one; kill -9 it while it trains.
    process = start_bench(GRID, results_dir)
    wait_until_training(process, results_dir, epochs=12)
    process.kill()
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert integrity_ok(database_path(results_dir)) and integrity_ok(results_dir / "optuna.db")
    killed = rows(results_dir)
    assert dict(killed[1]) == dict(first[1]), "the finished run was neither retrained nor touched"
    dead = killed[12]
    assert (dead["status"], dead["attempts"], dead["pid"]) == ("running", 2, process.pid)
    assert (dead["metrics"], dead["macro_f1"], predictions_of(results_dir, dead["run_id"])) == (None, None, 0)
    with Leaderboard(sqlite_url(database_path(results_dir))) as board:
        assert [record.run_id for record in board.stale_runs()] == [dead["run_id"]]
    running = [trial for trial in grid_trials(results_dir) if trial.state == optuna.trial.TrialState.RUNNING]
    assert len(running) == 1, "the dead worker's trial, readable as it was left"

    # 3. The next grid sees at once (not after the Optuna heartbeat's grace period) that the process is
    #    gone, retries the run and finishes the grid.
    process = start_bench(GRID, results_dir)
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, out + err
    assert "1 already finished" in out and "this worker: 1 ran, 0 failed" in out
    final = rows(results_dir)
    assert (final[12]["status"], final[12]["attempts"]) == ("finished", 3)
    assert predictions_of(results_dir, final[12]["run_id"]) == 1
    assert dict(final[1]) == dict(first[1])
    assert not [trial for trial in grid_trials(results_dir) if trial.state == optuna.trial.TrialState.RUNNING]
    assert integrity_ok(database_path(results_dir)) and integrity_ok(results_dir / "optuna.db")


# ------------------------------------------------------------------------------------- in process


def test_a_grid_retries_at_once_the_point_of_a_worker_killed_outright(tmp_path: Path, monkeypatch) -> None:
    # What step 3 above relies on, without processes: the killed worker's trial is still running in
    # Optuna (its heartbeat's grace period has not passed), but its leaderboard row names a dead process.
    points = [RunConfig(seed=seed, results_dir=str(tmp_path)) for seed in range(2)]
    dataset = SplitDataset("stub", ("a", "b"), [], [], [], "f" * 16, DataReport())
    trained: list[int] = []

    def run_experiment(config, leaderboard, *, dataset, callbacks=()):
        trained.append(config.seed)
        run_id = leaderboard.start_run(config, dataset.fingerprint, dataset.name, {})
        leaderboard.finish_run(run_id, RunMetrics(0.5, 0.5, 0.5, [], {}, []))
        return leaderboard.get_run(run_id)

    monkeypatch.setattr(grid_worker, "run_experiment", run_experiment)
    storage = open_storage(sqlite_url(tmp_path / "optuna.db"), retry_dead_workers=True)
    study = open_grid_study(storage, "grid-killed", points, dataset)
    board = Leaderboard(sqlite_url(tmp_path / "leaderboard.db"))
    with pytest.warns(UserWarning, match="Heartbeat"):
        killed = study.ask()  # ticket 0
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with monkeypatch.context() as patch:
        patch.setattr(os, "getpid", lambda: child.pid)
        board.start_run(points[0].with_updates(study="grid-killed", trial=killed.number), "f" * 16, "stub", {})

    outcome = GridWorker(study, points, dataset, board).run()
    assert sorted(outcome.ran) == [0, 1] and outcome.running_elsewhere == set()
    assert sorted(trained) == [0, 1]
    assert study.get_trials()[killed.number].state == optuna.trial.TrialState.FAIL
    (record,) = [record for record in board.runs() if record.seed == 0]
    assert (record.status, record.attempts) == ("finished", 2)


def test_ctrl_c_inside_lightning_is_recorded_interrupted(capsys, results_dir: Path, monkeypatch) -> None:
    # Lightning answers Ctrl-C with sys.exit(1) and ignores SIGINT from then on; the run must still be
    # recorded as interrupted, `bench run` say so on one line, and Ctrl-C work again afterwards.
    def interrupted_step(self, batch, index):
        raise KeyboardInterrupt

    monkeypatch.setattr(EmotionClassifier, "training_step", interrupted_step)
    handler = signal.getsignal(signal.SIGINT)
    code, _, err = bench(capsys, *RUN, "--results", str(results_dir))
    assert code == 130
    assert err.strip() == "error: interrupted (Ctrl-C); rerun the same command to resume"
    (record,) = Leaderboard.for_results_dir(results_dir).runs()
    assert (record.status, record.error) == ("interrupted", "interrupted by the user (SIGINT)")
    assert signal.getsignal(signal.SIGINT) is handler


def test_sigterm_inside_lightning_is_recorded_interrupted(results_dir: Path, monkeypatch) -> None:
    # What Lightning's SIGTERM handler makes its loop raise (a SystemExit with exit code 0).
    def terminated_step(self, batch, index):
        raise SIGTERMException

    monkeypatch.setattr(EmotionClassifier, "training_step", terminated_step)
    board = Leaderboard.for_results_dir(results_dir)
    with pytest.raises(Terminated):
        run_experiment(tiny_config(results_dir), board)
    (record,) = board.runs()
    assert (record.status, record.error) == ("interrupted", "terminated (SIGTERM)")


def test_infinite_loss_stops_the_run_at_its_first_step(results_dir: Path, monkeypatch) -> None:
    # NaN (from a huge learning rate) is covered by tests/test_training.py::test_nan_loss_is_recorded_as_failed.
    monkeypatch.setattr(torch.nn.CrossEntropyLoss, "forward", lambda self, logits, labels: logits.sum() * 0 + torch.inf)
    record = run_experiment(tiny_config(results_dir, epochs=3), Leaderboard.for_results_dir(results_dir))
    assert record.status == "failed"
    assert record.error == "training loss became inf at epoch 0, step 0"
    assert record.metrics is None and record.macro_f1 is None


def out_of_memory_above(limit: int, steps: list[tuple[int, int]]):
    """A training step raising CUDA's out-of-memory error for batches larger than ``limit``.

    Every step tried is appended to ``steps`` as (batch size, accumulate_grad_batches).
    """
    original = EmotionClassifier.training_step

    def training_step(self: EmotionClassifier, batch: dict[str, torch.Tensor], index: int) -> torch.Tensor:
        size = int(batch["labels"].shape[0])
        steps.append((size, self.trainer.accumulate_grad_batches))
        if size > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 23.6 GiB total)")
        return original(self, batch, index)

    return training_step


def test_out_of_memory_is_recorded_as_failed_with_a_hint(capsys, results_dir: Path, monkeypatch) -> None:
    monkeypatch.setattr(EmotionClassifier, "training_step", out_of_memory_above(8, []))
    code, out, err = bench(capsys, *RUN, "--results", str(results_dir))
    assert code == 1, err
    (record,) = Leaderboard.for_results_dir(results_dir).runs()
    assert record.status == "failed" and record.attempts == 1
    assert record.error == (
        "out of memory at batch size 16: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 23.6 GiB total); "
        "--oom-retry retries with half the batch"
    )
    assert "out of memory at batch size 16" in out


def test_oom_retry_halves_the_batch_and_accumulates_two_steps(capsys, results_dir: Path, monkeypatch) -> None:
    steps: list[tuple[int, int]] = []
    monkeypatch.setattr(EmotionClassifier, "training_step", out_of_memory_above(8, steps))
    code, out, err = bench(capsys, *RUN, "--oom-retry", "--results", str(results_dir))
    assert code == 0, err + out
    (record,) = Leaderboard.for_results_dir(results_dir).runs()
    # The retry updates the row: still one attempt of the run, the retry and new batch sizes recorded.
    assert record.status == "finished" and record.attempts == 1 and record.environment["oom_retries"] == "1"
    assert (record.environment["batch_size"], record.environment["accumulate_grad_batches"]) == ("8", "2")
    assert record.config["batch_size"] == 16, "the recorded config keeps the effective batch"
    failed_at = next(index for index, (size, _) in enumerate(steps) if size > 8)
    retry = steps[failed_at + 1 :]
    assert retry and all(size <= 8 and accumulation == 2 for size, accumulation in retry)
    assert sum(size for size, _ in retry) == 120, "the retry trains on every example once (one epoch)"
    # --oom-retry says how to survive, not what is computed: it leaves the run's identity alone.
    assert tiny_config(results_dir).config_hash() == tiny_config(results_dir, oom_retry=True).config_hash()


def test_oom_retry_gives_up_at_batch_size_1(results_dir: Path, monkeypatch) -> None:
    monkeypatch.setattr(EmotionClassifier, "training_step", out_of_memory_above(0, []))
    config = tiny_config(results_dir, batch_size=4, oom_retry=True)
    record = run_experiment(config, Leaderboard.for_results_dir(results_dir))
    assert record.status == "failed" and record.attempts == 1
    assert record.environment["oom_retries"] == "2"  # batch 4, then 2 (x2), then 1 (x4)
    assert record.error.startswith("out of memory at batch size 1 x 4 accumulated: CUDA out of memory.")
    assert (record.environment["batch_size"], record.environment["accumulate_grad_batches"]) == ("1", "4")


# ------------------------------------------------------------------------ unusable results directory


def assert_stopped_before_training(code: int, err: str, needle: str) -> None:
    assert code == 2, err
    assert needle in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if any training starts."""

    def forbidden(*args, **kwargs):
        raise AssertionError("training started although the results directory is unusable")

    monkeypatch.setattr("bench.training.runner.train_and_test", forbidden)


@pytest.mark.parametrize("command", ["run", "grid"])
def test_results_below_a_file_is_an_error_before_training(capsys, tmp_path: Path, no_training, command) -> None:
    blocker = tmp_path / "results.txt"
    blocker.write_text("a file, not a folder")
    args = RUN if command == "run" else ["grid", "--heads", "linear", "--epochs", "1", "--no-progress"]
    code, _, err = bench(capsys, *args, "--results", str(blocker / "results"))
    assert_stopped_before_training(code, err, f"cannot create results directory {blocker / 'results'}")


def test_results_in_an_unwritable_filesystem_is_an_error(capsys, no_training) -> None:
    # Root may write anywhere on a normal disk, but not create folders in /proc.
    code, _, err = bench(capsys, *RUN, "--results", "/proc/bench-results")
    assert_stopped_before_training(code, err, "cannot create results directory /proc/bench-results")


def test_results_on_a_full_disk_is_an_error(capsys, tmp_path: Path, monkeypatch, no_training) -> None:
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(100 * 2**30, 100 * 2**30 - 3 * 2**20, 3 * 2**20))
    code, _, err = bench(capsys, *RUN, "--results", str(tmp_path / "results"))
    assert_stopped_before_training(code, err, "has only 3 MiB free; at least 64 MiB are needed")
    assert not database_path(tmp_path / "results").exists()


def test_a_disk_that_fills_while_writing_the_probe_is_an_error(
    capsys, tmp_path: Path, monkeypatch, no_training
) -> None:
    def no_space(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    code, _, err = bench(capsys, *RUN, "--results", str(tmp_path / "results"))
    assert_stopped_before_training(code, err, "cannot write to results directory")
    assert "No space left on device" in err
    assert list((tmp_path / "results").iterdir()) == []


def test_oom_while_evaluating_halves_only_the_evaluation_batch(capsys, results_dir: Path, monkeypatch) -> None:
    sizes: list[int] = []
    original = EmotionClassifier.validation_step

    def validation_step(self: EmotionClassifier, batch: dict[str, torch.Tensor], index: int) -> None:
        sizes.append(int(batch["labels"].shape[0]))
        if sizes[-1] > 4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")
        return original(self, batch, index)

    monkeypatch.setattr(EmotionClassifier, "validation_step", validation_step)
    code, out, err = bench(capsys, *RUN, "--oom-retry", "--results", str(results_dir))
    assert code == 0, err + out
    (record,) = Leaderboard.for_results_dir(results_dir).runs()
    assert record.status == "finished"
    # Evaluation on CPU starts at 32 (the training batch 16, at least 32): 32 → 16 → 8 → 4.
    assert record.attempts == 1 and record.environment["oom_retries"] == "3"
    assert record.environment["eval_batch_size"] == "4"
    assert (record.environment["batch_size"], record.environment["accumulate_grad_batches"]) == ("16", "1")
    assert max(sizes[-18:]) <= 4

    monkeypatch.setattr(EmotionClassifier, "validation_step", validation_step)
    record = run_experiment(tiny_config(results_dir, seed=2), Leaderboard.for_results_dir(results_dir))
    assert record.status == "failed"
    assert record.error.startswith("out of memory at evaluation batch size 32: CUDA out of memory.")
    assert "--oom-retry" in record.error
