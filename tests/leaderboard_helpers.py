"""Hand-built runs for the leaderboard tests: configs, metrics with predictions, records."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from bench.config import RunConfig
from bench.leaderboard.records import ClassScores, Predictions, RunMetrics, RunRecord
from bench.leaderboard.store import Leaderboard, run_key

LABELS = ("anger", "joy", "sadness")


def make_config(**changes: Any) -> RunConfig:
    """A small RunConfig (scratch encoder, linear head) with ``changes`` applied."""
    return RunConfig(**{"encoder": "scratch", "head": "linear", "epochs": 1, "lr": 3e-5, **changes})


def noisy_predictions(gold: np.ndarray, accuracy: float, rng: np.random.Generator, num_classes: int) -> np.ndarray:
    """Predictions equal to ``gold`` except for a random ``1 - accuracy`` share, replaced by a wrong class."""
    predicted = gold.copy()
    wrong = rng.random(gold.size) >= accuracy
    predicted[wrong] = (gold[wrong] + rng.integers(1, num_classes, wrong.sum())) % num_classes
    return predicted


def make_metrics(
    gold: Sequence[int],
    predicted: Sequence[int],
    labels: Sequence[str] = LABELS,
    *,
    example_ids: Sequence[str] | None = None,
    timings: dict[str, float] | None = None,
    total_params: int = 0,
    trainable_params: int = 0,
    val_macro_f1: float = 0.5,
) -> RunMetrics:
    """RunMetrics computed from gold/predicted labels with scikit-learn, predictions included."""
    gold_array, predicted_array = np.asarray(gold), np.asarray(predicted)
    classes = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        gold_array, predicted_array, labels=classes, zero_division=0
    )
    probabilities = np.full((gold_array.size, len(labels)), 0.1 / max(len(labels) - 1, 1))
    probabilities[np.arange(gold_array.size), predicted_array] = 0.9
    return RunMetrics(
        macro_f1=float(f1_score(gold_array, predicted_array, labels=classes, average="macro", zero_division=0)),
        accuracy=float(accuracy_score(gold_array, predicted_array)),
        val_macro_f1=val_macro_f1,
        labels=list(labels),
        per_class={
            label: ClassScores(float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]))
            for i, label in enumerate(labels)
        },
        confusion=confusion_matrix(gold_array, predicted_array, labels=classes).tolist(),
        history=[
            {"epoch": 0, "train_loss": 1.25, "val_macro_f1": 0.4, "val_accuracy": 0.5, "val_loss": 1.1},
            {"epoch": 1, "train_loss": 0.75, "val_macro_f1": val_macro_f1, "val_accuracy": 0.6, "val_loss": 0.9},
        ],
        timings=dict(timings or {}),
        total_params=total_params,
        trainable_params=trainable_params,
        best_epoch=1,
        predictions=Predictions(
            example_ids=list(example_ids) if example_ids is not None else [f"ex-{i}" for i in range(gold_array.size)],
            gold=gold_array.tolist(),
            predicted=predicted_array.tolist(),
            probabilities=probabilities.round(6).tolist(),
        ),
    )


def record_run(
    board: Leaderboard, config: RunConfig, metrics: RunMetrics, fingerprint: str = "fp-a", dataset: str = "sample"
) -> str:
    """Start and finish one run in ``board``; returns its id."""
    run_id = board.start_run(config, fingerprint, dataset, {"python": "3.11"})
    board.finish_run(run_id, metrics)
    return run_id


def make_record(
    config: RunConfig,
    macro_f1: float,
    accuracy: float,
    fingerprint: str = "fp-a",
    dataset: str = "sample",
    metrics: RunMetrics | None = None,
) -> RunRecord:
    """A finished RunRecord built in memory (no database)."""
    now = datetime.now(timezone.utc).isoformat()
    return RunRecord(
        run_id=run_key(config.config_hash(), fingerprint),
        config_hash=config.config_hash(),
        fingerprint=fingerprint,
        dataset=dataset,
        encoder=config.encoder,
        head=config.head,
        seed=config.seed,
        status="finished",
        config=json.loads(config.to_json()),
        created_at=now,
        updated_at=now,
        macro_f1=macro_f1,
        accuracy=accuracy,
        val_macro_f1=0.5,
        metrics=metrics,
    )
