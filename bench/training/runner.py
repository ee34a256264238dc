"""One run, end to end: data → encoder + head → training → test → leaderboard row."""

from __future__ import annotations

import gc
import logging
import os
import platform
import resource
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import optuna
import torch
from lightning.fabric.plugins.environments import LightningEnvironment
from lightning.pytorch.utilities.exceptions import SIGTERMException
from safetensors.torch import save_file

from bench.config import RunConfig
from bench.data import limit_train, load_dataset
from bench.data.types import SplitDataset
from bench.errors import Terminated, UsageError
from bench.inference.model_files import TOKENIZER_DIR, WEIGHTS_FILE, write_model_card
from bench.leaderboard.records import Predictions, RunMetrics, RunRecord
from bench.leaderboard.store import Leaderboard, check_writable
from bench.training.callbacks import BestWeights, FailureStage, TrainingTimer
from bench.training.datamodule import EmotionDataModule
from bench.training.distributed import distributed_launch
from bench.training.metrics import classification_scores
from bench.training.module import EmotionClassifier, EvaluationOutOfMemoryError, NonFiniteLossError
from encoders import EncoderRequest, create_encoder
from encoders.base import BuiltEncoder
from heads import create_head, resolve_head_params

for _name in ("lightning.pytorch", "lightning.fabric", "lightning"):
    logging.getLogger(_name).setLevel(logging.ERROR)


@dataclass
class PreparedRun:
    """Data, model and identity of a run, built before any training."""

    config: RunConfig
    dataset: SplitDataset
    built: BuiltEncoder
    module: EmotionClassifier
    datamodule: EmotionDataModule


def prepare_dataset(config: RunConfig) -> SplitDataset:
    """Load and split ``config.data``; apply ``--train-limit``."""
    dataset = load_dataset(config.data)
    if config.train_limit is not None and config.train_limit < len(dataset.train):
        dataset = limit_train(dataset, config.train_limit, config.data.split_seed)
    return dataset


def prepare_run(
    config: RunConfig, dataset: SplitDataset, *, batch_size: int | None = None, eval_batch_size: int | None = None
) -> PreparedRun:
    """Build encoder, head, LightningModule and LightningDataModule for ``config``.

    ``batch_size`` overrides ``config.batch_size`` and ``eval_batch_size`` the
    evaluation batch (an out-of-memory retry's smaller batches).
    """
    resolve_head_params(config.head, config.head_kwargs)
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
    head = create_head(config.head, built.encoder.hidden_size, len(dataset.labels), config.head_kwargs)
    module = EmotionClassifier(
        built.encoder,
        head,
        num_labels=len(dataset.labels),
        lr=config.lr,
        head_lr=config.head_lr,
        weight_decay=config.weight_decay,
        warmup_ratio=config.warmup_ratio,
        class_weights=class_weights(dataset) if config.class_weighted else None,
        freeze_encoder=config.freeze_encoder,
        compile_encoder=config.compile,
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
    )
    return PreparedRun(config, dataset, built, module, datamodule)


def class_weights(dataset: SplitDataset) -> torch.Tensor:
    """Inverse-frequency class weights over the training split, mean 1."""
    counts = np.array([sum(example.label == label for example in dataset.train) for label in dataset.labels], float)
    weights = counts.sum() / (len(counts) * np.maximum(counts, 1))
    return torch.tensor(weights, dtype=torch.float32)


def resolve_device(device: str, count: int = 1) -> tuple[str, list[int] | int]:
    """Lightning accelerator and devices for ``--device auto|cpu|cuda[:N]`` and ``--devices count``."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return "cpu", count
    if not torch.cuda.is_available():
        raise UsageError(f"--device {device} was asked for but no CUDA GPU is available")
    if count > torch.cuda.device_count():
        raise UsageError(f"--devices {count} was asked for but {torch.cuda.device_count()} CUDA GPUs are visible")
    return "gpu", [int(device.split(":", 1)[1])] if ":" in device else count


def resolve_precision(precision: str, accelerator: str) -> str:
    """``auto`` → bf16-mixed on a GPU that supports it, else 32-true."""
    if precision != "auto":
        return "32-true" if precision == "32" else precision
    if accelerator == "gpu" and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


def environment(accelerator: str, devices: int = 1) -> dict[str, str]:
    """Library versions and the device(s) that ran the run."""
    import lightning
    import sklearn
    import transformers

    device_name = torch.cuda.get_device_name() if accelerator == "gpu" else (platform.processor() or platform.machine())
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "lightning": lightning.__version__,
        "scikit-learn": sklearn.__version__,
        "device": device_name,
        "accelerator": accelerator,
        "threads": str(torch.get_num_threads()),
        "devices": str(devices),
        "platform": platform.platform(),
    }


def run_experiment(
    config: RunConfig,
    leaderboard: Leaderboard,
    *,
    dataset: SplitDataset | None = None,
    callbacks: Sequence[L.Callback] = (),
    rerun: bool = False,
) -> RunRecord:
    """Train and test one configuration and record it in ``leaderboard``.

    A finished run with the same config hash and dataset fingerprint is returned
    as it is unless ``rerun``. Errors during training are recorded as a ``failed``
    row (and returned); Ctrl-C (or SIGTERM while training) records ``interrupted``
    and an Optuna prune records ``pruned``, and both re-raise. With ``config.oom_retry``, a run that runs out of
    GPU memory starts again with half the batch and twice the gradient accumulation.
    """
    check_writable(config.results_path)
    dataset = dataset or prepare_dataset(config)
    existing = leaderboard.find(config.config_hash(), dataset.fingerprint)
    if existing is not None and existing.status == "finished" and not rerun:
        return existing
    accelerator, _ = resolve_device(config.device, config.devices)
    prepared = prepare_run(config, dataset)
    run_environment = environment(accelerator, config.devices)
    run_id = leaderboard.start_run(config, dataset.fingerprint, dataset.name, run_environment)

    def record_retry(batching: dict[str, int]) -> None:
        values = {name: str(value) for name, value in batching.items()}
        leaderboard.start_run(config, dataset.fingerprint, dataset.name, {**run_environment, **values})

    try:
        metrics = train_with_oom_retry(prepared, run_id, callbacks, on_retry=record_retry)
    except KeyboardInterrupt as interrupt:
        reason = "terminated (SIGTERM)" if isinstance(interrupt, Terminated) else "interrupted by the user (SIGINT)"
        leaderboard.fail_run(run_id, reason, status="interrupted")
        raise
    except optuna.TrialPruned:
        leaderboard.fail_run(run_id, "pruned by the Optuna study", status="pruned")
        raise
    except NonFiniteLossError as error:
        leaderboard.fail_run(run_id, str(error))
    except OutOfMemoryAtBatch as error:
        leaderboard.fail_run(run_id, str(error))
    except Exception as error:  # noqa: BLE001 - any training failure becomes a failed row
        leaderboard.fail_run(run_id, f"{type(error).__name__}: {error}")
    else:
        leaderboard.finish_run(run_id, metrics)
    return leaderboard.get_run(run_id)


class OutOfMemoryAtBatch(RuntimeError):
    """Training ran out of (GPU) memory at a batch size no retry could go below."""


def train_with_oom_retry(
    prepared: PreparedRun,
    run_id: str,
    callbacks: Sequence[L.Callback],
    *,
    on_retry: Callable[[dict[str, int]], None] = lambda batching: None,
) -> RunMetrics:
    """:func:`train_and_test`; after out-of-memory, with ``--oom-retry``, again from the start.

    Out of memory while training: the retry rebuilds the model (same seed) with half
    the batch and twice the gradient accumulation, so the effective batch stays the
    same, down to a batch of 1 per device. Out of memory while evaluating: the retry
    halves the evaluation batch only (it does not change what is computed), down to 1.
    ``on_retry`` gets the next attempt's ``batch_size``, ``accumulate_grad_batches`` and
    ``eval_batch_size``. Raises :class:`OutOfMemoryAtBatch` when no retry is left.
    """
    config, accumulation = prepared.config, 1
    while True:
        batch_size, eval_batch_size = prepared.datamodule.batch_size, prepared.datamodule.eval_batch_size
        try:
            return train_and_test(prepared, run_id, callbacks, accumulation)
        except torch.OutOfMemoryError as error:
            reason = (str(error).strip().splitlines() or ["out of memory"])[0]
            evaluating = isinstance(error, EvaluationOutOfMemoryError)
            if evaluating:
                batching = f"evaluation batch size {eval_batch_size}"
                exhausted = eval_batch_size <= 1
            else:
                batching = f"batch size {batch_size}" + (f" x {accumulation} accumulated" if accumulation > 1 else "")
                exhausted = batch_size // config.devices <= 1
            if not config.oom_retry or exhausted:
                hint = "" if config.oom_retry else "; --oom-retry retries with half the batch"
                raise OutOfMemoryAtBatch(f"out of memory at {batching}: {reason}{hint}") from None
        # Outside the except block, so that the failed attempt's tensors can be freed (Lightning's
        # teardown has moved its model back to the CPU).
        release_memory()
        if evaluating:
            eval_batch_size //= 2
        else:
            batch_size, accumulation = halve_batch(batch_size, config.devices), accumulation * 2
        on_retry({"batch_size": batch_size, "accumulate_grad_batches": accumulation, "eval_batch_size": eval_batch_size})
        prepared = prepare_run(config, prepared.dataset, batch_size=batch_size, eval_batch_size=eval_batch_size)


def halve_batch(batch_size: int, devices: int) -> int:
    """Half of a global batch, still split evenly over ``devices``."""
    return max(1, batch_size // devices // 2) * devices


def release_memory() -> None:
    """Collect garbage and return cached GPU memory to the driver."""
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


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
        if isinstance(error.__context__, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        raise
    finally:
        if handler is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, handler)


@dataclass
class FitResult:
    """What fitting and testing leave behind for the metrics of a run."""

    best: BestWeights
    timer: TrainingTimer
    eval_seconds: float


def fit_and_test(
    prepared: PreparedRun, accumulate_grad_batches: int = 1, callbacks: Sequence[L.Callback] = ()
) -> FitResult:
    """Fit with model selection on validation macro-F1, then test the best weights.

    Runs on every rank of a distributed run (:mod:`bench.training.distributed`);
    after it every rank holds the test probabilities of the whole test split.
    """
    config, module, datamodule = prepared.config, prepared.module, prepared.datamodule
    accelerator, devices = resolve_device(config.device, config.devices)
    best, timer, stage = BestWeights(), TrainingTimer(), FailureStage()
    extra: list[L.Callback] = []
    if config.patience is not None:
        extra.append(L.pytorch.callbacks.EarlyStopping("val_macro_f1", mode="max", patience=config.patience))
    distributed = config.devices > 1
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=devices,
        strategy="ddp" if distributed else "auto",
        plugins=[LightningEnvironment()] if distributed else None,
        precision=resolve_precision(config.precision, accelerator),
        max_epochs=config.epochs,
        accumulate_grad_batches=accumulate_grad_batches,
        gradient_clip_val=config.grad_clip or None,
        callbacks=[best, timer, stage, *extra, *callbacks],
        deterministic=accelerator == "cpu",
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=any(isinstance(callback, L.pytorch.callbacks.ProgressBar) for callback in callbacks),
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*number of training batches.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated.*")
        warnings.filterwarnings("ignore", message=".*sync_dist=True.*")
        try:
            with propagate_interrupts():
                trainer.fit(module, datamodule=datamodule)
            if best.state is None:
                raise RuntimeError("no validation epoch finished")
            module.load_state_dict(best.state)
            started = time.perf_counter()
            with propagate_interrupts():
                trainer.test(module, datamodule=datamodule, verbose=False)
            eval_seconds = time.perf_counter() - started
        except torch.OutOfMemoryError as error:
            if stage.evaluating:
                raise EvaluationOutOfMemoryError(str(error)) from error
            raise
    return FitResult(best, timer, eval_seconds)


def train_and_test(
    prepared: PreparedRun, run_id: str, callbacks: Sequence[L.Callback], accumulate_grad_batches: int = 1
) -> RunMetrics:
    """:func:`fit_and_test` (with ranks 1…N-1 started for ``--devices N``), then the run's metrics and artefacts."""
    config = prepared.config
    if config.devices == 1:
        fit = fit_and_test(prepared, accumulate_grad_batches, callbacks)
    else:
        batching = {"batch_size": prepared.datamodule.batch_size, "eval_batch_size": prepared.datamodule.eval_batch_size}
        with distributed_launch(config, run_id, accumulation=accumulate_grad_batches, **batching) as launch:
            try:
                fit = fit_and_test(prepared, accumulate_grad_batches, callbacks)
            except Exception:
                launch.raise_failure()
                raise
    return run_metrics(prepared, run_id, fit)


def run_metrics(prepared: PreparedRun, run_id: str, fit: FitResult) -> RunMetrics:
    """Test scores, efficiency and predictions of a fitted run; saves its artefacts."""
    module, datamodule, best, timer = prepared.module, prepared.datamodule, fit.best, fit.timer
    assert best.state is not None
    latency = measure_latency(module, datamodule)
    checkpoint = save_artifacts(prepared, run_id, best.state)
    dataset = prepared.dataset
    gold = np.array([datamodule.label_ids[example.label] for example in dataset.test])
    probabilities = module.test_probabilities
    assert probabilities is not None and module.test_indices is not None
    predicted = probabilities.argmax(axis=1)
    scores = classification_scores(gold, predicted, len(dataset.labels))
    total = sum(parameter.numel() for parameter in module.parameters())
    trainable = sum(parameter.numel() for parameter in module.parameters() if parameter.requires_grad)
    return RunMetrics(
        macro_f1=scores.macro_f1,
        accuracy=scores.accuracy,
        val_macro_f1=best.best_score,
        labels=list(dataset.labels),
        per_class=scores.per_class(list(dataset.labels)),
        confusion=scores.confusion,
        history=module.history,
        timings={
            "train_seconds": timer.seconds,
            "train_samples_per_second": timer.samples_per_second,
            "eval_seconds": fit.eval_seconds,
            **latency,
            "peak_memory_mb": peak_memory_mb(),
        },
        total_params=total,
        trainable_params=trainable,
        best_epoch=best.best_epoch,
        predictions=Predictions(
            example_ids=[example.uid for example in dataset.test],
            gold=gold.tolist(),
            predicted=predicted.tolist(),
            probabilities=np.round(probabilities, 6).tolist(),
        ),
        checkpoint=str(checkpoint),
        truncated=dict(datamodule.truncated),
    )


@torch.inference_mode()
def measure_latency(module: EmotionClassifier, datamodule: EmotionDataModule, repeats: int = 16) -> dict[str, float]:
    """Milliseconds per example of a forward pass at batch 1 and at batch 64 (test split)."""
    module.eval()
    device = module.device
    results: dict[str, float] = {}
    for batch_size, key in ((1, "latency_ms_batch1"), (64, "latency_ms_batch64")):
        loader = datamodule.eval_dataloader("test", batch_size=batch_size)
        timings: list[float] = []
        for count, batch in enumerate(loader):
            if count >= repeats:
                break
            input_ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
            if count == 0:
                module(input_ids, mask)
            _sync(device)
            started = time.perf_counter()
            module(input_ids, mask)
            _sync(device)
            timings.append((time.perf_counter() - started) * 1000 / input_ids.shape[0])
        results[key] = float(np.median(timings)) if timings else float("nan")
    return results


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mb() -> float:
    """Peak GPU memory allocated, or the process's peak resident memory on CPU."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_directory(results_dir: Path, run_id: str) -> Path:
    """Where a run's artefacts live: ``<results>/runs/<run_id>`` (run ids are hex, no traversal)."""
    if not run_id.isalnum():
        raise ValueError(f"invalid run id {run_id!r}")
    return results_dir / "runs" / run_id


def save_artifacts(prepared: PreparedRun, run_id: str, state: dict[str, torch.Tensor]) -> Path:
    """Best weights as safetensors, the tokenizer files and ``model.json`` (a folder `bench predict` loads)."""
    directory = run_directory(prepared.config.results_path, run_id)
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / WEIGHTS_FILE
    temporary = weights.with_suffix(".tmp")
    save_file({name: tensor.contiguous() for name, tensor in state.items()}, str(temporary))
    os.replace(temporary, weights)
    prepared.built.tokenizer.save(directory / TOKENIZER_DIR)
    write_model_card(
        directory, run_id=run_id, config=prepared.config, dataset=prepared.dataset, encoder=prepared.built.encoder
    )
    return weights
