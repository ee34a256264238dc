"""Process target of the concurrent-writer test; imports only the store so that spawned workers start fast."""

from __future__ import annotations

from typing import Any

from bench.config import RunConfig
from bench.leaderboard.records import ClassScores, Predictions, RunMetrics
from bench.leaderboard.store import Leaderboard


def write_runs(url: str, worker: int, count: int, barrier: Any) -> None:
    """Record ``count`` finished runs (seeds ``worker * 1000 + i``) into the leaderboard at ``url``."""
    board = Leaderboard(url)
    barrier.wait()
    for index in range(count):
        config = RunConfig(encoder="scratch", head="linear", epochs=1, seed=worker * 1000 + index)
        run_id = board.start_run(config, "fp-a", "sample", {"worker": worker})
        board.finish_run(
            run_id,
            RunMetrics(
                macro_f1=0.5,
                accuracy=0.5,
                val_macro_f1=0.5,
                labels=["a", "b"],
                per_class={"a": ClassScores(0.5, 0.5, 0.5, 1), "b": ClassScores(0.5, 0.5, 0.5, 1)},
                confusion=[[1, 0], [1, 0]],
                predictions=Predictions(["x", "y"], [0, 1], [0, 0], [[0.9, 0.1], [0.8, 0.2]]),
            ),
        )
    board.close()
