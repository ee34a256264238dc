"""Fitting, testing and recording the reference rows (scikit-learn)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline, make_pipeline

from bench.baselines.specs import BASELINE_ENCODERS, is_baseline
from bench.config import RunConfig
from bench.data.types import SplitDataset
from bench.errors import UsageError
from bench.leaderboard.records import Predictions, RunMetrics, RunRecord
from bench.leaderboard.store import Leaderboard
from bench.runs.dataset import prepare_dataset
from bench.runs.latency import LATENCY_BATCHES, LatencyCache, LatencyPolicy, cached_latency, median_latency_ms
from bench.runs.lifecycle import ActiveRun, finished_run, record_run
from bench.runs.phases import PhaseTimes
from bench.runs.scores import classification_scores, label_targets, multilabel_scores, tune_thresholds
from bench.runtime.environment import environment, peak_memory_mb
from bench.runtime.results_folder import check_writable


@dataclass
class FittedBaseline:
    """A fitted scikit-learn classifier, its validation sweep and how long fitting took."""

    model: Pipeline | DummyClassifier
    history: list[dict[str, float]]
    val_macro_f1: float
    train_seconds: float
    fits: int


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
    ``rerun``; the row ends as training runs' rows do (:func:`bench.runs.lifecycle.record_run`).
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
    """Fit the baseline on train (model selection on validation) and score it on test."""
    if dataset.multilabel:
        return fit_and_score_multilabel(config, dataset, run)
    label_ids = {label: index for index, label in enumerate(dataset.labels)}
    gold = {
        split: np.array([label_ids[example.label] for example in getattr(dataset, split)])
        for split in ("train", "validation", "test")
    }
    texts = {split: [example.text for example in getattr(dataset, split)] for split in ("train", "validation", "test")}
    num_labels = len(dataset.labels)
    with run.phases.measure("fit"):
        if config.encoder == "tfidf":
            fitted = fit_tfidf(config.head_kwargs, texts, gold, num_labels)
        else:
            fitted = fit_majority(texts, gold, num_labels)
    started = time.perf_counter()
    probabilities = class_probabilities(fitted.model, texts["test"], num_labels)
    eval_seconds = time.perf_counter() - started
    run.phases.add("test", eval_seconds)
    predicted = probabilities.argmax(axis=1)
    scores = classification_scores(gold["test"], predicted, num_labels)
    parameters = baseline_parameter_count(fitted.model)
    shape = {"kind": "baseline", "encoder": config.encoder, "params": config.head_params,
             "train_limit": config.train_limit, "test": dataset.fingerprint}
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
    return baseline_metrics(
        dataset,
        scores,
        accuracy=scores.accuracy,
        confusion=scores.confusion,
        val_macro_f1=fitted.val_macro_f1,
        history=fitted.history,
        timings=_timings(len(texts["train"]) * fitted.fits, fitted.train_seconds, eval_seconds, latency_figures),
        parameters=parameters,
        gold=gold["test"],
        predicted=predicted,
        probabilities=probabilities,
    )


def baseline_metrics(
    dataset: SplitDataset,
    test_scores: Any,
    *,
    accuracy: float,
    confusion: list[list[int]],
    val_macro_f1: float,
    history: list[dict[str, float]],
    timings: dict[str, float],
    parameters: int,
    gold: np.ndarray,
    predicted: np.ndarray,
    probabilities: np.ndarray,
    **extra: Any,
) -> RunMetrics:
    """The leaderboard metrics of a baseline scored on ``dataset``'s test split (``extra``: multi-label fields)."""
    return RunMetrics(
        macro_f1=test_scores.macro_f1,
        accuracy=accuracy,
        val_macro_f1=val_macro_f1,
        labels=list(dataset.labels),
        per_class=test_scores.per_class(list(dataset.labels)),
        confusion=confusion,
        history=history,
        timings=timings,
        total_params=parameters,
        trainable_params=parameters,
        predictions=Predictions(
            example_ids=[example.uid for example in dataset.test],
            gold=gold.tolist(),
            predicted=predicted.tolist(),
            probabilities=np.round(probabilities, 6).tolist(),
            texts=[example.text for example in dataset.test],
        ),
        **extra,
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
    params: dict[str, Any], texts: dict[str, list[str]], gold: dict[str, np.ndarray], num_labels: int
) -> FittedBaseline:
    """TF-IDF on train, then one logistic regression per ``C``; keep the best on validation macro-F1."""
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
    best: tuple[float, LogisticRegression] | None = None
    for c in grid:
        classifier = LogisticRegression(C=c, max_iter=int(params["max_iter"]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            classifier.fit(train_features, gold["train"])
        validation = classification_scores(gold["validation"], classifier.predict(validation_features), num_labels)
        history.append({"C": c, "val_macro_f1": validation.macro_f1, "val_accuracy": validation.accuracy})
        if best is None or validation.macro_f1 > best[0]:
            best = (validation.macro_f1, classifier)
    assert best is not None  # the grid is never empty (format_c_grid)
    seconds = time.perf_counter() - started
    return FittedBaseline(make_pipeline(vectorizer, best[1]), history, best[0], seconds, len(grid))


def fit_majority(texts: dict[str, list[str]], gold: dict[str, np.ndarray], num_labels: int) -> FittedBaseline:
    """The most frequent training label (ties: the lowest class id), training frequencies as probabilities."""
    started = time.perf_counter()
    model = DummyClassifier(strategy="prior").fit(np.zeros((len(gold["train"]), 1)), gold["train"])
    seconds = time.perf_counter() - started
    validation = classification_scores(
        gold["validation"], class_probabilities(model, texts["validation"], num_labels).argmax(axis=1), num_labels
    )
    return FittedBaseline(model, [], validation.macro_f1, seconds, 1)


def class_probabilities(model: Pipeline | DummyClassifier, texts: Sequence[str], num_labels: int) -> np.ndarray:
    """``(len(texts), num_labels)`` probabilities; classes missing from training get 0."""
    inputs: Any = list(texts) if isinstance(model, Pipeline) else np.zeros((len(texts), 1))
    known = model.predict_proba(inputs)
    probabilities = np.zeros((len(texts), num_labels), dtype=np.float64)
    probabilities[:, model.classes_.astype(int)] = known
    return probabilities


def baseline_parameter_count(model: Pipeline | DummyClassifier) -> int:
    """Numbers the classifier stores: coefficients and intercepts, or the class prior."""
    if isinstance(model, Pipeline):
        classifier = model[-1]
        parts = classifier.estimators_ if isinstance(classifier, OneVsRestClassifier) else [classifier]
        return int(sum(part.coef_.size + part.intercept_.size for part in parts if hasattr(part, "coef_")))
    return int(np.asarray(model.class_prior_).size)


def measure_baseline_latency(predict: Callable[[Sequence[str]], Any], texts: Sequence[str]) -> dict[str, float]:
    """Median milliseconds per example of ``predict`` at batch 1 and at batch 64 (test texts, after one warm-up)."""

    def batches(batch_size: int) -> list[Sequence[str]]:
        return [texts[start : start + batch_size] for start in range(0, len(texts), batch_size)]

    return median_latency_ms(predict, {key: batches(size) for key, size in LATENCY_BATCHES.items()}, len)


@dataclass
class LabelPrior:
    """The multi-label majority baseline: every text gets each label's training frequency as its probability."""

    frequencies: np.ndarray

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), labels)`` copies of the training frequencies."""
        return np.tile(self.frequencies, (len(texts), 1))


def fit_and_score_multilabel(config: RunConfig, dataset: SplitDataset, run: ActiveRun) -> RunMetrics:
    """Multi-label baselines: TF-IDF with one logistic regression per label (one-vs-rest), or the label prior.

    The decision threshold (global, or per label with ``per_label_threshold``) is
    tuned on validation as for trained runs; ``C`` is chosen by validation macro-F1
    over labels at its tuned thresholds.
    """
    label_ids = {label: index for index, label in enumerate(dataset.labels)}
    splits = ("train", "validation", "test")
    gold = {split: label_targets(getattr(dataset, split), label_ids).astype(np.int64) for split in splits}
    texts = {split: [example.text for example in getattr(dataset, split)] for split in splits}
    started = time.perf_counter()
    history: list[dict[str, float]] = []
    if config.encoder == "tfidf":
        params = config.head_kwargs
        vectorizer = TfidfVectorizer(
            analyzer=params["analyzer"], ngram_range=(int(params["ngram_min"]), int(params["ngram_max"])),
            sublinear_tf=bool(params["sublinear_tf"]), min_df=int(params["min_df"]), dtype=np.float32,
        )
        train_features = vectorizer.fit_transform(texts["train"])
        validation_features = vectorizer.transform(texts["validation"])
        best: tuple[float, Any, np.ndarray] | None = None
        grid = [float(value) for value in str(params["c_grid"]).split(",")]
        for c in grid:
            classifier = OneVsRestClassifier(LogisticRegression(C=c, max_iter=int(params["max_iter"])))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                warnings.filterwarnings("ignore", message="Label not .* is present in all training examples")
                classifier.fit(train_features, gold["train"])
            score, thresholds = _tuned(gold["validation"], classifier.predict_proba(validation_features), config)
            history.append({"C": c, "val_macro_f1": score})
            if best is None or score > best[0]:
                best = (score, classifier, thresholds)
        assert best is not None
        val_macro_f1, model, thresholds = best[0], make_pipeline(vectorizer, best[1]), best[2]
        fits = len(grid)
    else:
        model = LabelPrior(gold["train"].mean(axis=0))
        val_macro_f1, thresholds = _tuned(gold["validation"], model.predict_proba(texts["validation"]), config)
        fits = 1
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    probabilities = np.asarray(model.predict_proba(texts["test"]), dtype=np.float64)
    eval_seconds = time.perf_counter() - started
    predicted = (probabilities >= thresholds).astype(np.int64)
    scores = multilabel_scores(gold["test"], predicted)
    run.phases.add("fit", train_seconds)
    run.phases.add("test", eval_seconds)
    parameters = baseline_parameter_count(model) if isinstance(model, Pipeline) else int(model.frequencies.size)
    latency = measure_baseline_latency(model.predict_proba, texts["test"])
    return baseline_metrics(
        dataset,
        scores,
        accuracy=scores.exact_match,
        confusion=[],
        val_macro_f1=val_macro_f1,
        history=history,
        timings=_timings(len(texts["train"]) * fits, train_seconds, eval_seconds, latency),
        parameters=parameters,
        gold=gold["test"],
        predicted=predicted,
        probabilities=probabilities,
        task=dataset.task,
        thresholds=[round(float(value), 4) for value in thresholds],
        scores={"micro_f1": scores.micro_f1, "samples_f1": scores.samples_f1, "exact_match": scores.exact_match},
    )


def _tuned(gold: np.ndarray, probabilities: np.ndarray, config: RunConfig) -> tuple[float, np.ndarray]:
    """Validation macro-F1 over labels at the thresholds tuned on it, and those thresholds."""
    thresholds = tune_thresholds(gold, probabilities, config.per_label_threshold)
    return multilabel_scores(gold, probabilities >= thresholds).macro_f1, thresholds
