"""Leaderboard statistics: groups of seeds, bootstrap confidence intervals and paired comparisons.

Runs are grouped by (encoder, head, hyperparameters except the seed, dataset
fingerprint). Groups are ranked by mean test macro-F1, and only against groups on
the same fingerprint. Confidence intervals resample seeds and then test examples
from the stored predictions; comparisons are paired bootstraps on the shared test
examples. Macro-F1 of every resample comes from confusion counts obtained with one
matrix product, so 1000 resamples of a few thousand examples take well under a second.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from bench.config import RunConfig
from bench.data.folds import fold_of, fold_scheme
from bench.errors import ResultsError, UsageError
from bench.leaderboard.records import Predictions, RunRecord
from bench.tasks import task_of

DEFAULT_RESAMPLES = 1000
CONFIDENCE = 0.95
ALPHA = 0.05
EFFICIENCY_FIELDS = (
    "total_params",
    "trainable_params",
    "train_seconds",
    "train_samples_per_second",
    "latency_ms_batch1",
    "latency_ms_batch64",
    "peak_memory_mb",
)
# Config fields that are not hyperparameters of a group: the seed varies inside it,
# the data is covered by the fingerprint, encoder and head are columns of their own.
_NOT_HYPERPARAMETERS = frozenset({"seed", "data", "encoder", "head"})
_MAX_WEIGHT_CELLS = 4_000_000

Item = TypeVar("Item", RunRecord, "GroupStats")


@dataclass
class GroupStats:
    """One group of runs that differ only in their seed or cross-validation fold, with its statistics.

    ``ci_low``/``ci_high`` bound the mean test macro-F1 (bootstrap over seeds and
    test examples); ``p_vs_best`` is the paired-bootstrap p-value of the difference
    to the best group on the same fingerprint. Both are ``None`` without stored
    predictions, and for folds that rotate the test split (``test_rotates``: the folds
    share no test example). ``folds`` lists the group's folds (empty without
    cross-validation). ``flags`` joins the flags of the group's runs; the best group is the
    highest-ranked one without flags unless flagged groups are included.
    """

    key: str
    fingerprint: str
    dataset: str
    encoder: str
    head: str
    params: dict[str, Any]
    run_ids: list[str]
    seeds: list[int]
    macro_f1_mean: float
    macro_f1_std: float | None
    accuracy_mean: float | None
    accuracy_std: float | None
    efficiency: dict[str, float] = field(default_factory=dict)
    rank: int = 0
    ci_low: float | None = None
    ci_high: float | None = None
    p_vs_best: float | None = None
    indistinguishable_from_best: bool = False
    flags: list[str] = field(default_factory=list)
    best: bool = False
    folds: list[int] = field(default_factory=list)
    test_rotates: bool = False

    @property
    def n(self) -> int:
        """Number of runs (seeds × folds) in the group."""
        return len(self.run_ids)


@dataclass
class Comparison:
    """Paired comparison of A and B on their shared test examples (A − B)."""

    a_macro_f1: float
    b_macro_f1: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    n_examples: int
    a_runs: int
    b_runs: int
    resamples: int

    @property
    def significant(self) -> bool:
        """Whether the difference is significant at the 5 % level."""
        return self.p_value < ALPHA


def hyperparameters(record: RunRecord) -> dict[str, Any]:
    """The run's result-determining config without seed, data, encoder and head.

    Head parameters and encoder overrides are flattened to ``head.NAME`` and
    ``encoder.NAME`` entries. A reference row (TF-IDF, majority) has only its own
    settings, not the training fields it never used.
    """
    from bench.baselines.specs import applicable_params

    identity = RunConfig.from_json(json.dumps(record.config)).identity(resolve_defaults=False)  # stored resolved
    params: dict[str, Any] = {}
    for name, value in identity.items():
        if name in _NOT_HYPERPARAMETERS:
            continue
        if name in ("head_params", "encoder_config"):
            prefix = "head" if name == "head_params" else "encoder"
            params.update({f"{prefix}.{key}": item for key, item in value})
        else:
            params[name] = value
    return dict(sorted(applicable_params(record.encoder, params).items()))


def group_key(record: RunRecord) -> str:
    """``g-`` + 10 hex characters naming the run's group (same for every seed and every fold)."""
    payload = json.dumps(
        [fold_scheme(record.fingerprint), record.encoder, record.head, hyperparameters(record)],
        sort_keys=True,
        default=str,
    )
    return "g-" + hashlib.sha256(payload.encode()).hexdigest()[:10]


def efficiency(record: RunRecord) -> dict[str, float]:
    """Parameter counts, training time and speed, latency and memory of a finished run, where recorded."""
    metrics = record.metrics
    if metrics is None:
        return {}
    values: dict[str, Any] = {
        **metrics.timings,
        "total_params": metrics.total_params,
        "trainable_params": metrics.trainable_params,
    }
    return {
        name: int(values[name]) if name.endswith("params") else float(values[name])
        for name in EFFICIENCY_FIELDS
        if isinstance(values.get(name), (int, float)) and math.isfinite(values[name]) and values[name] > 0
    }


def group_runs(records: Iterable[RunRecord]) -> dict[str, list[RunRecord]]:
    """Finished runs with a test macro-F1 by :func:`group_key`, in order of first appearance."""
    groups: dict[str, list[RunRecord]] = {}
    for record in records:
        if record.status == "finished" and record.macro_f1 is not None:
            groups.setdefault(group_key(record), []).append(record)
    return groups


def sections(items: Iterable[Item]) -> dict[str, list[Item]]:
    """Runs or groups split by dataset fingerprint (ordered by dataset name), order kept inside.

    The folds of one cross-validation scheme share a section (:func:`~bench.data.folds.fold_scheme`).
    """
    split: dict[str, list[Item]] = {}
    for item in items:
        split.setdefault(fold_scheme(item.fingerprint), []).append(item)
    return dict(sorted(split.items(), key=lambda entry: (entry[1][0].dataset, entry[0])))


def aggregate(
    records: Iterable[RunRecord],
    predictions: Mapping[str, Predictions] | None = None,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    include_flagged: bool = False,
) -> list[GroupStats]:
    """Group finished runs, rank groups per fingerprint and attach bootstrap statistics.

    ``predictions`` maps run ids to stored test predictions; groups with all of
    theirs get a confidence interval and a p-value against the best group: the
    highest-ranked group without flags (any group with ``include_flagged``).
    Returns groups ordered by dataset, fingerprint and rank.
    """
    grouped = group_runs(records)
    classes: dict[str, int] = {}
    for runs in grouped.values():
        for run in runs:
            labels = len(run.metrics.labels) if run.metrics is not None else 0
            scheme = fold_scheme(run.fingerprint)
            classes[scheme] = max(classes.get(scheme, 0), labels)
    ranked: list[GroupStats] = []
    for fingerprint, section in sections(_summaries(grouped)).items():
        section.sort(key=lambda group: (-group.macro_f1_mean, -(group.accuracy_mean or 0.0), group.key))
        for rank, group in enumerate(section, start=1):
            group.rank = rank
        best = next((group for group in section if include_flagged or not group.flags), None)
        if best is not None:
            best.best = True
        if predictions and resamples > 0 and best is not None:
            _bootstrap_section(section, best, predictions, classes[fingerprint], resamples, seed, include_flagged)
        ranked.extend(section)
    return ranked


def best_run_id(records: Sequence[RunRecord], include_flagged: bool = False) -> str | None:
    """The finished run with the highest test macro-F1, skipping flagged runs unless ``include_flagged``."""
    candidates = [
        record
        for record in records
        if record.macro_f1 is not None and record.status == "finished" and (include_flagged or not record.flags)
    ]
    return max(candidates, key=lambda record: record.macro_f1 or 0.0).run_id if candidates else None


def varying_params(groups: Sequence[GroupStats]) -> dict[str, dict[str, Any]]:
    """For each group key (or run id), the hyperparameters whose values differ between ``groups``.

    A group lists only the settings it has (a baseline has no encoder lr, a linear head no width);
    a setting only some groups have counts as differing when its values differ among those groups
    or when it is ``None`` in one of them. ``groups`` may also be runs (:class:`RunRecord`).
    """
    params = {_item_key(group): _item_params(group) for group in groups}
    names = sorted({name for values in params.values() for name in values})
    varying = [
        name
        for name in names
        if len({json.dumps(values[name], sort_keys=True, default=str) for values in params.values() if name in values})
        > 1
    ]
    return {
        key: {name: values[name] for name in varying if values.get(name) is not None} for key, values in params.items()
    }


def distinguishing_settings(items: Sequence[GroupStats | RunRecord]) -> dict[str, dict[str, Any]]:
    """What sets each group or run apart, by key or run id: for trained runs the hyperparameters that vary
    among the trained ones, for a reference row (TF-IDF, majority) its own settings (``C`` grid, n-grams)."""
    from bench.baselines.specs import is_baseline

    trained = [item for item in items if not is_baseline(item.encoder)]
    settings = varying_params(trained)
    for item in items:
        if is_baseline(item.encoder):
            settings[_item_key(item)] = {
                name.removeprefix("head."): value for name, value in _item_params(item).items()
            }
    return {_item_key(item): settings[_item_key(item)] for item in items}


def _item_key(item: GroupStats | RunRecord) -> str:
    return item.key if isinstance(item, GroupStats) else item.run_id


def _item_params(item: GroupStats | RunRecord) -> dict[str, Any]:
    return item.params if isinstance(item, GroupStats) else hyperparameters(item)


def compare(
    a: Sequence[Predictions],
    b: Sequence[Predictions],
    *,
    num_classes: int | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Comparison:
    """Paired bootstrap of mean macro-F1 of runs ``a`` minus runs ``b`` on their shared test examples.

    Each resample draws seeds (runs) of each side with replacement and one set of
    test examples shared by both sides. The p-value is two-sided:
    ``2 * min(P(diff <= 0), P(diff >= 0))`` over the resamples.
    """
    if not a or not b:
        raise UsageError("compare needs at least one run with predictions on each side")
    if resamples < 1:
        raise UsageError(f"--resamples must be at least 1, got {resamples}")
    _, gold, predicted = align_predictions([*a, *b])
    classes = max(num_classes or 0, int(max(gold.max(), predicted.max())) + 1)
    rng = np.random.default_rng(seed)
    n_examples = gold.shape[0]
    point = replicate_scores(gold, predicted, np.ones((1, n_examples), np.float32), classes)[:, 0]
    scores = replicate_scores(gold, predicted, example_weights(n_examples, resamples, rng), classes)
    a_rows, b_rows = np.arange(len(a)), np.arange(len(a), len(a) + len(b))
    difference = resample_seeds(scores[a_rows], rng) - resample_seeds(scores[b_rows], rng)
    low, high = np.percentile(difference, [50 * (1 - CONFIDENCE), 50 * (1 + CONFIDENCE)])
    return Comparison(
        a_macro_f1=float(point[a_rows].mean()),
        b_macro_f1=float(point[b_rows].mean()),
        difference=float(point[a_rows].mean() - point[b_rows].mean()),
        ci_low=float(low),
        ci_high=float(high),
        p_value=two_sided_p(difference),
        n_examples=int(n_examples),
        a_runs=len(a),
        b_runs=len(b),
        resamples=resamples,
    )


@dataclass
class FoldTest:
    """Corrected resampled t-test (Nadeau & Bengio 2003) of A − B over the folds both sides were run on.

    ``t = mean(d) / sqrt((1/k + n_test/n_train) · var(d))`` with ``d`` the per-fold
    differences of test macro-F1 (each side's mean over its seeds in that fold),
    ``k`` folds, ``k − 1`` degrees of freedom and a two-sided p from Student's t.
    ``test_train_ratio`` is ``n_test/n_train`` averaged over the folds.
    """

    folds: int
    mean_difference: float
    t: float
    p_value: float
    test_train_ratio: float

    @property
    def significant(self) -> bool:
        """Whether the difference is significant at the 5 % level."""
        return self.p_value < ALPHA


def corrected_resampled_ttest(differences: Sequence[float], test_train_ratio: float) -> tuple[float, float]:
    """``(t, p)`` of the corrected resampled t-test for per-fold ``differences`` (see :class:`FoldTest`)."""
    from scipy.stats import t as student_t

    d = np.asarray(differences, dtype=float)
    k = d.size
    if k < 2:
        raise UsageError(f"the corrected resampled t-test needs at least 2 folds, got {k}")
    mean = float(d.mean())
    scale = math.sqrt((1 / k + test_train_ratio) * float(d.var(ddof=1)))
    if scale == 0:  # every fold differs by the same amount
        return (0.0, 1.0) if mean == 0 else (math.copysign(math.inf, mean), 0.0)
    t = mean / scale
    return t, float(2 * student_t.sf(abs(t), df=k - 1))


def fold_test(a: Sequence[RunRecord], b: Sequence[RunRecord]) -> FoldTest | None:
    """The corrected resampled t-test of runs ``a`` minus runs ``b``; ``None`` unless both were run on the same
    folds (every run a fold of one cross-validation scheme, both sides on the same two or more folds)."""
    a_folds, b_folds = _fold_scores(a), _fold_scores(b)
    if a_folds is None or b_folds is None or set(a_folds) != set(b_folds) or len(a_folds) < 2:
        return None
    fingerprints = sorted(a_folds)
    differences = [a_folds[name][0] - b_folds[name][0] for name in fingerprints]
    ratio = float(np.mean([a_folds[name][1] for name in fingerprints]))
    t, p_value = corrected_resampled_ttest(differences, ratio)
    return FoldTest(len(fingerprints), float(np.mean(differences)), t, p_value, ratio)


def _fold_scores(runs: Sequence[RunRecord]) -> dict[str, tuple[float, float]] | None:
    """Fold fingerprint → (mean test macro-F1 over the fold's runs, n_test/n_train); ``None`` if a run is no fold."""
    scores: dict[str, list[float]] = {}
    ratios: dict[str, float] = {}
    for run in runs:
        train, test = run.environment.get("train_examples"), run.environment.get("test_examples")
        if fold_of(run.fingerprint) is None or run.macro_f1 is None or not train or not test:
            return None
        scores.setdefault(run.fingerprint, []).append(run.macro_f1)
        ratios[run.fingerprint] = int(test) / int(train)
    return {name: (float(np.mean(values)), ratios[name]) for name, values in scores.items()}


def mean_macro_f1(runs: Sequence[RunRecord]) -> float:
    """Mean test macro-F1 of finished ``runs``."""
    return float(np.mean([run.macro_f1 for run in runs if run.macro_f1 is not None]))


def rotates_test(record: RunRecord) -> bool:
    """Whether the run is a fold of a scheme that rotates the test split (``--folds-test``)."""
    return bool(record.config.get("data", {}).get("folds_test"))


def align_predictions(runs: Sequence[Predictions]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Example ids shared by all ``runs``, their gold labels ``(N,)`` and each run's predictions ``(R, N)``.

    Multi-label runs give 0/1 rows: gold ``(N, L)`` and predictions ``(R, N, L)``.
    """
    first = list(runs[0].example_ids)
    if len(set(first)) != len(first):
        raise ResultsError("stored predictions repeat an example id; the test set is corrupt")
    if all(list(run.example_ids) == first for run in runs[1:]):
        shared = first
        columns = [np.arange(len(first))] * len(runs)
    else:
        common = set(first).intersection(*(run.example_ids for run in runs[1:]))
        shared = [example_id for example_id in first if example_id in common]
        if not shared:
            raise UsageError("the runs share no test examples: they were tested on different data")
        columns = []
        for run in runs:
            position = {example_id: index for index, example_id in enumerate(run.example_ids)}
            columns.append(np.array([position[example_id] for example_id in shared]))
    gold_rows = [np.asarray(run.gold, dtype=np.int64)[index] for run, index in zip(runs, columns, strict=True)]
    if len({task_of(rows).name for rows in gold_rows}) > 1:
        raise UsageError("multi-label and single-label runs cannot be compared: their scores mean different things")
    golds = np.stack(gold_rows)
    mismatch = np.nonzero((golds != golds[0]).reshape(len(runs), len(shared), -1).any(axis=(0, 2)))[0]
    if mismatch.size:
        raise ResultsError(f"runs disagree on the gold label of test example {shared[mismatch[0]]!r}")
    predicted = np.stack(
        [np.asarray(run.predicted, dtype=np.int64)[index] for run, index in zip(runs, columns, strict=True)]
    )
    return shared, golds[0], predicted


def example_weights(n_examples: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How often each test example is drawn in each bootstrap resample: ``(resamples, n_examples)`` float32."""
    weights = np.empty((resamples, n_examples), dtype=np.float32)
    block = max(1, _MAX_WEIGHT_CELLS // max(n_examples, 1))
    for start in range(0, resamples, block):
        rows = min(block, resamples - start)
        draws = rng.integers(0, n_examples, size=(rows, n_examples))
        draws += (np.arange(rows) * n_examples)[:, None]
        weights[start : start + rows] = np.bincount(draws.ravel(), minlength=rows * n_examples).reshape(rows, -1)
    return weights


def replicate_scores(gold: np.ndarray, predicted: np.ndarray, weights: np.ndarray, num_classes: int) -> np.ndarray:
    """Macro-F1 ``(R, B)`` of the runs' task (:meth:`bench.tasks.Task.replicate_macro_f1`, told by the gold targets)."""
    return task_of(gold).replicate_macro_f1(gold, predicted, weights, num_classes)


def resample_seeds(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mean over seeds drawn with replacement, per resample: ``(S, B)`` scores → ``(B,)``."""
    seeds, resamples = scores.shape
    picks = rng.integers(0, seeds, size=(resamples, seeds))
    return scores[picks, np.arange(resamples)[:, None]].mean(axis=1)


def two_sided_p(difference: np.ndarray) -> float:
    """Bootstrap p-value of "no difference": ``2 * min(P(d <= 0), P(d >= 0))``, at least ``2 / (B + 1)``."""
    below = int(np.count_nonzero(difference <= 0))
    above = int(np.count_nonzero(difference >= 0))
    return min(1.0, 2 * (min(below, above) + 1) / (difference.size + 1))


def _summaries(groups: Mapping[str, list[RunRecord]]) -> list[GroupStats]:
    summaries = []
    for key, runs in groups.items():
        first = runs[0]
        f1 = np.array([run.macro_f1 for run in runs], dtype=float)
        accuracy = np.array([run.accuracy for run in runs if run.accuracy is not None], dtype=float)
        summaries.append(
            GroupStats(
                key=key,
                fingerprint=fold_scheme(first.fingerprint),
                dataset=first.dataset,
                encoder=first.encoder,
                head=first.head,
                params=hyperparameters(first),
                run_ids=[run.run_id for run in runs],
                seeds=[run.seed for run in runs],
                folds=sorted({fold[0] for run in runs if (fold := fold_of(run.fingerprint)) is not None}),
                test_rotates=any(rotates_test(run) for run in runs),
                macro_f1_mean=float(f1.mean()),
                macro_f1_std=float(f1.std(ddof=1)) if f1.size > 1 else None,
                accuracy_mean=float(accuracy.mean()) if accuracy.size else None,
                accuracy_std=float(accuracy.std(ddof=1)) if accuracy.size > 1 else None,
                efficiency=_mean_efficiency([efficiency(run) for run in runs]),
                flags=sorted({flag for run in runs for flag in run.flags}),
            )
        )
    return summaries


def _mean_efficiency(values: list[dict[str, float]]) -> dict[str, float]:
    means = {}
    for name in EFFICIENCY_FIELDS:
        present = [row[name] for row in values if name in row]
        if present:
            mean = float(np.mean(present))
            means[name] = round(mean) if name.endswith("params") else mean
    return means


def _bootstrap_section(
    section: list[GroupStats],
    best: GroupStats,
    predictions: Mapping[str, Predictions],
    num_classes: int,
    resamples: int,
    seed: int,
    include_flagged: bool,
) -> None:
    """Confidence intervals and p-values against the best, for the groups of one fingerprint."""
    complete = [
        group for group in section if not group.test_rotates and all(run_id in predictions for run_id in group.run_ids)
    ]
    if not complete:
        return
    run_ids = [run_id for group in complete for run_id in group.run_ids]
    _, gold, predicted = align_predictions([predictions[run_id] for run_id in run_ids])
    classes = max(num_classes, int(max(gold.max(), predicted.max())) + 1)
    weights = example_weights(gold.shape[0], resamples, np.random.default_rng([seed, 0]))
    scores = replicate_scores(gold, predicted, weights, classes)
    row_of = {run_id: row for row, run_id in enumerate(run_ids)}
    distributions = {}
    for group in complete:
        rng = np.random.default_rng([seed, int(group.key.removeprefix("g-"), 16)])
        distribution = resample_seeds(scores[[row_of[run_id] for run_id in group.run_ids]], rng)
        group.ci_low, group.ci_high = (
            float(value) for value in np.percentile(distribution, [50 * (1 - CONFIDENCE), 50 * (1 + CONFIDENCE)])
        )
        distributions[group.key] = distribution
    if best.key not in distributions:
        return
    for group in complete:
        if group is best:
            continue
        group.p_vs_best = two_sided_p(distributions[group.key] - distributions[best.key])
        group.indistinguishable_from_best = group.p_vs_best >= ALPHA and (include_flagged or not group.flags)
