"""``--logger tensorboard|mlflow|wandb|csv``: a run's parameters, curves, test scores and confusion matrix in trackers.

Each run gets one Lightning logger per tracker, named after its run id. They receive the
canonical configuration and the run id as parameters (the Optuna study and trial number as
tags), the training loss and validation metrics of every epoch (step = epoch), the final test
metrics and the confusion matrix as a figure. Loggers are created in the process that records
the run (rank 0); the other ranks of a data-parallel run never log. The tracker packages are
optional extras, imported only when asked for.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
from lightning.pytorch.loggers import Logger

from bench.errors import UsageError

if TYPE_CHECKING:
    from bench.config import RunConfig
    from bench.leaderboard.records import RunMetrics

TRACKERS = ("tensorboard", "mlflow", "wandb", "csv")
PROJECT = "ko-emotion-bench"
_EXTRA = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}


def check_trackers(names: Sequence[str]) -> None:
    """:class:`UsageError` for an unknown tracker or one whose package is not installed."""
    import importlib.util

    for name in names:
        if name not in TRACKERS:
            raise UsageError(f"--logger must be one of {', '.join(TRACKERS)}, got {name!r}")
        package = _EXTRA.get(name)
        if package is not None and importlib.util.find_spec(package) is None:
            raise UsageError(f"--logger {name} needs the {package} package: pip install 'ko-emotion-bench[{package}]'")


def tracker_parameters(config: RunConfig, run_id: str) -> dict[str, Any]:
    """The run id and the configuration that defines the run (its identity), flattened to ``data.source`` style keys."""
    parameters: dict[str, Any] = {"run_id": run_id, "config_hash": config.config_hash()}
    for key, value in config.identity().items():
        if isinstance(value, dict):
            parameters.update({f"{key}.{inner}": _plain(item) for inner, item in value.items()})
        else:
            parameters[key] = _plain(value)
    return parameters


def _plain(value: Any) -> Any:
    """Numbers, strings and booleans as they are; anything else (pairs, lists, None) as JSON text."""
    return value if isinstance(value, (bool, int, float, str)) else json.dumps(value, ensure_ascii=False, default=str)


def tracker_tags(config: RunConfig) -> dict[str, str]:
    """Encoder, head and, for a run of an Optuna study, the study and trial number."""
    tags = {"encoder": config.encoder, "head": config.head}
    if config.study is not None:
        tags["optuna_study"] = config.study
    if config.trial is not None:
        tags["optuna_trial"] = str(config.trial)
    return tags


def create_loggers(config: RunConfig, run_id: str) -> list[Logger]:
    """One logger per ``config.loggers`` entry, with the run's parameters and tags already logged."""
    if not config.loggers:
        return []
    check_trackers(config.loggers)
    directory = Path(config.logger_dir) if config.logger_dir else config.results_path / "trackers"
    tags = tracker_tags(config)
    loggers: list[Logger] = []
    for name in config.loggers:
        if name == "tensorboard":
            from lightning.pytorch.loggers import TensorBoardLogger

            loggers.append(TensorBoardLogger(directory, name="tensorboard", version=run_id, default_hp_metric=False))
        elif name == "csv":
            from lightning.pytorch.loggers import CSVLogger

            loggers.append(CSVLogger(directory, name="csv", version=run_id))
        elif name == "mlflow":
            from lightning.pytorch.loggers import MLFlowLogger

            uri = config.mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI")
            artifacts = None
            if uri is None:  # a local store beside the other trackers' files, artifacts included
                directory.mkdir(parents=True, exist_ok=True)
                uri = f"sqlite:///{(directory / 'mlflow.db').resolve()}"
                artifacts = (directory / "mlflow-artifacts").resolve().as_uri()
            loggers.append(
                MLFlowLogger(
                    experiment_name=PROJECT, run_name=run_id, tracking_uri=uri, tags=tags, artifact_location=artifacts
                )
            )
        elif name == "wandb":
            from lightning.pytorch.loggers import WandbLogger

            directory.mkdir(parents=True, exist_ok=True)
            loggers.append(
                WandbLogger(
                    project=PROJECT,
                    name=run_id,
                    save_dir=str(directory),
                    offline="WANDB_MODE" not in os.environ,
                    tags=[f"{key}:{value}" for key, value in tags.items()],
                    group=config.study,
                )
            )
    parameters = tracker_parameters(config, run_id)
    for logger in loggers:
        logger.log_hyperparams(parameters)
    return loggers


class EpochMetricsToLoggers(L.Callback):
    """After each epoch, the run's history entry (mean training loss, validation loss and scores) to the loggers."""

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        history = getattr(pl_module, "history", None)
        if not trainer.loggers or not history or trainer.global_rank != 0:
            return
        entry = history[-1]
        metrics = {key: value for key, value in entry.items() if key != "epoch"}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=int(entry["epoch"]))


@contextmanager
def tracked_run(config: RunConfig, run_id: str) -> Iterator[list[Logger]]:
    """The run's loggers (:func:`create_loggers`); if the block fails they are closed as failed, interrupted or
    pruned."""
    loggers = create_loggers(config, run_id)
    try:
        yield loggers
    except BaseException as error:
        status = (
            "interrupted"
            if isinstance(error, KeyboardInterrupt)
            else "pruned"
            if type(error).__name__ == "TrialPruned"
            else "failed"
        )
        finish_loggers(loggers, status)
        raise


def log_run_result(loggers: Sequence[Logger], metrics: RunMetrics, epochs: int) -> None:
    """The test scores (step = ``epochs``) and the confusion matrix figure of a finished run; closes the loggers."""
    if not loggers:
        return
    from bench.reporting.figures import PlotStyle, confusion_figure
    from bench.reporting.fonts import find_hangul_font

    scores = {
        "test_macro_f1": metrics.macro_f1,
        "test_accuracy": metrics.accuracy,
        "best_val_macro_f1": metrics.val_macro_f1,
        "best_epoch": float(metrics.best_epoch),
    }
    style = PlotStyle(find_hangul_font())
    figure = confusion_figure(metrics.labels, metrics.confusion, "test confusion matrix", style)
    with tempfile.TemporaryDirectory() as scratch, style.fonts():
        image = Path(scratch) / "confusion_matrix.png"
        figure.savefig(image, dpi=110, bbox_inches="tight")
        for logger in loggers:
            logger.log_metrics(scores, step=epochs)
            _log_figure(logger, figure, image, epochs)
    finish_loggers(loggers, "success")


def _log_figure(logger: Logger, figure: Any, image: Path, step: int) -> None:
    from lightning.pytorch.loggers import CSVLogger, MLFlowLogger, TensorBoardLogger, WandbLogger

    if isinstance(logger, TensorBoardLogger):
        logger.experiment.add_figure("confusion_matrix", figure, global_step=step, close=False)
    elif isinstance(logger, MLFlowLogger):
        logger.experiment.log_artifact(logger.run_id, str(image))
    elif isinstance(logger, WandbLogger):
        import wandb

        logger.experiment.log({"confusion_matrix": wandb.Image(str(image))})
    elif isinstance(logger, CSVLogger):
        Path(logger.log_dir).mkdir(parents=True, exist_ok=True)
        figure.savefig(Path(logger.log_dir) / image.name, dpi=110, bbox_inches="tight")


def finish_loggers(loggers: Sequence[Logger], status: str) -> None:
    """Flush and close every logger (``status``: success, failed or interrupted)."""
    for logger in loggers:
        logger.finalize(status)
        if type(logger).__name__ == "WandbLogger":
            logger.experiment.finish(exit_code=0 if status == "success" else 1)
