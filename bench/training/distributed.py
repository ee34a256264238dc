"""One run over several devices (``--devices N``): Lightning DDP with worker processes this package starts.

Lightning's own DDP launcher re-executes the command line once per rank, which
would re-run a whole grid or study in every rank. Here the process that runs the
run is rank 0; it starts ranks 1…N-1 as ``python -m bench.training.ddp_worker``
with the run's config (JSON) and the standard ``MASTER_ADDR``/``MASTER_PORT``/
``WORLD_SIZE``/``LOCAL_RANK`` variables, so Lightning's ``LightningEnvironment``
joins them instead of launching anything. Only rank 0 tests, writes the
leaderboard row and saves artefacts.

Rank 0 joins the process group only once every worker has built its model and
said so (a ``rankN.ready`` file): the rendezvous cannot be interrupted, so a worker
that fails while starting must be noticed before it. A worker that fails writes
its error to a JSON file; rank 0 notices the exit, aborts the process group (so no
rank waits on the dead one) and raises the worker's error in its own process: a
failed row names the rank, and an out-of-memory worker triggers ``--oom-retry``
like an out-of-memory rank 0. (A worker killed in the moment between saying it is
ready and joining leaves rank 0 in the rendezvous until its timeout, Lightning's
default 30 minutes; the run is then recorded as failed the same way.)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

import bench
from bench.config import RunConfig
from bench.training.collectives import abort_process_group, destroy_process_group
from bench.training.errors import EvaluationOutOfMemoryError, NonFiniteLossError

PACKAGE_ROOT = Path(bench.__file__).resolve().parents[1]
WORKER_MODULE = "bench.training.ddp_worker"
_ENV_KEYS = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "NODE_RANK", "LOCAL_RANK")
_GRACE_SECONDS = 10.0


class WorkerFailed(RuntimeError):
    """A rank other than 0 ended with an error."""


@dataclass
class WorkerProcess:
    """A started rank: its process and the file its error lands in."""

    rank: int
    process: subprocess.Popen[bytes]
    error_path: Path
    log_path: Path

    @property
    def ready_path(self) -> Path:
        """Written by the worker once its model is built, just before it joins the process group."""
        return ready_file(self.error_path)


@dataclass
class DistributedLaunch:
    """Ranks 1…N-1 of a run and what the watchdog learned about them."""

    workers: list[WorkerProcess]
    failure: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def watch(self, interval: float = 0.5) -> None:
        """Until stopped: when a worker fails, keep its error and abort the process group."""
        while not self._stop.wait(interval):
            for worker in self.workers:
                code = worker.process.poll()
                if code is not None and code != 0:
                    self.failure = worker_error(worker, code)
                    abort_process_group()
                    return

    def wait_until_ready(self, interval: float = 0.05) -> None:
        """Return once every worker is ready to join; raise a worker's error if one ends first."""
        waiting = list(self.workers)
        while waiting:
            for worker in list(waiting):
                code = worker.process.poll()
                if code is not None:
                    raise worker_error(worker, code)
                if worker.ready_path.exists():
                    waiting.remove(worker)
            time.sleep(interval)

    def raise_failure(self) -> None:
        """Re-raise a worker's failure in rank 0 (after rank 0's own error, which it explains)."""
        if self.failure is None:
            for worker in self.workers:
                code = worker.process.poll()
                if code is None:
                    try:
                        code = worker.process.wait(timeout=_GRACE_SECONDS)
                    except subprocess.TimeoutExpired:
                        continue
                if code != 0:
                    self.failure = worker_error(worker, code)
                    break
        if self.failure is not None:
            raise self.failure


def ready_file(error_path: Path) -> Path:
    """The readiness file of the rank whose error file is ``error_path`` (``rankN.error.json`` → ``rankN.ready``)."""
    return error_path.with_name(error_path.name.replace(".error.json", ".ready"))


def worker_error(worker: WorkerProcess, code: int) -> BaseException:
    """The error a worker recorded, as the exception rank 0 should raise."""
    try:
        recorded = json.loads(worker.error_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        reason = f"signal {-code}" if code < 0 else f"exit code {code}"
        return WorkerFailed(f"rank {worker.rank} ended with {reason} (log: {worker.log_path})")
    message = f"rank {worker.rank}: {recorded['message']}"
    same_kind = {
        "OutOfMemoryError": torch.OutOfMemoryError,
        "EvaluationOutOfMemoryError": EvaluationOutOfMemoryError,
        "NonFiniteLossError": NonFiniteLossError,
    }
    if recorded["type"] in same_kind:
        return same_kind[recorded["type"]](message)
    return WorkerFailed(f"rank {worker.rank}: {recorded['type']}: {recorded['message']}")


def free_port() -> int:
    """A free TCP port on localhost."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def distributed_launch(
    config: RunConfig, run_id: str, *, batch_size: int, accumulation: int, eval_batch_size: int
) -> Iterator[DistributedLaunch]:
    """Start ranks 1…``config.devices``-1 of run ``run_id``; this process is rank 0 inside the block.

    On leaving, workers still alive are stopped, the process group is destroyed and
    the environment restored, so the next run in this process starts clean.
    """
    world = config.devices
    directory = config.results_path / "logs" / "ddp" / run_id
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / "config.json"
    config_path.write_text(config.to_json(), encoding="utf-8")
    shared = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": str(world), "NODE_RANK": "0"}
    saved = {key: os.environ.get(key) for key in _ENV_KEYS}
    python_path = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")]))
    workers: list[WorkerProcess] = []
    for rank in range(1, world):
        error_path, log_path = directory / f"rank{rank}.error.json", directory / f"rank{rank}.log"
        error_path.unlink(missing_ok=True)
        ready_file(error_path).unlink(missing_ok=True)
        command = [
            sys.executable,
            "-m",
            WORKER_MODULE,
            str(config_path),
            str(error_path),
            "--batch-size",
            str(batch_size),
            "--accumulation",
            str(accumulation),
            "--eval-batch-size",
            str(eval_batch_size),
        ]
        env = {**os.environ, **shared, "LOCAL_RANK": str(rank), "PYTHONPATH": python_path}
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        workers.append(WorkerProcess(rank, process, error_path, log_path))
    os.environ.update({**shared, "LOCAL_RANK": "0"})
    launch = DistributedLaunch(workers)
    watchdog = threading.Thread(target=launch.watch, name="ddp-watchdog", daemon=True)
    try:
        launch.wait_until_ready()
        watchdog.start()
        yield launch
    finally:
        launch._stop.set()
        if watchdog.is_alive():
            watchdog.join()
        stop_workers(workers)
        destroy_process_group()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def stop_workers(workers: Sequence[WorkerProcess]) -> None:
    """Give workers a grace period to finish, then SIGTERM, then SIGKILL."""
    deadline = time.monotonic() + _GRACE_SECONDS
    for worker in workers:
        try:
            worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.process.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.process.wait(timeout=_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()
