"""Building a run's model and data, and fitting it with Lightning: the part every rank of a run executes."""

from __future__ import annotations

import logging
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.plugins.environments import LightningEnvironment
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from bench.config import RunConfig
from bench.data.types import SplitDataset
from bench.errors import Terminated
from bench.evaluation.scores import label_targets
from bench.machine.devices import lightning_devices, resolve_precision, torch_device
from bench.machine.threads import set_threads
from bench.recording.phases import PhaseTimes
from bench.tasks import task_named
from bench.training.callbacks import BestWeights, FailureStage, TrainingTimer
from bench.training.datamodule import EmotionDataModule
from bench.training.errors import EvaluationOutOfMemoryError
from bench.training.finetuning import prepare_encoder
from bench.training.module import EmotionClassifier
from encoders import EncoderRequest, create_encoder
from encoders.base import BuiltEncoder
from heads import create_head, resolve_head_params

_QUIET_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning")
_QUIET_WARNINGS = (
    ".*does not have many workers.*",
    ".*number of training batches.*",
    ".*LeafSpec.*is deprecated.*",
    ".*sync_dist=True.*",
)


@dataclass
class PreparedRun:
    """Data, model and identity of a run, built before any training."""

    config: RunConfig
    dataset: SplitDataset
    built: BuiltEncoder
    module: EmotionClassifier
    datamodule: EmotionDataModule


def prepare_run(
    config: RunConfig, dataset: SplitDataset, *, batch_size: int | None = None, eval_batch_size: int | None = None
) -> PreparedRun:
    """Build encoder, head, LightningModule and LightningDataModule for ``config``.

    ``batch_size`` overrides ``config.batch_size`` and ``eval_batch_size`` the
    evaluation batch (an out-of-memory retry's smaller batches).
    """
    resolve_head_params(config.head, config.head_kwargs)
    set_threads(config.threads)
    L.seed_everything(config.seed, workers=True, verbose=False)
    built = create_encoder(
        EncoderRequest(
            name=config.encoder,
            path=Path(config.encoder_path) if config.encoder_path else None,
            random_init=config.random_init,
            trust_remote_code=config.trust_remote_code,
            train_texts=[example.text for example in dataset.train],
            cache_dir=config.results_path / "cache",
            config_overrides=config.encoder_config,
        )
    )
    prepare_encoder(built.encoder, config)
    head = create_head(config.head, built.encoder.hidden_size, len(dataset.labels), config.head_kwargs)
    module = EmotionClassifier(
        built.encoder,
        head,
        num_labels=len(dataset.labels),
        lr=config.lr,
        head_lr=config.head_lr,
        weight_decay=config.weight_decay,
        warmup_ratio=config.warmup_ratio,
        layer_lr_decay=config.layer_lr_decay,
        class_weights=class_weights(dataset) if config.class_weighted else None,
        freeze_encoder=config.freeze_encoder,
        compile_encoder=config.compile,
        task=task_named(dataset.task),
        per_label_threshold=config.per_label_threshold,
    )
    datamodule = EmotionDataModule(
        dataset,
        built.tokenizer,
        max_len=config.max_len,
        batch_size=batch_size or config.batch_size,
        eval_batch_size=eval_batch_size,
        seed=config.seed,
        num_workers=config.num_workers,
        bucketing=config.bucketing,
        cache_dir=config.results_path / "cache",
        token_cache=config.token_cache,
        feature_encoder=built.encoder if config.freeze_encoder and config.feature_cache else None,
        device_type=torch_device(config.device).type,
    )
    return PreparedRun(config, dataset, built, module, datamodule)


def class_weights(dataset: SplitDataset) -> torch.Tensor:
    """The task's weights against label imbalance over the training split (:meth:`bench.tasks.Task.class_weights`):
    inverse class frequencies averaging 1 over the training examples, or each label's BCE ``pos_weight``."""
    label_ids = {label: index for index, label in enumerate(dataset.labels)}
    targets = label_targets(dataset.train, label_ids)
    return torch.from_numpy(task_named(dataset.task).class_weights(targets, len(dataset.labels)))


def build_trainer(
    config: RunConfig,
    callbacks: Sequence[L.Callback] = (),
    *,
    accumulate_grad_batches: int = 1,
    run_callbacks: Sequence[L.Callback] = (),
    loggers: Sequence[Logger] = (),
) -> L.Trainer:
    """The Lightning trainer of a run: device(s), precision, epochs, clipping, DDP for ``--devices N``.

    Callbacks run in this order: ``run_callbacks`` (the run's own: model selection,
    timing), early stopping for ``--patience``, then the caller's ``callbacks``; a
    progress bar shows only when ``callbacks`` holds one. ``loggers`` are the run's
    experiment trackers (:mod:`bench.tracking`; rank 0 only).
    """
    accelerator, devices = lightning_devices(config.device, config.devices)
    extra: list[L.Callback] = []
    if config.patience is not None:
        extra.append(L.pytorch.callbacks.EarlyStopping("val_macro_f1", mode="max", patience=config.patience))
    distributed = config.devices > 1
    return L.Trainer(
        accelerator=accelerator,
        devices=devices,
        strategy="ddp" if distributed else "auto",
        plugins=[LightningEnvironment()] if distributed else None,
        precision=resolve_precision(config.precision, accelerator),
        max_epochs=config.epochs,
        accumulate_grad_batches=accumulate_grad_batches,
        gradient_clip_val=config.grad_clip or None,
        callbacks=[*run_callbacks, *extra, *callbacks],
        deterministic=accelerator == "cpu",
        logger=list(loggers) or False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=any(isinstance(callback, L.pytorch.callbacks.ProgressBar) for callback in callbacks),
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
    )


@contextmanager
def propagate_interrupts() -> Iterator[None]:
    """Let Ctrl-C and SIGTERM inside a Lightning call reach the caller as :class:`KeyboardInterrupt`.

    Lightning answers Ctrl-C by ignoring SIGINT from then on and calling
    ``sys.exit(1)``, and SIGTERM by raising a ``SystemExit`` (exit code 0); both
    would leave the run marked running. This restores the SIGINT handler and
    raises ``KeyboardInterrupt`` (:class:`Terminated` for SIGTERM) instead.
    """
    handler = signal.getsignal(signal.SIGINT)
    try:
        yield
    except SIGTERMException:
        raise Terminated from None
    except SystemExit as error:
        if isinstance(error.__context__, Terminated):
            raise Terminated from None
        if isinstance(error.__context__, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        raise
    finally:
        if handler is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, handler)


def quiet_lightning_logs() -> None:
    """Keep Lightning's own info messages (GPU available, model summary) out of a run's output: errors only."""
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


@dataclass
class FitResult:
    """What fitting and testing leave behind for the metrics of a run."""

    best: BestWeights
    timer: TrainingTimer
    eval_seconds: float
    precision: str


def fit_classifier(
    prepared: PreparedRun,
    accumulate_grad_batches: int = 1,
    callbacks: Sequence[L.Callback] = (),
    *,
    phases: PhaseTimes | None = None,
    on_selected: Callable[[dict[str, torch.Tensor]], None] = lambda state: None,
    loggers: Sequence[Logger] = (),
) -> FitResult:
    """Fit with model selection on validation macro-F1, then test the best weights.

    Runs on every rank of a distributed run (:mod:`bench.training.distributed`);
    after it every rank holds the test probabilities of the whole test split.
    ``on_selected`` gets the best weights before the test pass (rank 0 starts
    writing them there); ``phases`` receives tokenization, time to the first step,
    validation, fitting and test times.
    """
    phases = phases if phases is not None else PhaseTimes()
    quiet_lightning_logs()
    module, datamodule = prepared.module, prepared.datamodule
    best, timer, stage = BestWeights(), TrainingTimer(), FailureStage()
    trainer = build_trainer(
        prepared.config,
        callbacks,
        accumulate_grad_batches=accumulate_grad_batches,
        run_callbacks=(best, timer, stage),
        loggers=loggers,
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    with phases.measure("tokenize"):
        datamodule.tokenize()
    with warnings.catch_warnings():
        for message in _QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        try:
            fit_started = time.perf_counter()
            with phases.measure("fit"), propagate_interrupts():
                trainer.fit(module, datamodule=datamodule)
            if timer.first_step_end is not None:
                phases.add("first_step", timer.first_step_end - fit_started)
            phases.add("validation", timer.validation_seconds)
            if best.state is None:
                raise RuntimeError("no validation epoch finished")
            module.load_state_dict(best.state)
            on_selected(best.state)
            started = time.perf_counter()
            with propagate_interrupts():
                trainer.test(module, datamodule=datamodule, verbose=False)
            eval_seconds = time.perf_counter() - started
            phases.add("test", eval_seconds)
        except torch.OutOfMemoryError as error:
            if stage.evaluating:
                raise EvaluationOutOfMemoryError(str(error)) from error
            raise
    return FitResult(best, timer, eval_seconds, str(trainer.precision))
