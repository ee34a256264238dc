"""Which grid point a worker runs next, decided from the trials of the grid's Optuna study.

Every worker of a grid (processes on one or many machines) shares one study. Trial
numbers are handed out atomically by the storage, so they serve as tickets: trial
``n < len(points)`` runs point ``n``. A point that needs another attempt (its worker
died, or it failed before this worker started) gets a trial enqueued with the fixed
parameter ``point``; waiting trials are popped atomically too. Should two trials
ever hold the same point at once (two workers enqueueing it together), the one with
the lower number runs and the other is skipped.

Optuna's ``GridSampler`` is not used because, at the end of a grid, it deliberately
hands points that are still running in another worker to idle workers (so that every
point is evaluated), which would run them twice.

Everything here is a pure function of trial snapshots, so it is tested without a
database or a GPU.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from optuna.trial import FrozenTrial, TrialState

POINT = "point"
SKIPPED = "skipped"
_LIVE = (TrialState.WAITING, TrialState.RUNNING)


@dataclass(frozen=True)
class TrialView:
    """What coordination needs to know about one trial."""

    number: int
    state: TrialState
    point: int | None
    skipped: bool = False

    @property
    def live(self) -> bool:
        """Waiting to be popped or running."""
        return self.state in _LIVE


class Action(Enum):
    """What a worker does next."""

    CLAIM = "claim"
    ENQUEUE = "enqueue"
    STOP = "stop"


@dataclass(frozen=True)
class Step:
    """The next action and, for ``ENQUEUE``, the point to enqueue."""

    action: Action
    point: int | None = None


def point_of(trial: FrozenTrial, n_points: int) -> int | None:
    """The grid point a trial stands for; ``None`` for a surplus trial (a ticket past the last point).

    An enqueued trial carries the point as a fixed parameter; a retry that
    ``RetryHeartbeatStaleTrialCallback`` made of a ticket carries the ticket's number.
    """
    fixed = trial.system_attrs.get("fixed_params") or {}
    if POINT in fixed:
        return int(fixed[POINT])
    retried = trial.system_attrs.get("failed_trial")
    number = trial.number if retried is None else int(retried)
    return number if 0 <= number < n_points else None


def view(trial: FrozenTrial, n_points: int) -> TrialView:
    """A :class:`TrialView` of ``trial``."""
    skipped = trial.state == TrialState.PRUNED and SKIPPED in trial.user_attrs
    return TrialView(trial.number, trial.state, point_of(trial, n_points), skipped)


def views(trials: Iterable[FrozenTrial], n_points: int) -> list[TrialView]:
    """:func:`view` of every trial."""
    return [view(trial, n_points) for trial in trials]


def holder_of(number: int, point: int, trials: Sequence[TrialView]) -> int | None:
    """The number of a lower-numbered live trial holding ``point``, if any (then trial ``number`` must not run it)."""
    holders = [t.number for t in trials if t.point == point and t.number < number and t.live and not t.skipped]
    return min(holders) if holders else None


def next_step(
    trials: Sequence[TrialView], n_points: int, finished: Collection[int], settled_at_start: Collection[int]
) -> Step:
    """What a worker does next.

    ``finished`` are the points with a finished leaderboard row; ``settled_at_start``
    the numbers of the trials that had already ended when this worker started.
    Points that ended (failed, interrupted) before this worker started are retried;
    points that failed while it ran are left for the next run.
    """
    if any(t.state == TrialState.WAITING for t in trials) or len(trials) < n_points:
        return Step(Action.CLAIM)
    for point in range(n_points):
        if point in finished:
            continue
        own = [t for t in trials if t.point == point and not t.skipped]
        if any(t.live for t in own) or any(t.number not in settled_at_start for t in own):
            continue
        return Step(Action.ENQUEUE, point)
    return Step(Action.STOP)


def running_elsewhere(trials: Sequence[TrialView], finished: Collection[int]) -> set[int]:
    """Points other workers are running (or have waiting) that are not finished yet."""
    return {t.point for t in trials if t.live and t.point is not None and t.point not in finished}
