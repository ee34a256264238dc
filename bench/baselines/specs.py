"""Names and configs of the reference rows; no scikit-learn or training imports (the report uses these)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.config import RunConfig, sort_params
from bench.data.types import DataOptions
from bench.errors import UsageError
from bench.leaderboard.records import RunMetrics
from encoders.registry import REFERENCE_ROWS, is_reference

# Each baseline kind is a reference row of the encoder registry (encoders.registry.REFERENCE_ROWS) and its head.
_HEADS = {"tfidf": "logreg", "majority": "constant"}
BASELINES: dict[str, tuple[str, str]] = {kind: (kind, _HEADS[kind]) for kind in REFERENCE_ROWS}
BASELINE_ENCODERS = frozenset(REFERENCE_ROWS)
DEFAULT_C_GRID = (0.3, 1.0, 3.0, 10.0)
TFIDF_SETTINGS: dict[str, Any] = {
    "analyzer": "char_wb",
    "ngram_min": 1,
    "ngram_max": 4,
    "sublinear_tf": True,
    "min_df": 2,
    "max_iter": 2000,
}
# Config fields that mean something for a baseline; the rest of RunConfig keeps its defaults.
_APPLICABLE = frozenset({"train_limit"})


def is_baseline(encoder: str) -> bool:
    """Whether ``encoder`` names a reference row rather than a trainable encoder (the registry decides, so a
    plugin can never make or take a baseline's name)."""
    return is_reference(encoder)


def baseline_config(
    kind: str,
    data: DataOptions,
    *,
    train_limit: int | None = None,
    results_dir: str = "results",
    c_grid: Sequence[float] = DEFAULT_C_GRID,
    per_label_threshold: bool = False,
) -> RunConfig:
    """The leaderboard config of baseline ``kind`` (``tfidf`` or ``majority``) on ``data``.

    The TF-IDF settings and the ``C`` grid are its head parameters, so they are part
    of the config hash; ``per_label_threshold`` applies to multi-label data; the other
    training fields keep their defaults and mean nothing here.
    """
    if kind not in BASELINES:
        raise UsageError(f"unknown baseline {kind!r}; choose from {', '.join(BASELINES)}")
    encoder, head = BASELINES[kind]
    params: dict[str, Any] = {}
    if kind == "tfidf":
        params = {**TFIDF_SETTINGS, "c_grid": format_c_grid(c_grid)}
    return RunConfig(
        encoder=encoder,
        head=head,
        head_params=sort_params(params),
        data=data,
        train_limit=train_limit,
        per_label_threshold=per_label_threshold,
        results_dir=results_dir,
        device="cpu",
    )


def format_c_grid(values: Sequence[float]) -> str:
    """A ``C`` grid as text (``"0.3,1,3"``), checked to be positive and non-empty."""
    if not values or any(not np.isfinite(value) or value <= 0 for value in values):
        raise UsageError(f"--c-grid needs positive numbers, got {', '.join(map(str, values)) or 'nothing'}")
    return ",".join(f"{value:g}" for value in sorted(set(values)))


def applicable_params(encoder: str, params: dict[str, Any]) -> dict[str, Any]:
    """For a baseline, only the hyperparameters it uses (head parameters, a set ``train_limit``); others as given."""
    if not is_baseline(encoder):
        return params
    return {
        name: value
        for name, value in params.items()
        if name.startswith("head.") or (name in _APPLICABLE and value is not None)
    }


def chosen_c(metrics: RunMetrics) -> float | None:
    """The ``C`` a TF-IDF baseline kept (best validation macro-F1 of its sweep), ``None`` for other runs."""
    sweep = [entry for entry in metrics.history if "C" in entry]
    if not sweep:
        return None
    return float(max(sweep, key=lambda entry: entry["val_macro_f1"])["C"])
