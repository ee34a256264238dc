"""Leaderboard statistics: group aggregation, bootstrap CIs, paired comparisons, per-fingerprint ranking."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.metrics import f1_score

from bench.errors import ResultsError, UsageError
from bench.leaderboard import replicates, stats
from bench.leaderboard.records import Predictions
from tests.leaderboard_helpers import make_config, make_metrics, make_record, noisy_predictions

NUM_CLASSES = 3


def _gold(size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, NUM_CLASSES, size)


def _runs(gold: np.ndarray, accuracy: float, seeds: range, fingerprint: str = "fp-a", **config_changes):
    """Finished records (with metrics and predictions) of one config over ``seeds``."""
    records, predictions = [], {}
    for seed in seeds:
        rng = np.random.default_rng([seed, int(accuracy * 1000), len(config_changes)])
        predicted = noisy_predictions(gold, accuracy, rng, NUM_CLASSES)
        metrics = make_metrics(gold, predicted, example_ids=[f"{fingerprint}-{i}" for i in range(gold.size)])
        record = make_record(
            make_config(seed=seed, **config_changes),
            metrics.macro_f1,
            metrics.accuracy,
            fingerprint=fingerprint,
            metrics=metrics,
        )
        records.append(record)
        predictions[record.run_id] = metrics.predictions
    return records, predictions


def test_groups_aggregate_seeds_with_hand_computed_numbers() -> None:
    group_a = [
        make_record(make_config(seed=seed), f1, accuracy)
        for seed, f1, accuracy in ((1, 0.70, 0.80), (2, 0.72, 0.90), (3, 0.74, 1.00))
    ]
    group_b = [make_record(make_config(seed=1, lr=1e-4), 0.80, 0.85)]
    unfinished = make_record(make_config(seed=4), 0.99, 0.99)
    unfinished.status = "failed"

    groups = stats.aggregate([*group_a, *group_b, unfinished])
    assert [group.rank for group in groups] == [1, 2]
    best, second = groups
    assert (best.n, best.macro_f1_mean, best.macro_f1_std, best.accuracy_mean) == (1, 0.80, None, 0.85)
    assert best.params["lr"] == 1e-4 and "seed" not in best.params
    assert second.n == 3 and second.seeds == [1, 2, 3]
    assert second.macro_f1_mean == pytest.approx(0.72)
    assert second.macro_f1_std == pytest.approx(0.02)  # sample std of 0.70, 0.72, 0.74
    assert second.accuracy_mean == pytest.approx(0.90)
    assert second.accuracy_std == pytest.approx(0.10)
    assert second.ci_low is None and second.p_vs_best is None  # no predictions given
    assert stats.group_key(group_a[0]) == stats.group_key(group_a[2]) != stats.group_key(group_b[0])
    assert stats.varying_params(groups) == {best.key: {"lr": 1e-4}, second.key: {"lr": 3e-5}}


def test_replicate_macro_f1_equals_scikit_learn_with_sample_weights() -> None:
    rng = np.random.default_rng(3)
    gold = rng.integers(0, 4, 300)
    predicted = np.stack([noisy_predictions(gold, accuracy, rng, 4) for accuracy in (0.5, 0.9)])
    predicted[0][predicted[0] == 3] = 0  # class 3 is never predicted by the first run
    weights = stats.example_weights(gold.size, 20, rng)
    scores = replicates.replicate_macro_f1(gold, predicted, weights, 5)  # class 4 exists in neither: F1 0
    for run in range(2):
        for resample in (0, 7, 19):
            expected = f1_score(
                gold,
                predicted[run],
                labels=list(range(5)),
                average="macro",
                zero_division=0,
                sample_weight=weights[resample],
            )
            assert scores[run, resample] == pytest.approx(expected, abs=1e-12)
    assert weights.sum(axis=1).tolist() == [300.0] * 20


def test_bootstrap_ci_contains_the_estimate_and_narrows_with_more_examples() -> None:
    widths = []
    for size in (200, 4000):
        records, predictions = _runs(_gold(size), 0.75, range(3))
        (group,) = stats.aggregate(records, predictions, resamples=500, seed=1)
        assert group.ci_low < group.macro_f1_mean < group.ci_high
        widths.append(group.ci_high - group.ci_low)
    assert widths[1] < widths[0] / 2
    again = stats.aggregate(records, predictions, resamples=500, seed=1)[0]
    assert (again.ci_low, again.ci_high) == (group.ci_low, group.ci_high)  # seeded: reproducible


def test_compare_finds_a_clearly_better_classifier_and_not_identical_ones() -> None:
    gold = _gold(1000)
    better, better_predictions = _runs(gold, 0.85, range(3))
    worse, worse_predictions = _runs(gold, 0.60, range(3), lr=1e-4)
    a = [better_predictions[record.run_id] for record in better]
    b = [worse_predictions[record.run_id] for record in worse]

    result = stats.compare(a, b, num_classes=NUM_CLASSES, resamples=1000)
    assert result.significant and result.p_value < 0.01
    assert result.difference > 0.15 and 0 < result.ci_low < result.difference < result.ci_high
    assert result.n_examples == 1000 and (result.a_runs, result.b_runs) == (3, 3)
    assert stats.compare(b, a, num_classes=NUM_CLASSES).difference == pytest.approx(-result.difference)

    same = stats.compare(a[:1], a[:1], num_classes=NUM_CLASSES)
    assert (same.difference, same.p_value, same.significant) == (0.0, 1.0, False)
    near = stats.compare(a[:1], a[1:2], num_classes=NUM_CLASSES)  # same accuracy, different noise
    assert near.p_value > 0.05 and near.ci_low < 0 < near.ci_high


def test_groups_tied_with_the_best_are_marked() -> None:
    gold = _gold(800)
    best, predictions = _runs(gold, 0.80, range(3))
    tied, tied_predictions = _runs(gold, 0.795, range(3), lr=1e-4)
    worse, worse_predictions = _runs(gold, 0.55, range(3), lr=2e-4)
    groups = stats.aggregate(
        [*best, *tied, *worse], {**predictions, **tied_predictions, **worse_predictions}, resamples=500
    )
    first, second, third = groups
    assert {first.key, second.key} == {stats.group_key(best[0]), stats.group_key(tied[0])}
    assert first.rank == 1 and first.p_vs_best is None and not first.indistinguishable_from_best
    assert second.indistinguishable_from_best and second.p_vs_best >= 0.05
    assert third.key == stats.group_key(worse[0]) and third.rank == 3
    assert not third.indistinguishable_from_best and third.p_vs_best < 0.05


def test_ranking_never_mixes_fingerprints() -> None:
    on_a, predictions_a = _runs(_gold(300, seed=1), 0.60, range(2), fingerprint="fp-a")
    on_b, predictions_b = _runs(_gold(500, seed=2), 0.90, range(2), fingerprint="fp-b", lr=1e-4)
    also_on_b, predictions_c = _runs(_gold(500, seed=2), 0.70, range(2), fingerprint="fp-b")
    # Same config on a different fingerprint is a different group.
    assert stats.group_key(on_a[0]) != stats.group_key(also_on_b[0])
    groups = stats.aggregate(
        [*on_a, *on_b, *also_on_b], {**predictions_a, **predictions_b, **predictions_c}, resamples=200
    )
    sections = stats.sections(groups)
    assert list(sections) == ["fp-a", "fp-b"]
    assert [group.rank for group in sections["fp-a"]] == [1]
    assert [group.rank for group in sections["fp-b"]] == [1, 2]
    assert sections["fp-a"][0].p_vs_best is None  # best of its own fingerprint, never compared with fp-b
    assert sections["fp-b"][1].p_vs_best < 0.05


def test_alignment_uses_example_ids_and_rejects_different_gold() -> None:
    first = Predictions(["a", "b", "c"], [0, 1, 2], [0, 1, 1], [])
    shuffled = Predictions(["c", "a", "b", "d"], [2, 0, 1, 0], [2, 0, 0, 1], [])
    ids, gold, predicted = stats.align_predictions([first, shuffled])
    assert ids == ["a", "b", "c"] and gold.tolist() == [0, 1, 2]
    assert predicted.tolist() == [[0, 1, 1], [0, 0, 2]]
    with pytest.raises(ResultsError, match="gold label of test example 'b'"):
        stats.align_predictions([first, Predictions(["a", "b", "c"], [0, 2, 2], [0, 1, 1], [])])
    with pytest.raises(UsageError, match="share no test examples"):
        stats.compare([first], [Predictions(["x"], [0], [0], [])])


def test_thousand_resamples_give_one_score_per_resample() -> None:
    gold = _gold(4000)
    predicted = np.stack([noisy_predictions(gold, 0.7, np.random.default_rng(9), NUM_CLASSES)])
    weights = stats.example_weights(gold.size, 1000, np.random.default_rng(0))
    scores = replicates.replicate_macro_f1(gold, predicted, weights, NUM_CLASSES)
    assert scores.shape == (1, 1000)


def test_thousand_resamples_of_4000_examples_take_well_under_a_second() -> None:
    """Speed only; the scores themselves are checked by the tests above."""
    gold = _gold(4000)
    predicted = np.stack([noisy_predictions(gold, 0.7, np.random.default_rng(9), NUM_CLASSES)])
    timings = []
    for attempt in range(3):
        started = time.perf_counter()
        weights = stats.example_weights(gold.size, 1000, np.random.default_rng(attempt))
        replicates.replicate_macro_f1(gold, predicted, weights, NUM_CLASSES)
        timings.append(time.perf_counter() - started)
    assert min(timings) < 0.5
