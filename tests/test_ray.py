"""`bench grid`/`bench tune --ray`: workers as Ray tasks on a real local Ray cluster sharing a real PostgreSQL server.

The test starts its own Ray head (``ray start --head``, 2 CPUs, free ports, its own
temporary directory) and stops it afterwards by ending the processes of that head
only. Without ray or PostgreSQL installed the cluster tests are skipped with the reason.
"""

from __future__ import annotations

import _thread
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from bench.errors import UsageError
from bench.leaderboard.records import RunRecord
from bench.leaderboard.store import Leaderboard
from bench.tuning import coordination
from bench.tuning.ray_cluster import CPU_RUN_THREADS, NodeResources, RayClusterError, ctrl_c_raises, plan_tasks
from tests.conftest import ROOT, run_cli, tiny_config_args
from tests.postgres_server import free_port, postgres_url  # noqa: F401 - the fixture

DRIVER_TIMEOUT_S = 300
TINY_GRID = [*tiny_config_args(), "--train-limit", "60", "--epochs", "1", "--max-len", "32", "--no-progress"]
# The sample's whole training split instead of 60 texts: runs long enough (seconds) that a test acting on a
# running run (killing its worker, Ctrl-C) acts before it ends.
WHOLE_SPLIT = ["--train-limit", "100000"]


def grid_args(seeds: str, storage: str, results: Path, address: str) -> list[str]:
    """A 4-point grid (2 heads × 2 seeds) of tiny scratch encoders run on the Ray cluster at ``address``."""
    return [
        "grid",
        "--encoders",
        "scratch",
        "--heads",
        "linear,mlp",
        "--seeds",
        seeds,
        *TINY_GRID,
        "--storage",
        storage,
        "--results",
        str(results),
        "--ray",
        address,
        "--threads",
        "1",
    ]


def pythonpath_env() -> dict[str, str]:
    """This environment with this checkout first on ``PYTHONPATH`` (the Ray workers import it as installed)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


# The driver takes Ctrl-C as when started from a terminal, also where the tests run in the background (a
# background job ignores SIGINT, and a child inherits that).
AS_FROM_A_TERMINAL = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "


def start_driver(args: list[str]) -> subprocess.Popen[str]:
    """``bench ARGS`` in a fresh interpreter (the driver), its output collected."""
    return subprocess.Popen(
        [sys.executable, "-c", AS_FROM_A_TERMINAL + "from bench.cli import main; main()", *args],
        env=pythonpath_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


# ------------------------------------------------------------------------------------------- options


def test_ray_needs_a_postgresql_storage(capsys, results_dir: Path):
    base = ["grid", "--heads", "linear", "--results", str(results_dir), "--ray", "auto"]
    code, out, err = run_cli(base, capsys)
    assert code == 2 and "--ray needs --storage postgresql://" in err and "Traceback" not in err + out
    code, _, err = run_cli([*base, "--storage", f"sqlite:///{results_dir}/board.db"], capsys)
    assert code == 2 and "not reachable from the cluster's other nodes" in err
    code, _, err = run_cli(
        [*base, "--storage", "postgresql://u@db/x", "--study-storage", f"sqlite:///{results_dir}/o.db"], capsys
    )
    assert code == 2 and "--study-storage database every node reaches" in err
    assert not list(results_dir.iterdir()), "nothing written before the options are checked"


def test_ray_options_without_ray_or_with_local_gpus_are_one_line_errors(capsys, monkeypatch, results_dir: Path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as where it is not installed
    base = ["tune", "--results", str(results_dir), "--storage", "postgresql://u@db/x"]
    code, _, err = run_cli([*base, "--ray", "auto"], capsys)
    assert code == 2 and "pip install 'ko-emotion-bench[ray]'" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli([*base, "--ray", "auto", "--gpus", "0,1"], capsys)
    assert code == 2 and "Ray assigns the GPUs" in err
    code, _, err = run_cli([*base, "--gpus-per-run", "1"], capsys)
    assert code == 2 and "--gpus-per-run applies to the workers of --ray" in err


def test_an_address_where_no_cluster_answers_is_a_one_line_error_at_once(capsys, results_dir: Path):
    pytest.importorskip("ray", reason="needs the ray package (pip install 'ko-emotion-bench[ray]')")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = ["grid", "--heads", "linear", "--results", str(results_dir), "--storage", "postgresql://u@db/x"]
    started = time.monotonic()
    code, out, err = run_cli([*base, "--ray", f"127.0.0.1:{port}"], capsys)
    assert code == 2 and f"--ray 127.0.0.1:{port}: no Ray cluster answers there" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in out + err
    assert time.monotonic() - started < 30
    code, _, err = run_cli([*base, "--ray", "headnode"], capsys)
    assert code == 2 and "expected auto, HOST:PORT or ray://HOST:PORT" in err


def test_a_cancelled_task_is_interrupted_even_where_ctrl_c_is_ignored():
    """Ray cancels a running task with ``_thread.interrupt_main()``, which Python drops while SIGINT is ignored
    (every process of a node started in the background): the task's wait takes it all the same."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _thread.interrupt_main()
        time.sleep(0.01)  # dropped: nothing is raised
        with pytest.raises(KeyboardInterrupt), ctrl_c_raises():
            _thread.interrupt_main()
            time.sleep(0.01)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_task_s_worker_process_takes_ctrl_c_where_its_node_ignores_it():
    check = (
        "import signal; from bench.tuning.ray_cluster import settle_task_worker; settle_task_worker(); "
        "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
    )
    shown = subprocess.run(
        [sys.executable, "-c", check], env=pythonpath_env(), capture_output=True, text=True, preexec_fn=ignore_ctrl_c
    )
    assert shown.stdout.strip() == "True", shown.stderr


def test_the_plan_fills_the_cluster_one_gpu_or_a_few_threads_per_run():
    gpu_nodes = [NodeResources(cpus=32, gpus=4), NodeResources(cpus=16, gpus=2), NodeResources(cpus=8, gpus=0)]
    plan = plan_tasks(gpu_nodes, workers=None, gpus_per_run=None, threads=None)
    assert (plan.tasks, plan.gpus_per_run, plan.threads) == (6, 1.0, 8)  # 16 CPUs / 2 GPUs on the smallest node
    assert plan.describe() == "6 Ray tasks, 1 GPU and 8 threads each"
    assert plan_tasks(gpu_nodes, workers=None, gpus_per_run=2, threads=None, devices=2).tasks == 3
    assert plan_tasks(gpu_nodes, workers=None, gpus_per_run=0.5, threads=2).tasks == 12
    assert plan_tasks(gpu_nodes, workers=3, gpus_per_run=None, threads=None).tasks == 3
    cpu_only = plan_tasks(gpu_nodes, workers=None, gpus_per_run=0, threads=None)
    assert (cpu_only.threads, cpu_only.tasks) == (CPU_RUN_THREADS, (32 + 16 + 8) // CPU_RUN_THREADS)
    small = [NodeResources(cpus=2, gpus=0)]
    assert plan_tasks(small, workers=None, gpus_per_run=None, threads=None) == plan_tasks(
        small, workers=None, gpus_per_run=0, threads=2
    )
    assert plan_tasks(small, workers=None, gpus_per_run=None, threads=1).tasks == 2
    with pytest.raises(RayClusterError, match="no node of the Ray cluster has 1 GPU"):
        plan_tasks(small, workers=None, gpus_per_run=1, threads=None)
    with pytest.raises(UsageError, match="above 1, a run takes whole GPUs"):
        plan_tasks(gpu_nodes, workers=None, gpus_per_run=1.5, threads=None)
    with pytest.raises(UsageError, match="each run trains on 2 GPUs"):
        plan_tasks(gpu_nodes, workers=None, gpus_per_run=1, threads=None, devices=2)


# ------------------------------------------------------------------------------------------- cluster


def proc_stat(pid: int) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the command name: state, parent, group, session, …"""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2 :].split()


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        return proc_stat(pid)[0] != "Z"
    except OSError:
        return False


def session_processes(session: int, marker: str) -> list[int]:
    """Processes of the Ray head: in the session its ``ray start`` began, or naming its temporary directory."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = proc_stat(int(entry.name))
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if fields[0] != "Z" and (int(fields[3]) == session or marker in command):
            found.append(int(entry.name))
    return found


def end_processes(pids: list[int]) -> None:
    """SIGTERM, then SIGKILL what is left after 5 s."""
    for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 0.0)):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                continue
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
            time.sleep(0.2)


def ignore_ctrl_c() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A Ray head with 2 CPUs started for this module; yields its address and ends its processes afterwards."""
    pytest.importorskip("ray", reason="ray is not installed: pip install 'ko-emotion-bench[ray]'")
    executable = Path(sys.executable).parent / "ray"
    if not executable.exists():
        pytest.skip(f"the ray command is not installed beside {sys.executable}")
    directory = Path(tempfile.mkdtemp(prefix="bench-ray-", dir="/tmp"))  # short: Ray's socket paths have a limit
    port = free_port()
    command = [
        str(executable), "start", "--head", "--num-cpus=2", "--num-gpus=0", f"--port={port}",
        "--node-ip-address=127.0.0.1", f"--temp-dir={directory}", "--disable-usage-stats", "--include-dashboard=false",
        f"--ray-client-server-port={free_port()}", f"--dashboard-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}",
    ]  # fmt: skip
    # Started as a node started in the background is (nohup ray start … &): its processes ignore SIGINT, so the
    # Ctrl-C test shows that a cancelled task still stops its run there.
    head = subprocess.Popen(
        command, env=pythonpath_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, preexec_fn=ignore_ctrl_c,
    )  # fmt: skip
    try:
        output = head.communicate(timeout=180)[0]
        if head.returncode != 0:
            pytest.fail(f"could not start a Ray head: {output[-1500:]}")
        yield f"127.0.0.1:{port}"
    finally:
        end_processes(session_processes(head.pid, str(directory)))
        shutil.rmtree(directory, ignore_errors=True)


def runs_of(board: Leaderboard, seeds: set[int]) -> list[RunRecord]:
    """The leaderboard rows of the runs with these seeds."""
    return [run for run in board.runs() if run.seed in seeds]


def first_running(driver: subprocess.Popen[str], board: Leaderboard, seeds: set[int]) -> RunRecord:
    """The first run of ``seeds`` seen running (with its process id) while ``driver`` runs the grid."""
    deadline = time.monotonic() + DRIVER_TIMEOUT_S
    while driver.poll() is None and time.monotonic() < deadline:
        running = [run for run in runs_of(board, seeds) if run.status == "running" and run.pid]
        if running:
            return running[0]
        time.sleep(0.2)
    output = driver.communicate()[0] if driver.poll() is not None else ""
    raise AssertionError("no point started: " + output[-3000:])


def load_grid_study(storage: str, study_name: str) -> optuna.Study:
    return optuna.load_study(study_name=study_name, storage=storage.replace("postgresql://", "postgresql+psycopg://"))


def completed_points(storage: str, study_name: str) -> Counter[int]:
    """How often each point of a grid study completed."""
    study = load_grid_study(storage, study_name)
    return Counter(
        trial.user_attrs[coordination.POINT]
        for trial in study.trials
        if trial.state == optuna.trial.TrialState.COMPLETE
    )


@pytest.mark.slow
def test_a_grid_runs_as_ray_tasks_every_point_once(ray_address: str, postgres_url: str, tmp_path: Path):  # noqa: F811
    driver = start_driver(grid_args("1,2", postgres_url, tmp_path / "results", ray_address))
    output = driver.communicate(timeout=DRIVER_TIMEOUT_S)[0]
    assert driver.returncode == 0, output[-3000:]
    assert "2 Ray tasks, 1 threads each" in output  # 2 CPUs / --threads 1

    runs = runs_of(Leaderboard(postgres_url), {1, 2})
    assert sorted((run.head, run.seed) for run in runs) == [("linear", 1), ("linear", 2), ("mlp", 1), ("mlp", 2)]
    assert all(run.status == "finished" and run.attempts == 1 for run in runs), [(r.head, r.attempts) for r in runs]
    (study_name,) = {run.study for run in runs}
    assert completed_points(postgres_url, study_name) == Counter({0: 1, 1: 1, 2: 1, 3: 1})
    logs = sorted((tmp_path / "results" / "logs").glob("*/worker-*.log"))
    assert [log.name for log in logs] == ["worker-0.log", "worker-1.log"]
    ran = [int(log.read_text().split("this worker: ")[1].split(" ran")[0]) for log in logs]
    assert sum(ran) == 4, [log.read_text()[-1500:] for log in logs]


@pytest.mark.slow
@pytest.mark.parametrize(("killed", "seeds"), [("Ray worker", (3, 4)), ("bench worker", (7, 8))])
def test_a_killed_worker_has_its_task_retried_and_its_point_run_once(
    killed: str,
    seeds: tuple[int, int],
    ray_address: str,
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
):
    board = Leaderboard(postgres_url)
    grid = grid_args(",".join(map(str, seeds)), postgres_url, tmp_path / "results", ray_address)
    driver = start_driver([*grid, *WHOLE_SPLIT])
    victim = first_running(driver, board, set(seeds))
    # The bench worker's parent is the Ray worker process executing the task.
    os.kill(int(proc_stat(victim.pid)[1]) if killed == "Ray worker" else victim.pid, signal.SIGKILL)
    ended_by = time.monotonic() + 15
    while alive(victim.pid) and time.monotonic() < ended_by:
        time.sleep(0.1)
    orphaned = alive(victim.pid)
    output = driver.communicate(timeout=DRIVER_TIMEOUT_S)[0]
    assert driver.returncode == 0, output[-3000:]
    assert not orphaned, "the bench worker of a killed Ray worker ends with it"

    runs = runs_of(board, set(seeds))
    (study_name,) = {run.study for run in runs}
    logs = [log.read_text()[-2000:] for log in sorted((tmp_path / "results" / "logs").glob("*/worker-*.log"))]
    trials = [
        (trial.number, trial.state.name, trial.user_attrs.get(coordination.POINT), trial.system_attrs)
        for trial in load_grid_study(postgres_url, study_name).trials
    ]
    report = f"killed {victim.head, victim.seed}\n{output[-3000:]}\n{logs}\n{trials}"
    assert sorted((run.head, run.seed, run.status) for run in runs) == [
        (head, seed, "finished") for head in ("linear", "mlp") for seed in seeds
    ], report
    attempts = {(run.head, run.seed): run.attempts for run in runs}
    assert attempts.pop((victim.head, victim.seed)) == 2, "the killed point ran again\n" + report
    assert set(attempts.values()) == {1}, report
    assert completed_points(postgres_url, study_name) == Counter({0: 1, 1: 1, 2: 1, 3: 1}), report


@pytest.mark.slow
def test_a_study_runs_as_ray_tasks(ray_address: str, postgres_url: str, tmp_path: Path):  # noqa: F811
    args = [
        "tune", "--encoder", "scratch", "--head", "linear", "--trials", "2", "--study", "ray-tune",
        *TINY_GRID, "--storage", postgres_url, "--results", str(tmp_path / "results"), "--ray", ray_address,
        "--threads", "1",
    ]  # fmt: skip
    driver = start_driver(args)
    output = driver.communicate(timeout=DRIVER_TIMEOUT_S)[0]
    assert driver.returncode == 0, output[-3000:]
    study = optuna.load_study(
        study_name="ray-tune", storage=postgres_url.replace("postgresql://", "postgresql+psycopg://")
    )
    ended = [trial for trial in study.trials if trial.state.is_finished()]
    assert len([t for t in ended if t.state != optuna.trial.TrialState.FAIL]) >= 2, output[-3000:]
    assert "trials: " in output
    logs = sorted((tmp_path / "results" / "logs" / "ray-tune").glob("worker-*.log"))
    assert [log.name for log in logs] == ["worker-0.log", "worker-1.log"]


@pytest.mark.slow
def test_ctrl_c_on_the_driver_interrupts_the_workers_runs(
    ray_address: str,
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
):
    board = Leaderboard(postgres_url)
    driver = start_driver([*grid_args("5,6", postgres_url, tmp_path / "results", ray_address), *WHOLE_SPLIT])
    first_running(driver, board, {5, 6})
    driver.send_signal(signal.SIGINT)
    output = driver.communicate(timeout=120)[0]
    assert driver.returncode == 130 and "interrupted (Ctrl-C)" in output, output[-3000:]
    rows = runs_of(board, {5, 6})
    assert not any(alive(run.pid) for run in rows if run.pid), "the workers end"
    # Every run either finished before Ctrl-C reached its worker or was stopped and recorded as interrupted (a
    # killed worker would have left it running); the grid stopped before its end.
    statuses = Counter(run.status for run in rows)
    assert set(statuses) <= {"finished", "interrupted"} and statuses["finished"] < 4, (statuses, output[-3000:])
