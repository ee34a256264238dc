"""Seconds spent in each phase of a run, recorded in the row's timings as ``<phase>_seconds``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class PhaseTimes:
    """Wall-clock seconds per named phase (data load, tokenization, first step, training, test, latency, …).

    A phase measured twice (an out-of-memory retry) adds up.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, phase: str, seconds: float) -> None:
        """Count ``seconds`` towards ``phase``."""
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    @contextmanager
    def measure(self, phase: str) -> Iterator[None]:
        """Count the time spent inside the block towards ``phase``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(phase, time.perf_counter() - started)

    def timings(self) -> dict[str, float]:
        """``{"<phase>_seconds": seconds}`` for the row's timings."""
        return {f"{phase}_seconds": seconds for phase, seconds in self.seconds.items()}
