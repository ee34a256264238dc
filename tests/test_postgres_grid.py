"""Two `bench grid` workers share one grid through a real PostgreSQL server (Optuna storage + leaderboard).

The server runs from a temporary directory on a free localhost port and is
stopped afterwards. As root, PostgreSQL refuses to run, so it runs as the
``postgres`` user (or ``nobody``) through ``runuser``. Without PostgreSQL
installed the test is skipped with the reason.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from bench.leaderboard.store import Leaderboard
from bench.tuning import coordination
from tests.conftest import ROOT, tiny_config_args

WORKER_TIMEOUT_S = 300


def postgres_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` with initdb, else the directory of ``initdb`` on PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(path.split("/")[4]))
    found = candidates[-1] if candidates else shutil.which("initdb")
    return Path(found).parent if found else None


def server_user() -> str | None:
    """Who runs the server: ourselves, or (as root) ``postgres`` or ``nobody``."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    pytest.skip("running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL as")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL server for this module; yields its URL and stops it afterwards."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin or on PATH); apt-get install postgresql"
        )
    user = server_user()
    as_user = ["runuser", "-u", user, "--"] if user else []
    if user and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser to start PostgreSQL as another user")
    directory = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    if user:
        entry = pwd.getpwnam(user)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    data, port = directory / "data", free_port()

    def run(*command: str) -> None:
        subprocess.run([*as_user, *command], check=True, capture_output=True, timeout=120)

    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "bench", "-E", "UTF8", "--no-sync")
        options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        run(
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(directory / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
    except subprocess.CalledProcessError as error:
        shutil.rmtree(directory, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {error.stderr.decode(errors='replace')[-500:]}")
    try:
        yield f"postgresql://bench@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            check=False,
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(directory, ignore_errors=True)


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
