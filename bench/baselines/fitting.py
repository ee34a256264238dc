"""Fitting, testing and recording the reference rows (scikit-learn)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline, make_pipeline

from bench.baselines.specs import BASELINE_ENCODERS, is_baseline
from bench.config import RunConfig
from bench.data.types import SplitDataset
from bench.errors import UsageError
from bench.evaluation.latency import LATENCY_BATCHES, LatencyCache, LatencyPolicy, cached_latency, median_latency_ms
from bench.evaluation.scores import label_targets
from bench.leaderboard.records import Predictions, RunMetrics, RunRecord
from bench.leaderboard.store import Leaderboard
from bench.machine.environment import environment, peak_memory_mb
from bench.machine.results_folder import check_writable
from bench.preparation.datasets import prepare_dataset
from bench.recording.lifecycle import ActiveRun, finished_run, record_run
from bench.recording.phases import PhaseTimes
from bench.tasks import Task, task_named


@dataclass
class FittedBaseline:
    """A fitted classifier, its validation sweep, how long fitting took and its decision thresholds (if any)."""

    model: Any
    history: list[dict[str, float]]
    val_macro_f1: float
    train_seconds: float
    fits: int
    thresholds: np.ndarray | None = None


def run_baseline(
    config: RunConfig,
    leaderboard: Leaderboard,
    *,
    dataset: SplitDataset | None = None,
    rerun: bool = False,
    latency: LatencyPolicy = "once",
) -> RunRecord:
    """Fit, test and record the baseline of ``config`` (from :func:`baseline_config`).

    A finished row with the same config hash and fingerprint is returned unless
    ``rerun``; the row ends as training runs' rows do (:func:`bench.recording.lifecycle.record_run`).
    """
    if not is_baseline(config.encoder):
        raise UsageError(f"{config.encoder!r} is not a baseline; choose from {', '.join(sorted(BASELINE_ENCODERS))}")
    check_writable(config.results_path)
    phases = PhaseTimes()
    if dataset is None:
        with phases.measure("data_load"):
            dataset = prepare_dataset(config)
    existing = finished_run(leaderboard, config, dataset, rerun=rerun)
    if existing is not None:
        return existing

    def execute(run: ActiveRun) -> RunMetrics:
        return fit_and_score_baseline(config, dataset, run, latency=latency)

    return record_run(leaderboard, config, dataset, environment("cpu"), execute, phases=phases)


def fit_and_score_baseline(
    config: RunConfig, dataset: SplitDataset, run: ActiveRun, *, latency: LatencyPolicy = "once"
) -> RunMetrics:
    """Fit the baseline on train (model selection on validation) and score it on test, as its task decides and
    scores (:mod:`bench.tasks`: argmax, or thresholds tuned on validation, global or per label)."""
    task = task_named(dataset.task)
    label_ids = {label: index for index, label in enumerate(dataset.labels)}
    splits = ("train", "validation", "test")
    gold = {split: label_targets(getattr(dataset, split), label_ids).astype(np.int64) for split in splits}
    texts = {split: [example.text for example in getattr(dataset, split)] for split in splits}
    with run.phases.measure("fit"):
        if config.encoder == "tfidf":
            fitted = fit_tfidf(task, config, texts, gold, dataset.labels)
        else:
            fitted = fit_majority(task, config, texts, gold, dataset.labels)
    num_labels = len(dataset.labels)
    started = time.perf_counter()
    probabilities = class_probabilities(fitted.model, texts["test"], num_labels)
    eval_seconds = time.perf_counter() - started
    run.phases.add("test", eval_seconds)
    scores = task.evaluate(gold["test"], probabilities, fitted.thresholds, dataset.labels)
    shape = {
        "kind": "baseline",
        "encoder": config.encoder,
        "params": config.head_params,
        "train_limit": config.train_limit,
        "test": dataset.fingerprint,
        "task": task.name,
    }
    with run.phases.measure("latency"):
        latency_figures, source = cached_latency(
            LatencyCache(config.results_path / "cache"),
            shape,
            lambda: measure_baseline_latency(
                lambda batch: class_probabilities(fitted.model, batch, num_labels), texts["test"]
            ),
            run_id=run.run_id,
            policy=latency,
        )
    run.update_environment({"latency": source})
    parameters = baseline_parameter_count(fitted.model)
    return RunMetrics(
        macro_f1=scores.macro_f1,
        accuracy=scores.accuracy,
        val_macro_f1=fitted.val_macro_f1,
        labels=list(dataset.labels),
        per_class=scores.per_class,
        confusion=scores.confusion,
        history=fitted.history,
        timings=_timings(len(texts["train"]) * fitted.fits, fitted.train_seconds, eval_seconds, latency_figures),
        total_params=parameters,
        trainable_params=parameters,
        predictions=Predictions(
            example_ids=[example.uid for example in dataset.test],
            gold=gold["test"].tolist(),
            predicted=scores.predicted.tolist(),
            probabilities=np.round(probabilities, 6).tolist(),
            texts=[example.text for example in dataset.test],
        ),
        **scores.extra,
    )


def _timings(
    samples_fitted: int, train_seconds: float, eval_seconds: float, latency: dict[str, float]
) -> dict[str, float]:
    """Fit, test and latency timings of a baseline, with throughput and peak memory."""
    return {
        "train_seconds": train_seconds,
        "train_samples_per_second": samples_fitted / max(train_seconds, 1e-9),
        "eval_seconds": eval_seconds,
        **latency,
        "peak_memory_mb": peak_memory_mb(),
    }


def fit_tfidf(
    task: Task, config: RunConfig, texts: dict[str, list[str]], gold: dict[str, np.ndarray], labels: Sequence[str]
) -> FittedBaseline:
    """TF-IDF on train, then the task's logistic regression per ``C``; keep the best on validation macro-F1
    (at the decision thresholds tuned on validation where the task has them)."""
    params = config.head_kwargs
    grid = [float(value) for value in str(params["c_grid"]).split(",")]
    started = time.perf_counter()
    vectorizer = TfidfVectorizer(
        analyzer=params["analyzer"],
        ngram_range=(int(params["ngram_min"]), int(params["ngram_max"])),
        sublinear_tf=bool(params["sublinear_tf"]),
        min_df=int(params["min_df"]),
        dtype=np.float32,
    )
    train_features = vectorizer.fit_transform(texts["train"])
    validation_features = vectorizer.transform(texts["validation"])
    history: list[dict[str, float]] = []
    best: FittedBaseline | None = None
    for c in grid:
        classifier = task.linear_model(c, int(params["max_iter"]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.filterwarnings("ignore", message="Label not .* is present in all training examples")
            classifier.fit(train_features, gold["train"])
        probabilities = class_probabilities(classifier, validation_features, len(labels))
        thresholds = task.tune_thresholds(gold["validation"], probabilities, config.per_label_threshold)
        validation = task.evaluate(gold["validation"], probabilities, thresholds, labels)
        history.append({"C": c, "val_macro_f1": validation.macro_f1, "val_accuracy": validation.accuracy})
        if best is None or validation.macro_f1 > best.val_macro_f1:
            best = FittedBaseline(classifier, history, validation.macro_f1, 0.0, len(grid), thresholds)
    assert best is not None  # the grid is never empty (format_c_grid)
    best.model = make_pipeline(vectorizer, best.model)
    best.train_seconds = time.perf_counter() - started
    return best


def fit_majority(
    task: Task, config: RunConfig, texts: dict[str, list[str]], gold: dict[str, np.ndarray], labels: Sequence[str]
) -> FittedBaseline:
    """The training frequency of each label as every text's probability: the most frequent class (ties: the
    lowest class id), or for multi-label data every label whose frequency passes the threshold tuned on validation."""
    started = time.perf_counter()
    model = LabelPrior(task.label_prior(gold["train"], len(labels)))
    seconds = time.perf_counter() - started
    probabilities = class_probabilities(model, texts["validation"], len(labels))
    thresholds = task.tune_thresholds(gold["validation"], probabilities, config.per_label_threshold)
    validation = task.evaluate(gold["validation"], probabilities, thresholds, labels)
    return FittedBaseline(model, [], validation.macro_f1, seconds, 1, thresholds)


@dataclass
class LabelPrior:
    """The majority baseline: every text gets each label's training frequency as its probability."""

    frequencies: np.ndarray

    @property
    def classes_(self) -> np.ndarray:
        """Class ids of the columns of :meth:`predict_proba` (every label)."""
        return np.arange(len(self.frequencies))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), labels)`` copies of the training frequencies."""
        return np.tile(self.frequencies, (len(texts), 1))


def class_probabilities(model: Any, inputs: Any, num_labels: int) -> np.ndarray:
    """``(len(inputs), num_labels)`` probabilities of texts or features; classes missing from training get 0."""
    known = model.predict_proba(inputs)
    probabilities = np.zeros((known.shape[0], num_labels), dtype=np.float64)
    classes = model[-1].classes_ if isinstance(model, Pipeline) else model.classes_
    probabilities[:, np.asarray(classes).astype(int)] = known
    return probabilities


def baseline_parameter_count(model: Pipeline | LabelPrior) -> int:
    """Numbers the classifier stores: coefficients and intercepts, or the class prior."""
    if isinstance(model, Pipeline):
        classifier = model[-1]
        parts = classifier.estimators_ if isinstance(classifier, OneVsRestClassifier) else [classifier]
        return int(sum(part.coef_.size + part.intercept_.size for part in parts if hasattr(part, "coef_")))
    return int(model.frequencies.size)


def measure_baseline_latency(predict: Callable[[Sequence[str]], Any], texts: Sequence[str]) -> dict[str, float]:
    """Median milliseconds per example of ``predict`` at batch 1 and at batch 64 (test texts, after one warm-up)."""

    def batches(batch_size: int) -> list[Sequence[str]]:
        return [texts[start : start + batch_size] for start in range(0, len(texts), batch_size)]

    return median_latency_ms(predict, {key: batches(size) for key, size in LATENCY_BATCHES.items()}, len)
