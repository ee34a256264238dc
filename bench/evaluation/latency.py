"""Prediction latency of a run's model: one timing loop for trained models and baselines, measured once per shape.

Latency depends on the model's shape (architecture, head, sequence length), the test
texts and the machine, not on the learned weights or the training settings. A grid
over seeds and learning rates would otherwise time the same forward pass once per
point; :class:`LatencyCache` keeps the figures of the first run of each shape in the
results folder and later runs of that shape reuse them (``always`` measures anyway).
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

Batch = TypeVar("Batch")
LatencyPolicy = Literal["once", "always"]
LATENCY_BATCHES = {"latency_ms_batch1": 1, "latency_ms_batch64": 64}
LATENCY_REPEATS = 16
CACHE_FILE = "latency.json"


def median_latency_ms(
    predict: Callable[[Batch], object],
    batches: Mapping[str, Iterable[Batch]],
    size_of: Callable[[Batch], int],
    *,
    repeats: int = LATENCY_REPEATS,
    synchronize: Callable[[], None] = lambda: None,
) -> dict[str, float]:
    """Median milliseconds per example of ``predict`` over the first ``repeats`` batches of each entry of ``batches``.

    The first batch of each is predicted once untimed (warm-up); ``synchronize``
    waits for queued GPU work before and after each timed call.
    """
    results: dict[str, float] = {}
    for key, sequence in batches.items():
        timings: list[float] = []
        for count, batch in enumerate(itertools.islice(sequence, repeats)):
            if count == 0:
                predict(batch)
            synchronize()
            started = time.perf_counter()
            predict(batch)
            synchronize()
            timings.append((time.perf_counter() - started) * 1000 / size_of(batch))
        results[key] = float(np.median(timings)) if timings else float("nan")
    return results


def shape_key(shape: Mapping[str, Any]) -> str:
    """A stable text key for a model shape (a JSON object of the things latency depends on)."""
    return json.dumps(shape, sort_keys=True, ensure_ascii=False, default=str)


class LatencyCache:
    """Latency figures by model shape, in ``<cache_dir>/latency.json`` (written atomically)."""

    def __init__(self, cache_dir: Path) -> None:
        self.path = cache_dir / CACHE_FILE

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> dict[str, Any] | None:
        """The entry of ``key`` (``figures`` and the ``run_id`` that measured them), if any."""
        entry = self._read().get(key)
        return entry if isinstance(entry, dict) and isinstance(entry.get("figures"), dict) else None

    def put(self, key: str, figures: dict[str, float], run_id: str) -> None:
        """Remember ``figures`` for ``key`` (measured by ``run_id``)."""
        data = self._read()
        data[key] = {"figures": figures, "run_id": run_id}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        os.replace(temporary, self.path)


def cached_latency(
    cache: LatencyCache,
    shape: Mapping[str, Any],
    measure: Callable[[], dict[str, float]],
    *,
    run_id: str,
    policy: LatencyPolicy = "once",
) -> tuple[dict[str, float], str]:
    """Latency figures of ``shape`` and where they come from (``measured`` or ``measured by run <id>``).

    ``once`` measures only the first run of a shape; ``always`` measures every run.
    """
    key = shape_key(shape)
    entry = cache.get(key) if policy == "once" else None
    if entry is not None and all(name in entry["figures"] for name in LATENCY_BATCHES):
        figures = {name: float(entry["figures"][name]) for name in LATENCY_BATCHES}
        return figures, f"measured by run {entry['run_id']}"
    figures = measure()
    if all(np.isfinite(value) for value in figures.values()):
        cache.put(key, figures, run_id)
    return figures, "measured"
