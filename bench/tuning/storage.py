"""Optuna storage (SQLite file or PostgreSQL) with heartbeats, and where it lives beside the leaderboard."""

from __future__ import annotations

import os
import socket
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from sqlalchemy.exc import SQLAlchemyError

from bench.errors import ResultsError
from bench.leaderboard.store import Leaderboard, check_storage_url, normalize_url, sqlite_file
from bench.machine.processes import process_alive
from bench.urls import parse_database_url, redact_text, redact_url, secrets_of

STORAGE_FILE = "optuna.db"
# A worker beats every HEARTBEAT_S seconds; one silent for GRACE_S is taken for dead and its trial failed.
HEARTBEAT_S = 10
GRACE_S = 60
# The user attribute where a grid worker names itself on the trial it runs: [host, pid].
WORKER_PROCESS = "worker_process"
# A point whose worker died is retried this many times before it is left for the next run.
MAX_RETRIES = 2
OPEN_ATTEMPTS = 4


def default_storage_url(results_dir: str | Path) -> str:
    """``sqlite:///<results>/optuna.db`` (absolute path)."""
    return f"sqlite:///{(Path(results_dir) / STORAGE_FILE).resolve()}"


def is_sqlite(url: str) -> bool:
    """Whether ``url`` names a SQLite database."""
    return url.startswith("sqlite:")


def open_storage(
    url: str, *, retry_dead_workers: bool = False, heartbeat_s: int = HEARTBEAT_S, grace_s: int = GRACE_S
) -> RDBStorage:
    """An Optuna RDB storage with heartbeats: trials of workers silent for ``grace_s`` seconds are failed.

    ``retry_dead_workers`` enqueues such a trial again (at most :data:`MAX_RETRIES`
    times), which a grid wants and a study does not. ``postgresql://`` URLs use
    psycopg 3. Errors are a one-line :class:`UsageError` or :class:`ResultsError`.
    """
    parsed = parse_database_url(url, "--study-storage")
    shown = redact_url(url)
    if is_sqlite(url):
        Path(parsed.database or STORAGE_FILE).parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs: dict[str, object] = {"connect_args": {"timeout": 60}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    attempt = 0
    while True:
        attempt += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                return RDBStorage(
                    normalize_url(url),
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_s,
                    grace_period=grace_s,
                    heartbeat_stale_trial_callback=(
                        RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES) if retry_dead_workers else None
                    ),
                )
        except ImportError as error:
            raise ResultsError(
                f"storage {shown} needs a database driver that is not installed ({error.name}); "
                "for PostgreSQL: pip install 'ko-emotion-bench[postgres]'"
            ) from None
        except (SQLAlchemyError, optuna.exceptions.StorageInternalError, RuntimeError) as error:
            # Workers starting together race to create the tables; a second attempt finds them.
            if attempt == OPEN_ATTEMPTS:
                first_line = (
                    str(getattr(error, "orig", None) or error).strip().splitlines() or [type(error).__name__]
                )[0]
                raise ResultsError(
                    f"cannot open Optuna storage {shown}: {redact_text(first_line, secrets_of(url))}"
                ) from None
            time.sleep(0.5 * attempt)


def study_storage_url(study_storage: str | None, storage: str | None, results_dir: str | Path) -> str:
    """The Optuna database of a grid or study: ``--study-storage``; else the ``--storage`` (leaderboard)
    database when that is a server; else ``optuna.db`` beside the SQLite leaderboard (``<results>`` by default)."""
    if study_storage:
        check_storage_url(study_storage, "--study-storage")
        return study_storage
    if storage:
        check_storage_url(storage, "--storage")
        if not is_sqlite(storage):
            return storage
        leaderboard_file = sqlite_file(storage)
        if leaderboard_file is not None:
            return f"sqlite:///{(leaderboard_file.parent / STORAGE_FILE).resolve()}"
    return default_storage_url(results_dir)


def fail_stale_trials(study: optuna.Study) -> None:
    """Fail the trials of workers whose heartbeat stopped (and, for a grid, enqueue their retries)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def fail_trials_of_dead_runs(study: optuna.Study, leaderboard: Leaderboard) -> list[int]:
    """Fail the running trials of ``study`` whose leaderboard run or worker process is gone.

    A worker killed outright (``kill -9``, out of host memory) leaves its trial
    running until its heartbeat's grace period ends; the leaderboard row names the
    process (and the trial too, from before the run has a row: :data:`WORKER_PROCESS`),
    so on this host the trial can be failed at once (and the row marked
    ``interrupted``). Returns the numbers of the trials failed.
    """
    dead = {
        record.trial
        for record in leaderboard.stale_runs()
        if record.study == study.study_name and record.trial is not None
    }
    if dead:
        leaderboard.mark_stale()
    failed: list[int] = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if trial.number not in dead and not _worker_gone(trial):
            continue
        try:
            study._storage.set_trial_state_values(trial._trial_id, state=optuna.trial.TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker failed it first
        failed.append(trial.number)
    return failed


def name_worker_process(trial: optuna.Trial) -> None:
    """Record this process as the one running ``trial`` (:data:`WORKER_PROCESS`)."""
    trial.set_user_attr(WORKER_PROCESS, [socket.gethostname(), os.getpid()])


def _worker_gone(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether ``trial`` names its worker process, on this host, and that process is gone."""
    owner = trial.user_attrs.get(WORKER_PROCESS)
    if not owner:
        return False
    host, pid = owner
    started = trial.datetime_start.isoformat() if trial.datetime_start else None
    return host == socket.gethostname() and not process_alive(int(pid), started)


def describe_study(study: optuna.Study, attributes: Mapping[str, Any]) -> None:
    """Store ``attributes`` as the study's user attributes (shown by optuna-dashboard), writing only changes."""
    current = study.user_attrs
    for key, value in attributes.items():
        if current.get(key) != value:
            study.set_user_attr(key, value)
