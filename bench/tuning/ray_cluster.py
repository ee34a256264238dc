"""Workers as Ray tasks on an existing Ray cluster (``--ray ADDRESS``).

Each task runs the same worker command as a local worker, a Slurm array task or a
hand-started worker (``bench grid …`` / ``bench tune …`` without ``--ray``) in a
subprocess on the node Ray picked, with the GPUs Ray gave it. The workers share
the PostgreSQL leaderboard and Optuna study, so the grid's and study's own
coordination decides what each one runs. A task whose worker process is killed
(out of memory, ``kill -9``, its Ray worker or node lost) is retried by Ray; the
new worker retries the killed point as any worker starting after a death does.

Ray is imported only here and only when called, so commands without ``--ray``
never load it. Every node needs this package installed (with its plugins), as for
Slurm: tasks run ``python -c "from bench.cli import main; main()"`` with the node's
Python.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from bench.errors import BenchError, UsageError
from bench.tuning.storage import is_sqlite
from bench.tuning.workers import PACKAGE_ROOT, python_path, worker_command

INSTALL_HINT = "pip install 'ko-emotion-bench[ray]'"
# A task's worker starts as a local worker does (:data:`bench.tuning.workers.ENTRY`), after
# :func:`settle_task_worker`.
TASK_ENTRY = (
    "-c",
    "from bench.tuning.ray_cluster import settle_task_worker; settle_task_worker(); from bench.cli import main; main()",
)
PARENT_PID_ENV = "BENCH_RAY_WORKER_PID"
PR_SET_PDEATHSIG = 1
# Threads of a run on a CPU-only cluster without --threads: small-batch training gains little past this.
CPU_RUN_THREADS = 4
# How often a task checks whether its worker process has ended (and whether it was cancelled).
TASK_POLL_S = 0.5
# Seconds to wait for the cluster's address to take a TCP connection.
REACH_TIMEOUT_S = 5.0
# How often Ray starts a task again whose worker process or Ray worker died.
TASK_RETRIES = 3


class RayClusterError(BenchError):
    """The Ray cluster cannot be reached or cannot run the workers."""


class WorkerKilled(Exception):
    """The worker process of a Ray task was killed by a signal; Ray retries the task."""


def import_ray() -> ModuleType:
    """The ``ray`` module, or a one-line :class:`UsageError` naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise UsageError(f"--ray needs the ray package: {INSTALL_HINT}") from None
    return ray


def check_shared_storage(storage: str | None, study_storage: str) -> None:
    """``--ray`` workers on other machines need database servers: a one-line :class:`UsageError` for SQLite."""
    if not storage or is_sqlite(storage):
        raise UsageError(
            "--ray needs --storage postgresql://… (a leaderboard database every node reaches); "
            "a SQLite file on this machine is not reachable from the cluster's other nodes"
        )
    if is_sqlite(study_storage):
        raise UsageError(
            f"--ray needs a --study-storage database every node reaches, not the SQLite file {study_storage}"
        )


@dataclass(frozen=True)
class NodeResources:
    """The CPUs and GPUs of one live Ray node."""

    cpus: float
    gpus: float


@dataclass(frozen=True)
class RayPlan:
    """How many worker tasks to start, and the GPUs and CPU threads each one reserves."""

    tasks: int
    gpus_per_run: float
    threads: int

    def describe(self) -> str:
        """``2 Ray tasks, 1 GPU and 8 threads each``."""
        gpus = f"{self.gpus_per_run:g} GPU{'s' if self.gpus_per_run != 1 else ''} and " if self.gpus_per_run else ""
        return f"{self.tasks} Ray task{'s' if self.tasks != 1 else ''}, {gpus}{self.threads} threads each"


def _runs_on(node: NodeResources, gpus_per_run: float, threads: int) -> int:
    """How many runs fit on ``node`` at once."""
    by_cpu = int(node.cpus // threads)
    return min(by_cpu, int(node.gpus // gpus_per_run)) if gpus_per_run else by_cpu


def plan_tasks(
    nodes: Sequence[NodeResources],
    *,
    workers: int | None,
    gpus_per_run: float | None,
    threads: int | None,
    devices: int = 1,
) -> RayPlan:
    """The worker tasks for a cluster of ``nodes``.

    GPUs per run: ``gpus_per_run``, else ``devices`` (1) where the cluster has GPUs,
    else 0. Threads per run: ``threads``, else on GPU nodes the CPUs of the smallest
    one divided by the runs its GPUs take, else :data:`CPU_RUN_THREADS` (at most
    the largest node's CPUs). Tasks: ``workers``, else as many runs as the nodes
    hold at once.
    """
    if gpus_per_run is not None:
        if gpus_per_run > 1 and not float(gpus_per_run).is_integer():
            raise UsageError(f"--gpus-per-run {gpus_per_run:g}: above 1, a run takes whole GPUs")
        if devices > 1 and gpus_per_run < devices:
            raise UsageError(
                f"--gpus-per-run {gpus_per_run:g} with --devices {devices}: each run trains on {devices} GPUs"
            )
    gpus = gpus_per_run if gpus_per_run is not None else (float(devices) if any(n.gpus for n in nodes) else 0.0)
    gpu_nodes = [node for node in nodes if gpus and node.gpus >= gpus]
    if threads is None:
        if gpu_nodes:
            threads = max(1, min(int(node.cpus // int(node.gpus // gpus)) for node in gpu_nodes))
        else:
            threads = max(1, min(CPU_RUN_THREADS, int(max((node.cpus for node in nodes), default=1))))
    capacity = sum(_runs_on(node, gpus, threads) for node in nodes)
    if capacity == 0:
        need = f"{gpus:g} GPU(s) and {threads} CPU(s)" if gpus else f"{threads} CPU(s)"
        raise RayClusterError(f"no node of the Ray cluster has {need} free for a run; see --gpus-per-run and --threads")
    return RayPlan(tasks=workers or capacity, gpus_per_run=gpus, threads=threads)


def check_reachable(address: str, timeout: float = REACH_TIMEOUT_S) -> None:
    """A one-line :class:`UsageError` when ``HOST:PORT`` or ``ray://HOST:PORT`` takes no connection.

    ``ray.init`` retries an unreachable address for a minute or more before giving up;
    this answers a mistyped address in seconds. ``auto`` is left to Ray.
    """
    if address == "auto":
        return
    host, separator, port = address.removeprefix("ray://").rpartition(":")
    if not separator or not port.isdigit() or not host:
        raise UsageError(f"--ray {address!r}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as error:
        raise UsageError(f"--ray {address}: no Ray cluster answers there ({error.strerror or error})") from None


def connect(ray: ModuleType, address: str) -> list[NodeResources]:
    """Join the Ray cluster at ``address`` (``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``); its live nodes."""
    check_reachable(address)
    try:
        ray.init(address=address, log_to_driver=False, logging_level="ERROR", configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise RayClusterError(f"cannot connect to the Ray cluster at {address!r}: {first_line}") from None
    return [
        NodeResources(cpus=node["Resources"].get("CPU", 0.0), gpus=node["Resources"].get("GPU", 0.0))
        for node in ray.nodes()
        if node.get("Alive")
    ]


@dataclass(frozen=True)
class TaskResult:
    """A worker task's end: the worker's exit code and output, or Ray's reason it could not finish."""

    code: int
    output: str = ""
    error: str | None = None


def settle_task_worker() -> None:
    """Make the worker process of a Ray task behave as one started from a shell.

    Signals are unblocked (a Ray worker blocks some, and a child inherits its mask) and
    Ctrl-C raises :class:`KeyboardInterrupt` again (a node started in the background, as
    ``nohup ray start … &`` does, ignores SIGINT, and its processes inherit that), so that
    Ctrl-C reaches the run; and on Linux the process is killed when the Ray
    worker that started it dies (killed, out of memory, its node lost), so that no
    orphaned training holds the node while Ray retries the task. The retried worker
    finds the run's process gone and runs the point again (an orderly stop would
    record it as interrupted, which a grid leaves for its next run).
    """
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    signal.signal(signal.SIGINT, signal.default_int_handler)
    parent = os.environ.pop(PARENT_PID_ENV, "")
    if not parent or not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(parent):  # the Ray worker died before the request
        os.kill(os.getpid(), signal.SIGKILL)


def run_worker_task(args: Sequence[str], package_root: str, cwd: str) -> TaskResult:
    """Body of a Ray task: run ``bench ARGS`` with this node's Python; its exit code and output.

    Runs in ``cwd`` (the driver's directory) where this node has it. A worker killed by a
    signal raises :class:`WorkerKilled` so that Ray retries the task; Ctrl-C (a cancelled
    task) is passed on to the worker, which records its run as interrupted.
    """
    env = {**os.environ, "PYTHONPATH": python_path(package_root, os.environ), PARENT_PID_ENV: str(os.getpid())}
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            worker_command(args, TASK_ENTRY),
            env=env,
            cwd=cwd if os.path.isdir(cwd) else None,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            # Polled rather than waited for: Ray cancels a task with _thread.interrupt_main(), a KeyboardInterrupt
            # that Python raises between bytecodes, never during a blocking wait.
            with ctrl_c_raises():
                while (code := process.poll()) is None:
                    time.sleep(TASK_POLL_S)
        except KeyboardInterrupt:
            process.send_signal(signal.SIGINT)
            process.wait()
            raise
        log.seek(0)
        output = log.read().decode(errors="replace")
    if code < 0:
        raise WorkerKilled(f"the worker process was killed by signal {-code}:\n{output[-2000:]}")
    return TaskResult(code, output)


@contextmanager
def ctrl_c_raises() -> Iterator[None]:
    """Inside, Ctrl-C raises :class:`KeyboardInterrupt` in this (main) thread even where SIGINT is ignored.

    Ray cancels a running task with ``_thread.interrupt_main()``, which Python drops when SIGINT is
    ignored, as it is in every process of a node started in the background (``nohup ray start … &``):
    there a cancelled task would run to its end. Elsewhere than the main thread nothing changes.
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) not in (
        signal.SIG_IGN,
        signal.SIG_DFL,
    ):
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_ray_workers(
    ray: ModuleType,
    plan: RayPlan,
    commands: Sequence[Sequence[str]],
    *,
    on_poll: Callable[[list[int | None]], None] = lambda codes: None,
    interval: float = 2.0,
    retries: int = TASK_RETRIES,
) -> list[TaskResult]:
    """Run each of ``commands`` (arguments of ``bench``) as a Ray task reserving ``plan``'s GPUs and threads;
    ``on_poll`` with the exit codes (``None`` while running) until all ended.

    Ctrl-C cancels the tasks (their workers record the runs as interrupted) and is re-raised.
    """
    remote = ray.remote(run_worker_task).options(
        num_cpus=plan.threads,
        num_gpus=plan.gpus_per_run,
        max_retries=retries,
        retry_exceptions=[WorkerKilled],
    )
    refs = [remote.remote(tuple(args), str(PACKAGE_ROOT), os.getcwd()) for args in commands]
    results: dict[int, TaskResult] = {}
    try:
        while True:
            for index, ref in enumerate(refs):
                if index not in results and ray.wait([ref], timeout=0)[0]:
                    results[index] = _result(ray, ref)
            on_poll([results[index].code if index in results else None for index in range(len(refs))])
            if len(results) == len(refs):
                return [results[index] for index in range(len(refs))]
            time.sleep(interval)
    except KeyboardInterrupt:
        for index, ref in enumerate(refs):
            if index not in results:
                ray.cancel(ref)
        ray.wait(refs, num_returns=len(refs), timeout=60)
        raise


def _result(ray: ModuleType, ref: Any) -> TaskResult:
    """A finished task's result; a task Ray gave up on (retries spent, node lost) as exit code 1 with the reason."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as error:
        cause = getattr(error, "cause", None)
        reason = str(cause if isinstance(cause, WorkerKilled) else error).strip()
        return TaskResult(1, reason, error=(reason.splitlines() or [type(error).__name__])[0])
