"""Two `bench grid` workers share one grid through a real PostgreSQL server (Optuna storage + leaderboard).

The server (:mod:`tests.postgres_server`) runs from a temporary directory and is
stopped afterwards; without PostgreSQL installed the test is skipped with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import optuna
import pytest

from bench.leaderboard.store import Leaderboard
from bench.tuning import coordination
from tests import postgres_server
from tests.conftest import ROOT, tiny_config_args

# the module-scoped PostgreSQL fixture, bound here under its name so pytest finds it for this module
postgres_url = postgres_server.postgres_url
WORKER_TIMEOUT_S = 300


@pytest.mark.slow
def test_two_workers_share_a_grid_and_run_every_point_once(postgres_url: str, tmp_path: Path):
    grid = [
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
        "--storage",
        postgres_url,
        "--no-progress",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from bench.cli import main; main()",
                *grid,
                "--results",
                str(tmp_path / f"machine{index}"),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for index in range(2)
    ]
    outputs = [worker.communicate(timeout=WORKER_TIMEOUT_S)[0] for worker in workers]
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output[-3000:]

    board = Leaderboard(postgres_url)
    runs = board.runs()
    assert sorted((run.head, run.seed) for run in runs) == [("linear", 1), ("linear", 2), ("mlp", 1), ("mlp", 2)]
    assert all(run.status == "finished" and run.attempts == 1 for run in runs), [
        (r.head, r.seed, r.attempts) for r in runs
    ]
    (study_name,) = {run.study for run in runs}
    study = optuna.load_study(
        study_name=study_name, storage=postgres_url.replace("postgresql://", "postgresql+psycopg://")
    )
    ran = Counter(
        trial.user_attrs[coordination.POINT]
        for trial in study.trials
        if trial.state == optuna.trial.TrialState.COMPLETE
    )
    assert ran == Counter({0: 1, 1: 1, 2: 1, 3: 1})
    ran_per_worker = [int(output.split("this worker: ")[1].split(" ran")[0]) for output in outputs]
    assert sum(ran_per_worker) == 4, outputs
    assert not list((tmp_path / "machine0").glob("leaderboard.db")), "the leaderboard lives in PostgreSQL"
