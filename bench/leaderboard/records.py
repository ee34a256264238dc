"""What a run records: metrics, per-class scores, predictions, timings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RUN_STATUSES = ("running", "finished", "failed", "interrupted", "pruned")


@dataclass
class ClassScores:
    """Precision, recall, F1 and support of one class on the test split."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class Predictions:
    """Test predictions of one run, aligned by position: class ids, or 0/1 rows for multi-label runs.

    ``texts`` holds the test sentences (``None`` for runs recorded before they were stored).
    """

    example_ids: list[str]
    gold: list[int] | list[list[int]]
    predicted: list[int] | list[list[int]]
    probabilities: list[list[float]]
    texts: list[str] | None = None


@dataclass
class RunMetrics:
    """Everything a finished run stores besides its config.

    ``history`` holds one dict per epoch (``epoch``, ``train_loss``,
    ``val_macro_f1``, ``val_accuracy``, ``val_loss``); ``timings`` holds seconds and
    rates (``train_seconds``, ``train_samples_per_second``, ``eval_seconds``,
    ``latency_ms_batch1``, ``latency_ms_batch64``, ``peak_memory_mb``); ``truncated``
    counts, per split, the texts longer than ``max_len`` tokens that were cut to it.

    Multi-label runs (``task == "multilabel"``) score ``macro_f1`` over labels and
    store exact match as ``accuracy``; ``scores`` adds ``micro_f1``,
    ``samples_f1`` and ``exact_match``, ``thresholds`` the decision threshold
    of each label (tuned on validation), ``per_class`` the per-label scores and
    ``confusion`` is empty. Their predictions hold 0/1 rows, one per label.
    """

    macro_f1: float
    accuracy: float
    val_macro_f1: float
    labels: list[str]
    per_class: dict[str, ClassScores]
    confusion: list[list[int]]
    history: list[dict[str, float]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    total_params: int = 0
    trainable_params: int = 0
    best_epoch: int | None = None
    predictions: Predictions | None = None
    checkpoint: str | None = None
    truncated: dict[str, int] = field(default_factory=dict)
    task: str = "single"
    thresholds: list[float] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class RunRecord:
    """One leaderboard row as read back."""

    run_id: str
    config_hash: str
    fingerprint: str
    dataset: str
    encoder: str
    head: str
    seed: int
    status: str
    config: dict[str, Any]
    created_at: str
    updated_at: str
    error: str | None = None
    macro_f1: float | None = None
    accuracy: float | None = None
    val_macro_f1: float | None = None
    metrics: RunMetrics | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    study: str | None = None
    trial: int | None = None
    pid: int | None = None
    host: str | None = None
    attempts: int = 1
    predicted_classes: int | None = None
    flags: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        """Whether the run carries a flag (collapsed, below the majority row, …)."""
        return bool(self.flags)
