"""Leaderboard storage: round trips, failures and reruns, transactions, stale runs, concurrent writers."""

from __future__ import annotations

import errno
import multiprocessing
import os
import shutil
import subprocess
import sys
from collections import namedtuple
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench.errors import ResultsError, UsageError
from bench.leaderboard import store
from bench.leaderboard.store import (
    Leaderboard,
    RunConflictError,
    check_writable,
    normalize_url,
    redact_text,
    redact_url,
    run_key,
)
from tests.leaderboard_helpers import make_config, make_metrics, record_run
from tests.leaderboard_worker import write_runs
from tests.postgres_server import postgres_url  # noqa: F401 - the fixture

GOLD = [0, 1, 2, 0, 1, 2, 2]
PREDICTED = [0, 1, 1, 0, 2, 2, 2]


@pytest.fixture
def board(results_dir: Path) -> Leaderboard:
    leaderboard = Leaderboard.for_results_dir(results_dir)
    yield leaderboard
    leaderboard.close()


def test_round_trip_keeps_every_metric(board: Leaderboard) -> None:
    config = make_config(seed=7, lr=5e-5, head_params=(("dropout", 0.2),))
    metrics = make_metrics(
        GOLD,
        PREDICTED,
        timings={"train_seconds": 12.5, "latency_ms_batch1": 3.25},
        total_params=1234,
        trainable_params=99,
    )
    run_id = board.start_run(config, "fp-a", "sample", {"python": "3.11"})
    assert run_id == run_key(config.config_hash(), "fp-a")
    running = board.get_run(run_id)
    assert running.status == "running" and running.metrics is None and running.pid == os.getpid()

    board.finish_run(run_id, metrics)
    record = board.get_run(run_id, with_predictions=True)
    assert record.status == "finished" and record.error is None and record.attempts == 1
    assert (record.encoder, record.head, record.seed, record.dataset) == ("scratch", "linear", 7, "sample")
    assert record.macro_f1 == pytest.approx(metrics.macro_f1) and record.accuracy == pytest.approx(metrics.accuracy)
    assert record.metrics == metrics  # per-class, confusion, history, timings, predictions, params
    assert record.environment == {"python": "3.11"}
    assert record.config["head_params"] == [["dropout", 0.2]]
    assert board.predictions(run_id) == metrics.predictions
    light = board.predictions_many([run_id], probabilities=False)[run_id]
    assert light == replace(metrics.predictions, probabilities=[])
    assert board.get_run(run_id).metrics == replace(metrics, predictions=None)
    assert board.find(config.config_hash(), "fp-a").run_id == run_id
    assert board.find(config.config_hash(), "fp-other") is None


def test_run_filters_and_prefix_lookup(board: Leaderboard) -> None:
    ids = [record_run(board, make_config(seed=seed), make_metrics(GOLD, PREDICTED)) for seed in range(20)]
    other = record_run(board, make_config(head="mlp"), make_metrics(GOLD, GOLD), fingerprint="fp-b")
    board.fail_run(ids[0], "boom")
    assert len(board.runs()) == 21
    assert {record.run_id for record in board.runs(status="failed")} == {ids[0]}
    assert len(board.runs(status=["finished", "failed"], fingerprint="fp-a")) == 20
    assert [record.run_id for record in board.runs(head="mlp")] == [other]
    assert board.get_run(ids[3][:8]).run_id == ids[3]
    # 21 hex ids share at least one first character: a one-character prefix is ambiguous for some.
    first_characters = [run_id[0] for run_id in [*ids, other]]
    shared = next(character for character in first_characters if first_characters.count(character) > 1)
    with pytest.raises(UsageError, match="ambiguous"):
        board.get_run(shared)
    with pytest.raises(UsageError, match="unknown run 'nothere'"):
        board.get_run("nothere")
    with pytest.raises(UsageError, match="unknown run status"):
        board.runs(status="done")


def test_failed_run_keeps_its_error(board: Leaderboard) -> None:
    run_id = board.start_run(make_config(), "fp-a", "sample", {})
    board.fail_run(run_id, "RuntimeError: CUDA out of memory")
    record = board.get_run(run_id)
    assert record.status == "failed" and record.error == "RuntimeError: CUDA out of memory"
    assert record.macro_f1 is None and record.metrics is None
    board.fail_run(run_id, "trial pruned at epoch 1", status="pruned")
    assert board.get_run(run_id).status == "pruned"
    with pytest.raises(UsageError, match="not 'finished'"):
        board.fail_run(run_id, "x", status="finished")
    with pytest.raises(UsageError, match="unknown run"):
        board.fail_run("0123456789ab", "x")


def test_rerun_of_failed_row_resets_it_and_counts_attempts(board: Leaderboard) -> None:
    config = make_config(seed=3)
    run_id = board.start_run(config, "fp-a", "sample", {"try": 1})
    board.fail_run(run_id, "boom")
    created = board.get_run(run_id).created_at

    assert board.start_run(config, "fp-a", "sample", {"try": 2}) == run_id
    record = board.get_run(run_id)
    assert (record.status, record.attempts, record.error, record.environment) == ("running", 2, None, {"try": 2})
    assert record.created_at == created and record.updated_at > created
    board.finish_run(run_id, make_metrics(GOLD, PREDICTED))
    # A rerun of a finished run (the caller asked for it) drops the old results.
    board.start_run(config, "fp-a", "sample", {})
    record = board.get_run(run_id)
    assert (record.status, record.attempts, record.metrics, record.macro_f1) == ("running", 3, None, None)
    with pytest.raises(ResultsError, match="no stored test predictions"):
        board.predictions(run_id)
    assert len(board.runs()) == 1


def test_update_environment_changes_neither_attempts_nor_predictions(board: Leaderboard) -> None:
    """What the out-of-memory retry and the runner record while a run runs (not a restart of the row)."""
    config = make_config(seed=4)
    run_id = board.start_run(config, "fp-a", "sample", {"python": "3.11", "batch_size": "32"})
    board.finish_run(run_id, make_metrics(GOLD, PREDICTED))
    board.start_run(config, "fp-a", "sample", {"python": "3.11", "batch_size": "32"})  # a rerun: attempt 2
    board.update_environment(run_id, {"batch_size": "16", "oom_retries": "1"})
    record = board.get_run(run_id)
    assert (record.status, record.attempts) == ("running", 2)
    assert record.environment == {"python": "3.11", "batch_size": "16", "oom_retries": "1"}
    board.finish_run(run_id, make_metrics(GOLD, PREDICTED))
    board.update_environment(run_id, {"precision": "bf16-mixed"})
    assert board.predictions(run_id).gold == list(GOLD)
    assert board.get_run(run_id).attempts == 2
    with pytest.raises(UsageError, match="unknown run"):
        board.update_environment("0" * 12, {"precision": "32-true"})


def test_a_failing_write_changes_nothing(board: Leaderboard) -> None:
    run_id = board.start_run(make_config(), "fp-a", "sample", {})
    before = board.get_run(run_id)
    metrics = make_metrics(GOLD, PREDICTED)
    metrics.predictions.probabilities[-1] = [object()]  # fails in the second statement of the transaction
    with pytest.raises(ResultsError, match="cannot store object"):
        board.finish_run(run_id, metrics)
    after = board.get_run(run_id)
    assert after == before and after.status == "running" and after.metrics is None
    assert board.predictions_many([run_id]) == {}


def test_delete_run_removes_row_and_predictions(board: Leaderboard) -> None:
    run_id = record_run(board, make_config(), make_metrics(GOLD, PREDICTED))
    assert board.delete_run(run_id[:6]) == run_id
    assert board.runs() == [] and board.predictions_many([run_id]) == {}
    with pytest.raises(UsageError):
        board.delete_run(run_id)


def _finished_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_runs_of_dead_processes_are_marked_interrupted(board: Leaderboard, monkeypatch) -> None:
    dead_pid = _finished_pid()
    live_config, dead_config = make_config(seed=1), make_config(seed=2)
    live_id = board.start_run(live_config, "fp-a", "sample", {})
    with monkeypatch.context() as patch:
        patch.setattr(os, "getpid", lambda: dead_pid)
        dead_id = board.start_run(dead_config, "fp-a", "sample", {})
    assert board.get_run(dead_id).pid == dead_pid

    assert [record.run_id for record in board.stale_runs()] == [dead_id]
    assert board.mark_stale() == [dead_id]
    record = board.get_run(dead_id)
    assert record.status == "interrupted" and f"process {dead_pid}" in record.error
    assert board.get_run(live_id).status == "running"
    assert board.stale_runs() == []
    # A rerun of the grid retries the interrupted run.
    board.start_run(dead_config, "fp-a", "sample", {})
    assert (board.get_run(dead_id).status, board.get_run(dead_id).attempts) == ("running", 2)


def test_start_run_refuses_a_run_owned_by_a_live_process(board: Leaderboard, monkeypatch) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        config = make_config()
        with monkeypatch.context() as patch:
            patch.setattr(os, "getpid", lambda: sleeper.pid)
            run_id = board.start_run(config, "fp-a", "sample", {})
        assert board.stale_runs() == []
        with pytest.raises(RunConflictError, match=f"already running in process {sleeper.pid}"):
            board.start_run(config, "fp-a", "sample", {})
        assert board.get_run(run_id).attempts == 1
    finally:
        sleeper.kill()
        sleeper.wait()


def test_process_alive_detects_dead_and_reused_pids() -> None:
    assert store.process_alive(os.getpid())
    assert not store.process_alive(_finished_pid())
    if Path("/proc/self/stat").exists():
        # This process started before now, so a run "started" an hour ago cannot belong to it.
        assert store.process_alive(os.getpid(), "2000-01-01T00:00:00+00:00") is False
        assert store.process_alive(os.getpid(), "2999-01-01T00:00:00+00:00") is True


def test_four_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    url = store.sqlite_url(tmp_path / "leaderboard.db")
    Leaderboard(url).close()
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    workers = [context.Process(target=write_runs, args=(url, worker, 25, barrier)) for worker in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    with Leaderboard(url) as board:
        records = board.runs()
        assert len(records) == 100
        assert {record.status for record in records} == {"finished"}
        assert sorted(record.seed for record in records) == sorted(w * 1000 + i for w in range(4) for i in range(25))
        assert len(board.predictions_many(record.run_id for record in records)) == 100
    with sa.create_engine(url).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_check_writable_probes_the_directory(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "new" / "results"
    assert check_writable(target) == target and target.is_dir()
    assert list(target.iterdir()) == []  # the probe file is gone

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ResultsError, match="cannot create results directory"):
        Leaderboard.for_results_dir(blocker / "results")

    Usage = namedtuple("Usage", "total used free")
    with monkeypatch.context() as patch:
        patch.setattr(shutil, "disk_usage", lambda path: Usage(10 * 2**30, 10 * 2**30 - 2**20, 2**20))
        with pytest.raises(ResultsError, match="only 1 MiB free"):
            Leaderboard.for_results_dir(tmp_path / "full")
    assert not (tmp_path / "full" / "leaderboard.db").exists()

    def no_space(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", no_space)
        with pytest.raises(ResultsError, match="cannot write to results directory .*No space left"):
            check_writable(tmp_path / "nospace")
    assert list((tmp_path / "nospace").iterdir()) == []


def test_passwords_never_leave_the_store(tmp_path: Path) -> None:
    redacted = redact_url("postgresql://bench:hunter2@db.example:5432/runs")
    assert redacted == "postgresql://bench:***@db.example:5432/runs"
    assert "s3cret" not in redact_url("postgresql+psycopg://u@h/db?password=s3cret&sslmode=require")
    assert redact_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert redact_text("could not reach postgres://a:pw@h/db") == "could not reach postgres://a:***@h/db"
    assert normalize_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalize_url("postgres://u:p@h/db") == "postgresql+psycopg://u:p@h/db"

    with Leaderboard(store.sqlite_url(tmp_path / "lb.db")) as board:
        run_id = board.start_run(make_config(), "fp-a", "sample", {"storage": "postgresql://u:hunter2@h/db"})
        board.fail_run(run_id, "OperationalError at postgresql://u:hunter2@h/db")
        record = board.get_run(run_id)
        assert "hunter2" not in repr(record)

    with pytest.raises(ResultsError) as error:
        Leaderboard("postgresql://bench:hunter2@127.0.0.1:1/runs")
    assert "hunter2" not in str(error.value) and "bench:***@127.0.0.1" in str(error.value)


@pytest.fixture
def postgres_leaderboard_url(request: pytest.FixtureRequest) -> str:
    """``BENCH_TEST_POSTGRES_URL`` where set, else a PostgreSQL server started for the tests."""
    return os.environ.get("BENCH_TEST_POSTGRES_URL") or request.getfixturevalue("postgres_url")


def test_postgresql_round_trip(postgres_leaderboard_url: str) -> None:
    with Leaderboard(postgres_leaderboard_url) as board:
        config = make_config(seed=987654)
        metrics = make_metrics(GOLD, PREDICTED)
        run_id = record_run(board, config, metrics, fingerprint="fp-postgres-test")
        try:
            assert board.get_run(run_id, with_predictions=True).metrics == metrics
            board.start_run(config, "fp-postgres-test", "sample", {})
            assert board.get_run(run_id).attempts == 2
        finally:
            board.delete_run(run_id)
