"""Macro-F1 versus latency: which finished runs are Pareto-optimal (no run is both faster and better)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from bench.leaderboard.records import RunRecord
from bench.leaderboard.stats import efficiency

LATENCY_FIELDS = ("latency_ms_batch1", "latency_ms_batch64")


@dataclass
class ParetoPoint:
    """One finished run placed by test macro-F1 (higher is better) and latency (lower is better).

    ``dominated_by`` names a run on the same fingerprint that is at least as fast and
    at least as good, and strictly better in one of the two; ``None`` on the front.
    """

    run_id: str
    fingerprint: str
    dataset: str
    encoder: str
    head: str
    seed: int
    macro_f1: float
    latency_ms: float
    dominated_by: str | None = None

    @property
    def optimal(self) -> bool:
        """Whether no other run dominates this one."""
        return self.dominated_by is None


def pareto_points(records: Iterable[RunRecord], latency: str = "latency_ms_batch1") -> list[ParetoPoint]:
    """Finished runs with a macro-F1 and a recorded ``latency``, each marked optimal or dominated.

    Dominance is decided within a dataset fingerprint only. Points come back ordered
    by fingerprint, then latency, then macro-F1 (best first).
    """
    if latency not in LATENCY_FIELDS:
        raise ValueError(f"latency must be one of {', '.join(LATENCY_FIELDS)}, got {latency!r}")
    by_fingerprint: dict[str, list[ParetoPoint]] = {}
    for record in records:
        speed = efficiency(record).get(latency)
        if record.status != "finished" or record.macro_f1 is None or speed is None:
            continue
        point = ParetoPoint(
            record.run_id,
            record.fingerprint,
            record.dataset,
            record.encoder,
            record.head,
            record.seed,
            float(record.macro_f1),
            float(speed),
        )
        by_fingerprint.setdefault(record.fingerprint, []).append(point)
    ordered: list[ParetoPoint] = []
    for fingerprint in sorted(by_fingerprint):
        points = sorted(by_fingerprint[fingerprint], key=lambda item: (item.latency_ms, -item.macro_f1, item.run_id))
        _mark_dominated(points)
        ordered.extend(points)
    return ordered


def _mark_dominated(points: list[ParetoPoint]) -> None:
    """Set ``dominated_by`` on every point some other point dominates (the fastest such point)."""
    latency = np.array([point.latency_ms for point in points])
    score = np.array([point.macro_f1 for point in points])
    at_least = (latency[:, None] <= latency[None, :]) & (score[:, None] >= score[None, :])
    strictly = (latency[:, None] < latency[None, :]) | (score[:, None] > score[None, :])
    dominates = at_least & strictly  # dominates[i, j]: point i dominates point j
    for column, point in enumerate(points):
        rows = np.nonzero(dominates[:, column])[0]
        point.dominated_by = points[int(rows[0])].run_id if rows.size else None
