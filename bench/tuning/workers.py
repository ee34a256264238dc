"""Local worker processes: one per GPU (``--gpus 0,1``, each re-runs the same command with ``CUDA_VISIBLE_DEVICES``
set) or ``--workers N`` sharing this machine's devices.

The workers coordinate through the Optuna storage, exactly like workers on
separate machines. Launching is injectable so the scheduling is tested on CPU.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import bench
from bench.errors import UsageError

# The command a worker runs: the ``bench`` entry point of this interpreter, importable from this checkout.
ENTRY = ("-c", "from bench.cli import main; main()")
PACKAGE_ROOT = Path(bench.__file__).resolve().parents[1]


def log_directory(results: Path, study_name: str) -> Path:
    """``<results>/logs/<study>``, the study name made one safe folder name (``--study ../x`` stays inside)."""
    folder = re.sub(r"[^\w.-]", "_", study_name).lstrip(".") or "study"
    return results / "logs" / folder


def parse_gpus(text: str | None) -> list[str]:
    """``"0,1,3"`` → ``["0", "1", "3"]``; each a GPU index, no repeats."""
    if not text:
        return []
    gpus = [part.strip() for part in text.split(",")]
    if not all(gpu.isdigit() for gpu in gpus):
        raise UsageError(f"--gpus expects comma-separated GPU indices like 0,1, got {text!r}")
    if len(set(gpus)) != len(gpus):
        raise UsageError(f"--gpus lists a GPU twice: {text!r}")
    return gpus


def gpu_groups(gpus: Sequence[str], devices: int) -> list[str]:
    """``--gpus`` cut into one group per worker of ``devices`` GPUs each (``--devices``), e.g. ``["0,1", "2,3"]``."""
    if len(gpus) % devices:
        raise UsageError(f"--gpus lists {len(gpus)} GPUs, not a multiple of --devices {devices}")
    return [",".join(gpus[start : start + devices]) for start in range(0, len(gpus), devices)]


def worker_slots(gpus: str | None, workers: int | None, devices: int) -> list[str | None]:
    """The local workers of ``--gpus``/``--workers``: each one's GPU group, or ``None`` (this machine's devices as
    they are). One slot means no worker process: the command runs the work itself."""
    groups = gpu_groups(parse_gpus(gpus), devices)
    if not groups:
        return [None] * (workers or 1)
    if workers is not None and workers != len(groups):
        raise UsageError(
            f"--workers {workers} with --gpus {gpus}: --gpus starts one worker per GPU group ({len(groups)})"
        )
    return list(groups)


@dataclass(frozen=True)
class WorkerSpec:
    """One worker process: its GPU(s) (``None``: all visible ones), its command line (arguments of ``bench``), its
    environment and log file."""

    index: int
    gpu: str | None
    args: tuple[str, ...]
    env: Mapping[str, str]
    log_path: Path

    @property
    def command(self) -> list[str]:
        """The full command line."""
        return worker_command(self.args)


def worker_command(args: Sequence[str], entry: Sequence[str] = ENTRY) -> list[str]:
    """``bench ARGS`` as a command line of this interpreter (``entry``: how it starts ``bench``)."""
    return [sys.executable, *entry, *args]


def python_path(package_root: str | Path, environ: Mapping[str, str]) -> str:
    """``PYTHONPATH`` for a worker: ``package_root`` first (the checkout the driver imports), then ``environ``'s."""
    return os.pathsep.join(filter(None, [str(package_root), environ.get("PYTHONPATH", "")]))


def worker_specs(
    slots: Sequence[str | None], args: Sequence[str], log_dir: Path, environ: Mapping[str, str], *, pass_index: bool
) -> list[WorkerSpec]:
    """A worker per slot (:func:`worker_slots`) running ``bench <args>`` (plus ``--worker-index I`` if
    ``pass_index``), with only its GPUs visible when the slot names some."""
    specs = []
    for index, gpu in enumerate(slots):
        env = {**environ, "PYTHONPATH": python_path(PACKAGE_ROOT, environ)}
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        suffix = "" if gpu is None else f"-gpu{gpu.replace(',', '-')}"
        specs.append(
            WorkerSpec(
                index=index,
                gpu=gpu,
                args=(*args, "--worker-index", str(index)) if pass_index else tuple(args),
                env=env,
                log_path=log_dir / f"worker-{index}{suffix}.log",
            )
        )
    return specs


def describe_worker(spec: WorkerSpec) -> str:
    """``worker 1 (GPU 2,3)`` or ``worker 1``."""
    return f"worker {spec.index}" + ("" if spec.gpu is None else f" (GPU {spec.gpu})")


class Process(Protocol):
    """What the scheduler needs from a started worker (a ``subprocess.Popen``)."""

    def poll(self) -> int | None: ...

    def send_signal(self, sig: int) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...


Launcher = Callable[[WorkerSpec], Process]


def popen_launcher(spec: WorkerSpec) -> Process:
    """Start ``spec`` as a subprocess writing stdout and stderr to its log file."""
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    log: IO[bytes] = open(spec.log_path, "wb")  # noqa: SIM115 - the child owns it; closed in this process below
    try:
        return subprocess.Popen(
            spec.command, env=dict(spec.env), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    finally:
        log.close()


def run_workers(
    specs: Sequence[WorkerSpec],
    launcher: Launcher = popen_launcher,
    *,
    on_poll: Callable[[list[int | None]], None] = lambda codes: None,
    interval: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[int]:
    """Start every worker, call ``on_poll`` with their exit codes (``None`` while running) until all ended.

    Ctrl-C is passed on to the workers (each records its run as interrupted) and
    re-raised once they have exited. Returns the exit codes.
    """
    processes = [launcher(spec) for spec in specs]
    try:
        while True:
            codes = [process.poll() for process in processes]
            on_poll(codes)
            if all(code is not None for code in codes):
                return [int(code) for code in codes if code is not None]
            sleep(interval)
    except KeyboardInterrupt:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes:
            process.wait()
        raise
