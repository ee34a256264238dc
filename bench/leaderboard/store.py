"""Run storage: one SQL database (a SQLite file or PostgreSQL) of runs and their test predictions.

Every write is one transaction. SQLite runs in WAL mode with a busy timeout, takes
the write lock up front (``BEGIN IMMEDIATE``) and retries on "database is locked",
so several processes can record runs into one file at once.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, SQLAlchemyError

from bench.config import RunConfig
from bench.errors import ResultsError, UsageError
from bench.files import file_problem
from bench.leaderboard import flags as run_flags
from bench.leaderboard.records import RUN_STATUSES, ClassScores, Predictions, RunMetrics, RunRecord
from bench.machine.processes import process_alive
from bench.machine.results_folder import check_writable
from bench.urls import parse_database_url, redact_text, redact_url, secrets_of

DATABASE_NAME = "leaderboard.db"
RUN_ID_LENGTH = 12
MAJORITY_ENCODER = "majority"
FAILURE_STATUSES = ("failed", "interrupted", "pruned")
_BUSY_TIMEOUT_S = 30
_RETRY_DEADLINE_S = 180.0

T = TypeVar("T")

metadata = sa.MetaData()

runs_table = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("config_hash", sa.String(64), nullable=False),
    sa.Column("fingerprint", sa.String(128), nullable=False),
    sa.Column("dataset", sa.String(255), nullable=False),
    sa.Column("encoder", sa.String(255), nullable=False),
    sa.Column("head", sa.String(255), nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("metrics", sa.JSON(none_as_null=True)),
    sa.Column("macro_f1", sa.Float),
    sa.Column("accuracy", sa.Float),
    sa.Column("val_macro_f1", sa.Float),
    sa.Column("error", sa.Text),
    sa.Column("environment", sa.JSON, nullable=False),
    sa.Column("study", sa.String(255)),
    sa.Column("trial", sa.Integer),
    sa.Column("pid", sa.Integer),
    sa.Column("host", sa.String(255)),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.Column("predicted_classes", sa.Integer),
    sa.Column("flags", sa.JSON(none_as_null=True)),
    sa.Index("ix_runs_config_hash_fingerprint", "config_hash", "fingerprint"),
    sa.Index("ix_runs_status", "status"),
)

# One row per run: the whole test set as JSON arrays, read in one go by ``bench compare``.
predictions_table = sa.Table(
    "predictions",
    metadata,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("example_ids", sa.JSON, nullable=False),
    sa.Column("gold", sa.JSON, nullable=False),
    sa.Column("predicted", sa.JSON, nullable=False),
    sa.Column("probabilities", sa.JSON, nullable=False),
    sa.Column("texts", sa.JSON(none_as_null=True)),
)

# Key/value facts about the database itself: ``schema_version`` says which migrations ran.
meta_table = sa.Table(
    "bench_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
)
# 2: config hashes with resolved defaults and weights identity; predicted_classes and flags columns.
# 3: the test texts beside the predictions (``bench errors``; NULL for runs recorded before).
SCHEMA_VERSION = 3
_ADDED_COLUMNS = {"predicted_classes": "INTEGER", "flags": "JSON"}


class RunConflictError(ResultsError):
    """``start_run`` found the same run in progress in another live process."""


def run_key(config_hash: str, fingerprint: str) -> str:
    """The run id: 12 hex characters determined by the config hash and the dataset fingerprint."""
    return hashlib.sha256(f"{config_hash}:{fingerprint}".encode()).hexdigest()[:RUN_ID_LENGTH]


def database_path(results_dir: str | Path) -> Path:
    """Where the SQLite leaderboard of a results directory lives."""
    return Path(results_dir) / DATABASE_NAME


def database_exists(path: Path) -> bool:
    """Whether the SQLite leaderboard file ``path`` exists; :class:`ResultsError` when ``path`` is something else."""
    problem = file_problem(path)
    if problem is None:
        return True
    if problem == "no such file" and not path.is_symlink():
        return False
    raise ResultsError(f"{path} is {problem}; it should be the leaderboard's SQLite file")


def sqlite_url(path: str | Path) -> str:
    """A SQLAlchemy URL for the SQLite file at ``path``."""
    return f"sqlite:///{Path(path).resolve()}"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL; ``None`` for other databases and in-memory SQLite."""
    if not url.startswith("sqlite:"):
        return None
    database = parse_database_url(url).database
    return Path(database) if database and database != ":memory:" else None


def check_storage_url(url: str, option: str = "--storage") -> None:
    """Raise :class:`UsageError` (password hidden) unless ``url`` (given as ``option``) is a database URL."""
    parse_database_url(url, option)


def normalize_url(url: str) -> str:
    """Map ``postgresql://`` and ``postgres://`` to the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def is_stale(record: RunRecord) -> bool:
    """Whether ``record`` is marked running on this host by a process that is gone."""
    return (
        record.status == "running"
        and record.pid is not None
        and record.host == socket.gethostname()
        and not process_alive(record.pid, record.updated_at)
    )


class Leaderboard:
    """Runs, their metrics and test predictions in one SQL database.

    ``url`` is any SQLAlchemy URL: ``sqlite:///path/leaderboard.db`` or
    ``postgresql://user:password@host/db`` (mapped to psycopg 3). :attr:`url`
    is the redacted form, safe to print.
    """

    def __init__(self, url: str, option: str = "--storage") -> None:
        parse_database_url(url, option)
        self._secrets = secrets_of(url)
        self.url = redact_url(url)
        try:
            self._engine = sa.create_engine(normalize_url(url), json_serializer=_json_dumps)
        except ArgumentError as error:
            raise UsageError(f"invalid storage URL {self.url}: {self._describe(error)}") from None
        except ImportError as error:
            raise ResultsError(
                f"storage URL {self.url} needs a database driver that is not installed ({error.name}); "
                "PostgreSQL needs psycopg: pip install 'ko-emotion-bench[postgres]'"
            ) from None
        if self._engine.dialect.name == "sqlite":
            _configure_sqlite(self._engine)
        self._create_schema()

    @classmethod
    def for_results_dir(cls, path: str | Path) -> Leaderboard:
        """The SQLite leaderboard ``<path>/leaderboard.db``; checks first that ``path`` is writable."""
        check_writable(path)
        database = database_path(path)
        database_exists(database)
        return cls(sqlite_url(database))

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> Leaderboard:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Leaderboard({self.url!r})"

    # ----------------------------------------------------------------- writes

    def start_run(self, config: RunConfig, fingerprint: str, dataset: str, environment: dict[str, Any]) -> str:
        """Record ``config`` on ``fingerprint`` as running in this process and return its run id.

        A new run is inserted. An existing row (failed, interrupted, pruned, finished,
        or running in a process that is gone) is reset to running with ``attempts + 1``
        and its old metrics and predictions dropped. A row running in another live
        process raises :class:`RunConflictError`. The existing row is found by config
        hash and fingerprint, so a row migrated from an older leaderboard keeps its id.
        """
        config_hash = config.config_hash()
        now = _now()
        pid, host = os.getpid(), socket.gethostname()
        values = {
            "config_hash": config.config_hash(),
            "fingerprint": fingerprint,
            "dataset": dataset,
            "encoder": config.encoder,
            "head": config.head,
            "seed": config.seed,
            "status": "running",
            "config": _redacted(json.loads(config.canonical().to_json())),
            "predicted_classes": None,
            "flags": None,
            "metrics": None,
            "macro_f1": None,
            "accuracy": None,
            "val_macro_f1": None,
            "error": None,
            "environment": _redacted(environment),
            "study": None if config.study is None else redact_text(config.study),
            "trial": config.trial,
            "pid": pid,
            "host": host,
            "updated_at": now,
        }

        def work(conn: Connection) -> str:
            row = conn.execute(
                sa.select(
                    runs_table.c.run_id,
                    runs_table.c.status,
                    runs_table.c.attempts,
                    runs_table.c.pid,
                    runs_table.c.host,
                    runs_table.c.updated_at,
                )
                .where(runs_table.c.config_hash == config_hash, runs_table.c.fingerprint == fingerprint)
                .order_by(runs_table.c.created_at)
                .with_for_update()
            ).first()
            if row is None:
                run_id = run_key(config_hash, fingerprint)
                conn.execute(sa.insert(runs_table).values(run_id=run_id, attempts=1, created_at=now, **values))
                return run_id
            run_id = row.run_id
            if row.status == "running" and not _owner_gone(row.pid, row.host, row.updated_at):
                raise RunConflictError(
                    f"run {run_id} is already running in process {row.pid} on {row.host} "
                    f"(since {row.updated_at}); wait for it or stop that process"
                )
            conn.execute(sa.delete(predictions_table).where(predictions_table.c.run_id == run_id))
            conn.execute(
                sa.update(runs_table).where(runs_table.c.run_id == run_id).values(attempts=row.attempts + 1, **values)
            )
            return run_id

        return self._transaction(work, write=True)

    def update_environment(self, run_id: str, values: dict[str, Any]) -> None:
        """Merge ``values`` into the recorded environment of a run, leaving its status, attempts and predictions.

        For what a run learns while it runs: the batch sizes an out-of-memory retry
        chose, the precision the trainer actually used.
        """

        def work(conn: Connection) -> None:
            self._require(conn, run_id)
            current = conn.execute(
                sa.select(runs_table.c.environment).where(runs_table.c.run_id == run_id).with_for_update()
            ).scalar_one()
            conn.execute(
                sa.update(runs_table)
                .where(runs_table.c.run_id == run_id)
                .values(environment={**(current or {}), **_redacted(values)}, updated_at=_now())
            )

        self._transaction(work, write=True)

    def finish_run(self, run_id: str, metrics: RunMetrics) -> None:
        """Store ``metrics`` (and its test predictions) and mark the run finished.

        The number of distinct predicted test classes and the run's flags
        (:mod:`bench.leaderboard.flags`) are computed here from the predictions.
        """
        metrics_json = asdict(metrics)
        metrics_json.pop("predictions")

        def work(conn: Connection) -> None:
            self._require(conn, run_id)
            row = conn.execute(
                sa.select(runs_table.c.fingerprint, runs_table.c.encoder).where(runs_table.c.run_id == run_id)
            ).one()
            classes, flags = self._assess(
                conn, row.fingerprint, row.encoder, metrics.macro_f1, metrics.predictions, len(metrics.labels)
            )
            conn.execute(
                sa.update(runs_table)
                .where(runs_table.c.run_id == run_id)
                .values(
                    status="finished",
                    metrics=metrics_json,
                    macro_f1=_finite_or_none(metrics.macro_f1),
                    accuracy=_finite_or_none(metrics.accuracy),
                    val_macro_f1=_finite_or_none(metrics.val_macro_f1),
                    predicted_classes=classes,
                    flags=flags,
                    error=None,
                    updated_at=_now(),
                )
            )
            conn.execute(sa.delete(predictions_table).where(predictions_table.c.run_id == run_id))
            if metrics.predictions is not None:
                row = _predictions_row(metrics.predictions)
                conn.execute(sa.insert(predictions_table).values(run_id=run_id, **row))

        self._transaction(work, write=True)

    def fail_run(self, run_id: str, error: str, status: str = "failed") -> None:
        """Mark the run ``failed``, ``interrupted`` or ``pruned`` with an error message."""
        if status not in FAILURE_STATUSES:
            raise UsageError(f"a run can end as {', '.join(FAILURE_STATUSES)}, not {status!r}")

        def work(conn: Connection) -> None:
            self._require(conn, run_id)
            conn.execute(
                sa.update(runs_table)
                .where(runs_table.c.run_id == run_id)
                .values(status=status, error=redact_text(error), updated_at=_now())
            )

        self._transaction(work, write=True)

    def delete_run(self, run_id: str) -> str:
        """Delete a run (id or unique prefix) and its predictions; returns the full run id."""

        def work(conn: Connection) -> str:
            full_id = self._resolve(conn, run_id)
            conn.execute(sa.delete(predictions_table).where(predictions_table.c.run_id == full_id))
            conn.execute(sa.delete(runs_table).where(runs_table.c.run_id == full_id))
            return full_id

        return self._transaction(work, write=True)

    def stale_runs(self) -> list[RunRecord]:
        """Runs marked running on this host whose process is gone."""
        return [record for record in self.runs(status="running") if is_stale(record)]

    def mark_stale(self) -> list[str]:
        """Mark :meth:`stale_runs` as ``interrupted`` (so a rerun retries them); returns their ids."""
        marked: list[str] = []
        for record in self.stale_runs():

            def work(conn: Connection, record: RunRecord = record) -> int:
                result = conn.execute(
                    sa.update(runs_table)
                    .where(
                        runs_table.c.run_id == record.run_id,
                        runs_table.c.status == "running",
                        runs_table.c.pid == record.pid,
                        runs_table.c.updated_at == record.updated_at,
                    )
                    .values(
                        status="interrupted",
                        error=f"process {record.pid} on {record.host} ended without finishing the run",
                        updated_at=_now(),
                    )
                )
                return result.rowcount

            if self._transaction(work, write=True):
                marked.append(record.run_id)
        return marked

    # ------------------------------------------------------------------ reads

    def get_run(self, run_id: str, *, with_predictions: bool = False) -> RunRecord:
        """One run by id or unique id prefix; :class:`UsageError` when unknown or ambiguous."""

        def work(conn: Connection) -> RunRecord:
            full_id = self._resolve(conn, run_id)
            row = conn.execute(sa.select(runs_table).where(runs_table.c.run_id == full_id)).one()
            record = _record(row)
            if with_predictions and record.metrics is not None:
                record.metrics.predictions = self._load_predictions(conn, [full_id]).get(full_id)
            return record

        return self._transaction(work)

    def runs(
        self,
        status: str | Sequence[str] | None = None,
        *,
        encoder: str | None = None,
        head: str | None = None,
        fingerprint: str | None = None,
        study: str | None = None,
    ) -> list[RunRecord]:
        """Runs matching every filter given, oldest first (``status`` may be several)."""
        query = sa.select(runs_table).order_by(runs_table.c.created_at, runs_table.c.run_id)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            unknown = [value for value in statuses if value not in RUN_STATUSES]
            if unknown:
                raise UsageError(f"unknown run status {unknown[0]!r}; choose from {', '.join(RUN_STATUSES)}")
            query = query.where(runs_table.c.status.in_(statuses))
        for column, value in (("encoder", encoder), ("head", head), ("fingerprint", fingerprint), ("study", study)):
            if value is not None:
                query = query.where(runs_table.c[column] == value)
        return self._transaction(lambda conn: [_record(row) for row in conn.execute(query)])

    def find(self, config_hash: str, fingerprint: str) -> RunRecord | None:
        """The run of ``config_hash`` on ``fingerprint``, if recorded."""
        query = sa.select(runs_table).where(
            runs_table.c.config_hash == config_hash, runs_table.c.fingerprint == fingerprint
        )
        row = self._transaction(lambda conn: conn.execute(query).first())
        return None if row is None else _record(row)

    def predictions(self, run_id: str) -> Predictions:
        """The stored test predictions of one run (id or unique prefix)."""

        def work(conn: Connection) -> Predictions:
            full_id = self._resolve(conn, run_id)
            found = self._load_predictions(conn, [full_id])
            if full_id not in found:
                raise ResultsError(f"run {full_id} has no stored test predictions (it has not finished)")
            return found[full_id]

        return self._transaction(work)

    def predictions_many(self, run_ids: Iterable[str], *, probabilities: bool = True) -> dict[str, Predictions]:
        """Test predictions of several runs (full ids) in one query; runs without predictions are absent.

        ``probabilities=False`` skips the largest columns (probabilities left empty, texts ``None``), which
        statistics do not need.
        """
        wanted = list(dict.fromkeys(run_ids))
        return self._transaction(lambda conn: self._load_predictions(conn, wanted, probabilities))

    # -------------------------------------------------------------- internals

    def _load_predictions(
        self, conn: Connection, run_ids: list[str], probabilities: bool = True
    ) -> dict[str, Predictions]:
        if not run_ids:
            return {}
        table = predictions_table.c
        columns = [table.run_id, table.example_ids, table.gold, table.predicted]
        if probabilities:
            columns += [table.probabilities, table.texts]
        rows = conn.execute(sa.select(*columns).where(table.run_id.in_(run_ids)))
        return {
            row.run_id: Predictions(
                example_ids=list(row.example_ids),
                gold=list(row.gold),
                predicted=list(row.predicted),
                probabilities=list(row.probabilities) if probabilities else [],
                texts=list(row.texts) if probabilities and row.texts is not None else None,
            )
            for row in rows
        }

    def _resolve(self, conn: Connection, run_id: str) -> str:
        """The full id of ``run_id`` (exact or unique prefix)."""
        if conn.execute(sa.select(runs_table.c.run_id).where(runs_table.c.run_id == run_id)).first() is not None:
            return run_id
        matches: list[str] = []
        if run_id and run_id.isalnum():
            matches = list(
                conn.execute(
                    sa.select(runs_table.c.run_id).where(runs_table.c.run_id.startswith(run_id)).limit(6)
                ).scalars()
            )
        if not matches:
            raise UsageError(f"unknown run {run_id!r} in leaderboard {self.url}")
        if len(matches) > 1:
            shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
            raise UsageError(f"run prefix {run_id!r} is ambiguous ({shown}); give more characters")
        return matches[0]

    def _require(self, conn: Connection, run_id: str) -> None:
        if conn.execute(sa.select(runs_table.c.run_id).where(runs_table.c.run_id == run_id)).first() is None:
            raise UsageError(f"unknown run {run_id!r} in leaderboard {self.url}")

    def _assess(
        self,
        conn: Connection,
        fingerprint: str,
        encoder: str,
        macro_f1: float,
        predictions: Predictions | None,
        num_labels: int,
    ) -> tuple[int | None, list[str] | None]:
        """Distinct predicted test classes and flags of a run (the majority row is not compared with itself)."""
        if predictions is None:
            return None, None
        classes = run_flags.predicted_class_count(predictions.predicted)
        distinct = run_flags.distinct_predictions(predictions.predicted)
        if encoder == MAJORITY_ENCODER:
            return classes, run_flags.run_flags(_finite_or_none(macro_f1), distinct, None)
        majority = conn.execute(
            sa.select(runs_table.c.macro_f1).where(
                runs_table.c.fingerprint == fingerprint,
                runs_table.c.encoder == MAJORITY_ENCODER,
                runs_table.c.status == "finished",
            )
        ).scalar()
        if majority is None:
            majority = run_flags.majority_macro_f1(predictions.gold, num_labels)
        return classes, run_flags.run_flags(_finite_or_none(macro_f1), distinct, majority)

    def _create_schema(self) -> None:
        try:
            self._transaction(lambda conn: metadata.create_all(conn), write=True)
        except ResultsError:
            # Another process may have created the tables between our check and our CREATE.
            tables = self._transaction(lambda conn: set(sa.inspect(conn).get_table_names()))
            if not {"runs", "predictions", "bench_meta"} <= tables:
                raise
        self._transaction(self._migrate, write=True)

    def _migrate(self, conn: Connection) -> None:
        """Bring a leaderboard written by an older version up to :data:`SCHEMA_VERSION` (in one transaction).

        Adds the ``texts`` column of the predictions (empty for the runs already
        recorded) and, from schema 1, the ``predicted_classes`` and ``flags`` columns
        (filled from stored predictions) and recomputes every config hash under the
        current identity rules. Run ids never change. Rows that now share a configuration keep one
        row (finished first, then the most recent) and flag the others ``duplicate``
        under their old hash; a row whose weights folder is gone keeps its old hash
        and is flagged ``legacy-identity``.
        """
        version = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")).scalar()
        if version is not None and int(version) >= SCHEMA_VERSION:
            return
        if "texts" not in {column["name"] for column in sa.inspect(conn).get_columns("predictions")}:
            conn.exec_driver_sql("ALTER TABLE predictions ADD COLUMN texts JSON")
        if version is None or int(version) < 2:
            self._rehash(conn)
        conn.execute(sa.delete(meta_table).where(meta_table.c.key == "schema_version"))
        conn.execute(sa.insert(meta_table).values(key="schema_version", value=str(SCHEMA_VERSION)))

    def _rehash(self, conn: Connection) -> None:
        """Schema 2: the ``predicted_classes`` and ``flags`` columns, config hashes under the current rules."""
        present = {column["name"] for column in sa.inspect(conn).get_columns("runs")}
        for name, kind in _ADDED_COLUMNS.items():
            if name not in present:
                conn.exec_driver_sql(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
        rows = list(conn.execute(sa.select(runs_table).order_by(runs_table.c.created_at)))
        predictions = self._load_predictions(conn, [row.run_id for row in rows], probabilities=False)
        updates: dict[str, dict[str, Any]] = {}
        keepers: dict[tuple[str, str], sa.Row[Any]] = {}
        for row in rows:
            flags: list[str] = list(row.flags or [])
            values: dict[str, Any] = {}
            try:
                config = RunConfig.from_json(json.dumps(row.config))
            except (UsageError, TypeError, KeyError, ValueError):
                flags.append(run_flags.LEGACY_IDENTITY)
            else:
                values["config"] = _redacted(json.loads(config.canonical().to_json()))
                key = (config.config_hash(), row.fingerprint)
                kept = keepers.get(key)
                if kept is None or _preferred(row, kept):
                    if kept is not None:
                        updates[kept.run_id].update(config_hash=kept.config_hash)
                        updates[kept.run_id]["flags"].append(run_flags.DUPLICATE)
                    keepers[key] = row
                    values["config_hash"] = key[0]
                else:
                    flags.append(run_flags.DUPLICATE)
            if row.status == "finished" and row.run_id in predictions and row.predicted_classes is None:
                metrics = _metrics(row.metrics) if row.metrics else None
                classes, assessed = self._assess(
                    conn,
                    row.fingerprint,
                    row.encoder,
                    row.macro_f1,
                    predictions[row.run_id],
                    len(metrics.labels) if metrics else 0,
                )
                values["predicted_classes"] = classes
                flags.extend(flag for flag in assessed or [] if flag not in flags)
            updates[row.run_id] = {**values, "flags": flags}
        for run_id, values in updates.items():
            values["flags"] = list(dict.fromkeys(values["flags"])) or None
            conn.execute(sa.update(runs_table).where(runs_table.c.run_id == run_id).values(**values))

    def _transaction(self, work: Callable[[Connection], T], *, write: bool = False) -> T:
        """Run ``work`` in one transaction, retrying while the database is locked or a key raced."""
        deadline = time.monotonic() + _RETRY_DEADLINE_S
        delay = 0.02
        integrity_retries = 3
        while True:
            try:
                with self._engine.connect() as conn:
                    conn.execution_options(bench_immediate=write)
                    with conn.begin():
                        return work(conn)
            except OperationalError as error:
                if not _is_lock_error(error) or time.monotonic() > deadline:
                    raise ResultsError(f"leaderboard {self.url}: {self._describe(error)}") from None
            except IntegrityError as error:
                integrity_retries -= 1
                if integrity_retries < 0:
                    raise ResultsError(f"leaderboard {self.url}: {self._describe(error)}") from None
            except SQLAlchemyError as error:
                raise ResultsError(f"leaderboard {self.url}: {self._describe(error)}") from None
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 1.0)

    def _describe(self, error: Exception) -> str:
        """The first line of a driver error, without any password."""
        original = getattr(error, "orig", None) or error
        lines = str(original).strip().splitlines()
        return redact_text(lines[0] if lines else type(original).__name__, self._secrets)


def _configure_sqlite(engine: sa.Engine) -> None:
    """WAL, a busy timeout, and our own BEGIN (IMMEDIATE for writes) instead of pysqlite's."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("bench_immediate") else "BEGIN")


def _is_lock_error(error: OperationalError) -> bool:
    message = str(error.orig).lower()
    return "locked" in message or "busy" in message


def _owner_gone(pid: int | None, host: str | None, started_at: str) -> bool:
    """Whether the process that marked a run running can no longer finish it."""
    if host != socket.gethostname() or pid is None:
        return False
    return pid == os.getpid() or not process_alive(pid, started_at)


def _record(row: sa.Row[Any]) -> RunRecord:
    return RunRecord(
        run_id=row.run_id,
        config_hash=row.config_hash,
        fingerprint=row.fingerprint,
        dataset=row.dataset,
        encoder=row.encoder,
        head=row.head,
        seed=row.seed,
        status=row.status,
        config=row.config,
        created_at=row.created_at,
        updated_at=row.updated_at,
        error=row.error,
        macro_f1=row.macro_f1,
        accuracy=row.accuracy,
        val_macro_f1=row.val_macro_f1,
        metrics=None if row.metrics is None else _metrics(row.metrics),
        environment=row.environment,
        study=row.study,
        trial=row.trial,
        pid=row.pid,
        host=row.host,
        attempts=row.attempts,
        predicted_classes=row.predicted_classes,
        flags=list(row.flags or []),
    )


def _preferred(row: sa.Row[Any], other: sa.Row[Any]) -> bool:
    """Whether ``row`` rather than ``other`` keeps a configuration that two old rows share."""
    return (row.status == "finished", row.updated_at) > (other.status == "finished", other.updated_at)


def _metrics(data: dict[str, Any]) -> RunMetrics:
    known = {field.name for field in fields(RunMetrics)}
    values = {key: value for key, value in data.items() if key in known}
    values["per_class"] = {label: ClassScores(**scores) for label, scores in values.get("per_class", {}).items()}
    return RunMetrics(**values)


def _predictions_row(predictions: Predictions) -> dict[str, Any]:
    return {
        "example_ids": list(predictions.example_ids),
        "gold": list(predictions.gold),
        "predicted": list(predictions.predicted),
        "probabilities": list(predictions.probabilities),
        "texts": list(predictions.texts) if predictions.texts is not None else None,
    }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _plain(value: Any) -> Any:
    """JSON-ready copy: numpy scalars and arrays as Python values, NaN/inf as None, paths as text."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy scalar or array
        return _plain(value.tolist())
    raise TypeError(f"cannot store {type(value).__name__} in the leaderboard: {value!r}")


def _json_dumps(value: Any) -> str:
    return json.dumps(_plain(value), ensure_ascii=False, allow_nan=False)


def _redacted(value: Any) -> Any:
    """``value`` with credentials removed from every URL-looking string."""
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redacted(item) for item in value]
    return redact_text(value) if isinstance(value, str) else value
