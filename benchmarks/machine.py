"""The machine a benchmark runs on: CPU, cores, torch, GPU, load, and how busy other processes kept it."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

DISTURBED_CORES = 0.2  # other processes' average CPU use (cores) above which a part's figures are flagged


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (else what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def available_cores() -> int:
    """CPU cores this process may run on (its affinity)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def gpu_names() -> list[str]:
    """Names of the visible CUDA devices (none without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]


def load_text() -> str:
    """The 1/5/15-minute load averages."""
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


@dataclass(frozen=True)
class Machine:
    """What the report says about the machine."""

    cpu: str
    cores: int
    machine_cores: int
    torch: str
    torch_threads: int
    gpus: tuple[str, ...]
    python: str

    @property
    def gpu(self) -> str:
        """The GPUs in words (``none`` without)."""
        if not self.gpus:
            return "none"
        return f"{len(self.gpus)} × {self.gpus[0]}" if len(self.gpus) > 1 else self.gpus[0]

    def describe(self) -> str:
        """One line for the report."""
        return (
            f"{self.cpu}, {self.cores} cores available to the process (of {self.machine_cores}), "
            f"{self.torch_threads} torch threads; GPU: {self.gpu}; torch {self.torch}, Python {self.python}"
        )


def probe() -> Machine:
    """The machine this process runs on."""
    import torch

    return Machine(
        cpu=cpu_model(),
        cores=available_cores(),
        machine_cores=os.cpu_count() or 1,
        torch=torch.__version__,
        torch_threads=torch.get_num_threads(),
        gpus=tuple(gpu_names()),
        python=platform.python_version(),
    )


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds the whole machine was busy (hypervisor steal included), this process's and its
    children's CPU seconds, and the wall time."""

    machine_busy: float
    own: float
    wall: float


def cpu_sample() -> CpuSample | None:
    """A :class:`CpuSample` from /proc/stat (``None`` where there is none)."""
    try:
        ticks = [int(value) for value in Path("/proc/stat").read_text(encoding="utf-8").split("\n")[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = ticks[3] + ticks[4]  # idle + iowait
    times = os.times()
    own = times.user + times.system + times.children_user + times.children_system
    return CpuSample((sum(ticks) - idle) / os.sysconf("SC_CLK_TCK"), own, time.monotonic())


def other_cores(before: CpuSample | None, after: CpuSample | None) -> float | None:
    """Average number of cores other processes (and the hypervisor) kept busy between two samples."""
    if before is None or after is None or after.wall <= before.wall:
        return None
    others = (after.machine_busy - before.machine_busy) - (after.own - before.own)
    return max(0.0, others / (after.wall - before.wall))


@dataclass(frozen=True)
class Contention:
    """The load while one part ran: load averages at its start and end, other processes' busy cores."""

    load_before: str
    load_after: str
    other_cores: float | None

    @property
    def disturbed(self) -> bool:
        """Other processes kept more than :data:`DISTURBED_CORES` cores busy."""
        return self.other_cores is not None and self.other_cores > DISTURBED_CORES

    def describe(self) -> str:
        """One phrase for the report."""
        cores = "?" if self.other_cores is None else f"{self.other_cores:.2f}"
        verdict = " — **disturbed: rerun on a quiet machine**" if self.disturbed else ""
        return f"load {self.load_before} → {self.load_after}; other processes kept {cores} cores busy{verdict}"


class ContentionMeter:
    """Measures :class:`Contention` from its creation to :meth:`stop`."""

    def __init__(self) -> None:
        self._load = load_text()
        self._sample = cpu_sample()

    def stop(self) -> Contention:
        """The contention since this meter was made."""
        return Contention(self._load, load_text(), other_cores(self._sample, cpu_sample()))
