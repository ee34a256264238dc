"""The results folder: proving it takes data, and where a run's artefacts live in it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bench.errors import ResultsError

MIN_FREE_MB = 64


def check_writable(path: str | Path, min_free_mb: int = MIN_FREE_MB) -> Path:
    """Create ``path`` if needed and prove it takes data: write, fsync and delete a probe file.

    Raises :class:`ResultsError` when the directory cannot be created or written,
    or when fewer than ``min_free_mb`` MiB are free on its disk.
    """
    directory = Path(path)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ResultsError(f"cannot create results directory {directory}: {error.strerror or error}") from None
    free_mb = shutil.disk_usage(directory).free / 2**20
    if free_mb < min_free_mb:
        raise ResultsError(
            f"results directory {directory} has only {free_mb:.0f} MiB free; at least {min_free_mb} MiB are needed"
        )
    probe = directory / f".write-probe-{os.getpid()}"
    try:
        with open(probe, "wb") as handle:
            handle.write(os.urandom(64 * 1024))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        raise ResultsError(f"cannot write to results directory {directory}: {error.strerror or error}") from None
    finally:
        probe.unlink(missing_ok=True)
    return directory


def run_directory(results_dir: Path, run_id: str) -> Path:
    """Where a run's artefacts live: ``<results>/runs/<run_id>`` (run ids are hex, no traversal)."""
    if not run_id.isalnum():
        raise ValueError(f"invalid run id {run_id!r}")
    return results_dir / "runs" / run_id
