"""Experiment trackers (TensorBoard, MLflow, Weights & Biases, CSV) through Lightning's loggers."""

from bench.tracking.loggers import (
    TRACKERS,
    EpochMetricsToLoggers,
    check_trackers,
    create_loggers,
    finish_loggers,
    log_run_result,
    tracked_run,
)

__all__ = [
    "TRACKERS",
    "EpochMetricsToLoggers",
    "check_trackers",
    "create_loggers",
    "finish_loggers",
    "log_run_result",
    "tracked_run",
]
