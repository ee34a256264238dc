"""One training run, end to end: data → encoder + head → training → test → leaderboard row.

The row's lifecycle (start, finish, fail, interrupt, prune) is :func:`bench.recording.lifecycle.record_run`,
shared with the baselines; building and fitting the model is :mod:`bench.training.fitting`.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import Logger
from safetensors.torch import save_file

from bench.config import RunConfig
from bench.data.types import SplitDataset
from bench.evaluation.latency import LATENCY_BATCHES, LatencyCache, LatencyPolicy, cached_latency, median_latency_ms
from bench.evaluation.scores import label_targets
from bench.inference.model_files import TOKENIZER_DIR, WEIGHTS_FILE, write_model_card
from bench.leaderboard.records import Predictions, RunMetrics, RunRecord
from bench.leaderboard.store import Leaderboard
from bench.machine.devices import lightning_devices
from bench.machine.environment import environment, peak_memory_mb
from bench.machine.results_folder import check_writable, run_directory
from bench.model.classifier import feature_dtype_name
from bench.preparation.datasets import prepare_dataset
from bench.recording.lifecycle import ActiveRun, finished_run, record_run
from bench.recording.phases import PhaseTimes
from bench.tracking import EpochMetricsToLoggers, log_run_result, tracked_run
from bench.training.datamodule import EmotionDataModule
from bench.training.distributed import distributed_launch
from bench.training.errors import EvaluationOutOfMemoryError, OutOfMemoryAtBatch
from bench.training.fitting import FitResult, PreparedRun, fit_classifier, prepare_run
from bench.training.module import EmotionClassifier


def run_experiment(
    config: RunConfig,
    leaderboard: Leaderboard,
    *,
    dataset: SplitDataset | None = None,
    callbacks: Sequence[L.Callback] = (),
    rerun: bool = False,
    phases: PhaseTimes | None = None,
    latency: LatencyPolicy = "once",
) -> RunRecord:
    """Train and test one configuration and record it in ``leaderboard``.

    A finished run with the same config hash and dataset fingerprint is returned
    as it is unless ``rerun``. Errors during training are recorded as a ``failed``
    row (and returned); Ctrl-C (or SIGTERM) records ``interrupted`` and an Optuna
    prune records ``pruned``, and both re-raise. With ``config.oom_retry``, a run that
    runs out of GPU memory starts again with half the batch and twice the gradient
    accumulation, and its row records the new batch sizes. ``phases`` carries times
    measured before (loading ``dataset``); ``latency`` chooses whether the latency
    of a model shape measured before is reused (``once``) or measured again (``always``).
    """
    check_writable(config.results_path)
    phases = phases if phases is not None else PhaseTimes()
    if dataset is None:
        with phases.measure("data_load"):
            dataset = prepare_dataset(config)
    existing = finished_run(leaderboard, config, dataset, rerun=rerun)
    if existing is not None:
        return existing
    accelerator, _ = lightning_devices(config.device, config.devices)
    with phases.measure("model_build"):
        prepared = prepare_run(config, dataset)
    run_environment = {**environment(accelerator, config.devices), "precision_requested": config.precision}

    def execute(run: ActiveRun) -> RunMetrics:
        with tracked_run(config, run.run_id) as loggers:
            run_callbacks = [*callbacks, EpochMetricsToLoggers()] if loggers else callbacks
            metrics = train_with_oom_retry(prepared, run, run_callbacks, latency=latency, loggers=loggers)
            log_run_result(loggers, metrics, config.epochs)
            return metrics

    return record_run(leaderboard, config, dataset, run_environment, execute, phases=phases)


def train_with_oom_retry(
    prepared: PreparedRun,
    run: ActiveRun,
    callbacks: Sequence[L.Callback],
    *,
    latency: LatencyPolicy = "once",
    loggers: Sequence[Logger] = (),
) -> RunMetrics:
    """:func:`train_and_test`; after out-of-memory, with ``--oom-retry``, again from the start.

    Out of memory while training: the retry rebuilds the model (same seed) with half
    the batch and twice the gradient accumulation, so the effective batch stays the
    same, down to a batch of 1 per device. Out of memory while evaluating: the retry
    halves the evaluation batch only (it does not change what is computed), down to 1.
    The next attempt's ``batch_size``, ``accumulate_grad_batches`` and ``eval_batch_size``
    and the number of retries so far (``oom_retries``) update the row's environment;
    the row stays one attempt. Raises :class:`OutOfMemoryAtBatch` when no retry is left.
    """
    config, accumulation, retries = prepared.config, 1, 0
    while True:
        batch_size, eval_batch_size = prepared.datamodule.batch_size, prepared.datamodule.eval_batch_size
        try:
            return train_and_test(prepared, run, callbacks, accumulation, latency=latency, loggers=loggers)
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
        retries += 1
        run.update_environment(
            {
                "batch_size": batch_size,
                "accumulate_grad_batches": accumulation,
                "eval_batch_size": eval_batch_size,
                "oom_retries": retries,
            }
        )
        prepared = prepare_run(config, prepared.dataset, batch_size=batch_size, eval_batch_size=eval_batch_size)


def halve_batch(batch_size: int, devices: int) -> int:
    """Half of a global batch, still split evenly over ``devices``."""
    return max(1, batch_size // devices // 2) * devices


def release_memory() -> None:
    """Collect garbage and return cached GPU memory to the driver."""
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def train_and_test(
    prepared: PreparedRun,
    run: ActiveRun,
    callbacks: Sequence[L.Callback],
    accumulate_grad_batches: int = 1,
    *,
    latency: LatencyPolicy = "once",
    loggers: Sequence[Logger] = (),
) -> RunMetrics:
    """:func:`fit_classifier` (with ranks 1…N-1 started for ``--devices N``), then the run's metrics and artefacts.

    The best weights are written in the background while the test pass runs.
    """
    config = prepared.config
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="artefacts") as writer:
        saved: list[Future[Path]] = []

        def write_artifacts(state: dict[str, torch.Tensor]) -> None:
            saved.append(writer.submit(save_artifacts, prepared, run.run_id, state, run.phases))

        def fit() -> FitResult:
            return fit_classifier(
                prepared,
                accumulate_grad_batches,
                callbacks,
                phases=run.phases,
                on_selected=write_artifacts,
                loggers=loggers,
            )

        if config.devices == 1:
            result = fit()
        else:
            batching = {
                "batch_size": prepared.datamodule.batch_size,
                "eval_batch_size": prepared.datamodule.eval_batch_size,
            }
            with distributed_launch(config, run.run_id, accumulation=accumulate_grad_batches, **batching) as launch:
                try:
                    result = fit()
                except Exception:
                    launch.raise_failure()
                    raise
        started = time.perf_counter()
        checkpoint = saved[-1].result()
        run.phases.add("artefacts_wait", time.perf_counter() - started)
    run.update_environment({"precision": result.precision})
    return run_metrics(prepared, run, result, checkpoint, latency=latency)


def run_metrics(
    prepared: PreparedRun, run: ActiveRun, fit: FitResult, checkpoint: Path, *, latency: LatencyPolicy = "once"
) -> RunMetrics:
    """Test scores, efficiency and predictions of a fitted run whose weights are saved at ``checkpoint``."""
    module, datamodule, best, timer = prepared.module, prepared.datamodule, fit.best, fit.timer
    with run.phases.measure("latency"):
        latency_figures, source = cached_latency(
            LatencyCache(prepared.config.results_path / "cache"),
            model_shape(prepared),
            lambda: measure_model_latency(module, datamodule),
            run_id=run.run_id,
            policy=latency,
        )
    run.update_environment({"latency": source})
    dataset = prepared.dataset
    gold = label_targets(dataset.test, datamodule.label_ids).astype(np.int64)
    probabilities = module.test_probabilities
    assert probabilities is not None and module.test_indices is not None
    thresholds = module.thresholds.cpu().numpy() if module.thresholds is not None else None
    scores = module.task.evaluate(gold, probabilities, thresholds, list(dataset.labels))
    total, trainable = module_parameter_counts(module)
    return RunMetrics(
        macro_f1=scores.macro_f1,
        accuracy=scores.accuracy,
        val_macro_f1=best.best_score,
        labels=list(dataset.labels),
        per_class=scores.per_class,
        confusion=scores.confusion,
        history=module.history,
        timings={
            "train_seconds": timer.seconds,
            "train_samples_per_second": timer.samples_per_second,
            "eval_seconds": fit.eval_seconds,
            **latency_figures,
            "peak_memory_mb": peak_memory_mb(),
        },
        total_params=total,
        trainable_params=trainable,
        best_epoch=best.best_epoch,
        predictions=Predictions(
            example_ids=[example.uid for example in dataset.test],
            gold=gold.tolist(),
            predicted=scores.predicted.tolist(),
            probabilities=np.round(probabilities, 6).tolist(),
            texts=[example.text for example in dataset.test],
        ),
        checkpoint=str(checkpoint),
        truncated=dict(datamodule.truncated),
        **scores.extra,
    )


def module_parameter_counts(module: torch.nn.Module) -> tuple[int, int]:
    """All parameters of ``module`` and the trainable ones among them."""
    total = sum(parameter.numel() for parameter in module.parameters())
    trainable = sum(parameter.numel() for parameter in module.parameters() if parameter.requires_grad)
    return total, trainable


def model_shape(prepared: PreparedRun) -> dict[str, Any]:
    """What a trained model's latency depends on: architecture, head, sequence length, test texts, machine."""
    config = prepared.config
    return {
        "kind": "classifier",
        "encoder": config.encoder,
        "encoder_path": config.encoder_path,
        "encoder_config": config.encoder_config,
        "head": config.head,
        "head_params": config.head_params,
        "labels": len(prepared.dataset.labels),
        "freeze_encoder": config.freeze_encoder,
        "max_len": config.max_len,
        "train_limit": config.train_limit,
        "bucketing": config.bucketing,
        "compile": config.compile,
        "test": prepared.dataset.fingerprint,
        "device": str(prepared.module.device),
        "threads": torch.get_num_threads(),
    }


@torch.inference_mode()
def measure_model_latency(module: EmotionClassifier, datamodule: EmotionDataModule) -> dict[str, float]:
    """Milliseconds per example of a forward pass at batch 1 and at batch 64 (test split)."""
    module.eval()
    device = module.device

    def batches(batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch in datamodule.eval_dataloader("test", batch_size=batch_size):
            yield batch["input_ids"].to(device), batch["attention_mask"].to(device)

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return median_latency_ms(
        lambda inputs: module(*inputs),
        {key: batches(size) for key, size in LATENCY_BATCHES.items()},
        lambda inputs: int(inputs[0].shape[0]),
        synchronize=synchronize,
    )


def save_artifacts(
    prepared: PreparedRun, run_id: str, state: dict[str, torch.Tensor], phases: PhaseTimes | None = None
) -> Path:
    """Best weights as safetensors, the tokenizer files and ``model.json`` (a folder `bench predict` loads)."""
    started = time.perf_counter()
    directory = run_directory(prepared.config.results_path, run_id)
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / WEIGHTS_FILE
    temporary = weights.with_suffix(".tmp")
    save_file({name: tensor.contiguous() for name, tensor in state.items()}, str(temporary))
    os.replace(temporary, weights)
    prepared.built.tokenizer.save(directory / TOKENIZER_DIR)
    thresholds = state.get("thresholds")
    write_model_card(
        directory,
        run_id=run_id,
        config=prepared.config,
        dataset=prepared.dataset,
        encoder=prepared.built.encoder,
        thresholds=[round(float(value), 4) for value in thresholds] if thresholds is not None else None,
        feature_dtype=feature_dtype_name(prepared.module.classifier.feature_dtype),
    )
    if phases is not None:
        phases.add("artefacts", time.perf_counter() - started)
    return weights
