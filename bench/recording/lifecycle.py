"""One lifecycle for every leaderboard row: start it, run, then finish, fail, interrupt or prune it.

Training runs (:mod:`bench.training.runner`) and baselines (:mod:`bench.baselines.fitting`)
both go through :func:`record_run`, so a row ends the same way whatever made it:
an error becomes a ``failed`` row, Ctrl-C an ``interrupted`` row that says SIGINT,
SIGTERM an ``interrupted`` row that says SIGTERM, and an Optuna prune a ``pruned`` row.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.config import RunConfig
from bench.data.types import SplitDataset
from bench.errors import Terminated
from bench.leaderboard.records import RunMetrics, RunRecord
from bench.leaderboard.store import Leaderboard
from bench.recording.phases import PhaseTimes

SIGINT_REASON = "interrupted by the user (SIGINT)"
SIGTERM_REASON = "terminated (SIGTERM)"
PRUNED_REASON = "pruned by the Optuna study"


class RunFailure(RuntimeError):
    """A failure whose message explains itself: the failed row shows it without the exception's type."""


@dataclass
class ActiveRun:
    """A started row: its id and what the run may add to it while it runs."""

    leaderboard: Leaderboard
    run_id: str
    phases: PhaseTimes = field(default_factory=PhaseTimes)

    def update_environment(self, values: dict[str, Any]) -> None:
        """Record what the run learned about how it runs (batch sizes after a retry, the precision used)."""
        self.leaderboard.update_environment(self.run_id, {name: str(value) for name, value in values.items()})


def finished_run(
    leaderboard: Leaderboard, config: RunConfig, dataset: SplitDataset, *, rerun: bool
) -> RunRecord | None:
    """The finished row of ``config`` on ``dataset``, unless ``rerun`` asks to run it again."""
    if rerun:
        return None
    existing = leaderboard.find(config.config_hash(), dataset.fingerprint)
    return existing if existing is not None and existing.status == "finished" else None


def record_run(
    leaderboard: Leaderboard,
    config: RunConfig,
    dataset: SplitDataset,
    environment: dict[str, str],
    execute: Callable[[ActiveRun], RunMetrics],
    *,
    phases: PhaseTimes | None = None,
) -> RunRecord:
    """Start the row of ``config`` on ``dataset``, call ``execute`` and end the row by its outcome.

    Errors are recorded as a ``failed`` row and the row is returned; interrupts
    (Ctrl-C, SIGTERM) and Optuna prunes are recorded and re-raised. SIGTERM, when
    nothing else handles it, raises :class:`~bench.errors.Terminated` while the run
    runs. ``phases`` (times measured before the row existed, e.g. loading the data)
    go into the row's timings with the phases ``execute`` records. The row's environment
    records the size of each split (``train_examples``, …; the corrected t-test of
    ``bench compare`` over folds reads them).
    """
    started = time.perf_counter()
    sizes = {f"{split}_examples": str(len(getattr(dataset, split))) for split in ("train", "validation", "test")}
    run_id = leaderboard.start_run(config, dataset.fingerprint, dataset.name, {**environment, **sizes})
    active = ActiveRun(leaderboard, run_id, phases or PhaseTimes())
    active.phases.add("leaderboard_start", time.perf_counter() - started)
    try:
        with sigterm_as_interrupt():
            metrics = execute(active)
    except KeyboardInterrupt as interrupt:
        leaderboard.fail_run(run_id, interrupt_reason(interrupt), status="interrupted")
        raise
    except Exception as error:  # noqa: BLE001 - any failure becomes a failed row (a prune re-raises)
        if is_pruned(error):
            leaderboard.fail_run(run_id, PRUNED_REASON, status="pruned")
            raise
        leaderboard.fail_run(run_id, failure_message(error))
    else:
        metrics.timings.update(active.phases.timings())
        leaderboard.finish_run(run_id, metrics)
    return leaderboard.get_run(run_id)


def interrupt_reason(interrupt: KeyboardInterrupt) -> str:
    """What stopped the run, by signal."""
    return SIGTERM_REASON if isinstance(interrupt, Terminated) else SIGINT_REASON


def failure_message(error: Exception) -> str:
    """The error of a failed row: a :class:`RunFailure`'s own message, else ``Type: message``."""
    return str(error) if isinstance(error, RunFailure) else f"{type(error).__name__}: {error}"


def is_pruned(error: BaseException) -> bool:
    """Whether ``error`` is Optuna's prune signal (only possible once this process has imported Optuna)."""
    optuna = sys.modules.get("optuna")
    return optuna is not None and isinstance(error, optuna.TrialPruned)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM raises :class:`Terminated` unless the process already handles it.

    Only in the main thread, and only where SIGTERM has its default action (which
    would end the process and leave the row marked running). Lightning installs its
    own handler while it trains; the runner turns that into :class:`Terminated` too.
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise Terminated

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
