"""Real tiny training runs (scratch encoder, 2 layers, hidden 32, one epoch) for the report/predict/baseline tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.config import RunConfig
from bench.leaderboard.records import RunRecord
from bench.leaderboard.store import Leaderboard
from bench.training.runner import run_experiment
from tests.conftest import tiny_config_pairs

TRAIN_LIMIT = 90


def tiny_run_config(results_dir: Path, **changes: Any) -> RunConfig:
    """A scratch + linear config that trains in a few seconds on the bundled sample data."""
    base = RunConfig(
        encoder="scratch",
        head="linear",
        encoder_config=tiny_config_pairs(),
        train_limit=TRAIN_LIMIT,
        epochs=1,
        max_len=32,
        batch_size=16,
        lr=1e-3,
        device="cpu",
        results_dir=str(results_dir),
    )
    return base.with_updates(**changes)


def train_tiny_run(results_dir: Path, **changes: Any) -> RunRecord:
    """Train, test and record one tiny run in ``results_dir``; it must finish."""
    config = tiny_run_config(results_dir, **changes)
    with Leaderboard.for_results_dir(results_dir) as board:
        record = run_experiment(config, board)
    assert record.status == "finished", record.error
    return record
