"""Multi-label: scores, validation-tuned thresholds, and the whole bench on a multi-label source."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.data import DataOptions, load_dataset
from bench.evaluation.scores import THRESHOLDS, multilabel_scores, tune_thresholds
from bench.inference.model_files import ModelCard
from bench.leaderboard.store import Leaderboard
from tests.conftest import run_cli, tiny_config_args
from tests.fixtures.data.builders import CUES, write_cued_multilabel


def brute_f1(gold: np.ndarray, predicted: np.ndarray) -> float:
    true_positives = (gold & predicted).sum()
    denominator = gold.sum() + predicted.sum()
    return 2 * true_positives / denominator if denominator else 0.0


def test_multilabel_scores_by_hand() -> None:
    gold = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]], bool)
    predicted = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]], bool)
    scores = multilabel_scores(gold, predicted)
    per_label = [brute_f1(gold[:, k], predicted[:, k]) for k in range(3)]
    assert scores.f1 == pytest.approx(per_label) == [1.0, 2 / 3, 0.0]
    assert scores.macro_f1 == pytest.approx(np.mean(per_label))
    assert scores.micro_f1 == pytest.approx(brute_f1(gold, predicted))  # 2*3 / (5 + 3)
    assert scores.exact_match == pytest.approx(0.5)  # rows 2 and 4
    # Per example F1: 2/3, 1, 2/3, and 1 for "no label, none predicted".
    assert scores.samples_f1 == pytest.approx((2 / 3 + 1 + 2 / 3 + 1) / 4)
    assert scores.support == [2, 2, 1]
    assert set(scores.per_class(["a", "b", "c"])) == {"a", "b", "c"}


def brute_best_global(gold: np.ndarray, probabilities: np.ndarray) -> float:
    def macro(threshold: float) -> float:
        predicted = probabilities >= threshold
        return float(np.mean([brute_f1(gold[:, k], predicted[:, k]) for k in range(gold.shape[1])]))

    return max(THRESHOLDS, key=lambda threshold: (round(macro(threshold), 12), -abs(threshold - 0.5)))


@pytest.mark.parametrize("seed", range(5))
def test_global_threshold_maximises_validation_macro_f1(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gold = rng.random((60, 5)) < 0.25
    probabilities = np.clip(gold * rng.uniform(0.1, 0.6) + rng.random((60, 5)) * 0.6, 0, 1)
    thresholds = tune_thresholds(gold, probabilities)
    assert len(set(thresholds.tolist())) == 1
    assert thresholds[0] == pytest.approx(brute_best_global(gold, probabilities))


def test_per_label_thresholds_fit_each_label() -> None:
    # Label 0 is separable at 0.2, label 1 at 0.8: one global threshold cannot fit both.
    gold = np.array([[1, 0], [0, 1], [1, 1], [0, 0]] * 5, bool)
    probabilities = np.where(gold, [0.25, 0.85], [0.1, 0.7])
    per_label = tune_thresholds(gold, probabilities, per_label=True)
    assert per_label[0] <= 0.25 and per_label[0] > 0.1
    assert 0.7 < per_label[1] <= 0.85
    predicted = probabilities >= per_label
    assert multilabel_scores(gold, predicted).macro_f1 == 1.0
    assert multilabel_scores(gold, probabilities >= tune_thresholds(gold, probabilities)).macro_f1 < 1.0


def test_ties_prefer_the_threshold_nearest_one_half() -> None:
    gold = np.array([[1], [0]], bool)
    probabilities = np.array([[0.99], [0.01]])
    assert tune_thresholds(gold, probabilities)[0] == 0.5
    assert tune_thresholds(gold, probabilities, per_label=True)[0] == 0.5


# ------------------------------------------------------------------------------ end to end on a multi-label source

HEADS = ("linear", "mlp", "layernorm-mlp", "cnn", "bilstm")
TINY = [
    "--encoder",
    "scratch",
    *tiny_config_args(),
    "--max-len",
    "16",
    "--batch-size",
    "16",
    "--lr",
    "0.003",
    "--device",
    "cpu",
    "--epochs",
    "2",
]


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, out, err = run_cli(list(args), capsys)
    assert code == 0, err
    return out


@pytest.mark.slow
@pytest.mark.usefixtures("wide_console")
def test_multilabel_end_to_end(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Baselines, a run with every head, leaderboard, compare, report, predict and export on a multi-label file."""
    data = str(write_cued_multilabel(tmp_path / "cued.csv"))
    results = tmp_path / "results"
    dataset = load_dataset(DataOptions(source=data))
    assert dataset.multilabel and dataset.labels == tuple(sorted(CUES))

    _cli(capsys, "baseline", "--data", data, "--results", str(results), "--c-grid", "1,10")
    with Leaderboard.for_results_dir(results) as board:
        rows = {record.encoder: record for record in board.runs("finished")}
    assert rows["tfidf"].metrics.task == "multilabel"
    # The cue words make the labels learnable: one-vs-rest TF-IDF finds them, the label prior cannot.
    assert rows["tfidf"].macro_f1 > 0.9 and rows["majority"].macro_f1 < 0.7
    assert set(rows["tfidf"].metrics.scores) == {"micro_f1", "samples_f1", "exact_match"}
    assert rows["tfidf"].accuracy == rows["tfidf"].metrics.scores["exact_match"]

    for head in HEADS:
        _cli(capsys, "run", *TINY, "--head", head, "--data", data, "--results", str(results))
    with Leaderboard.for_results_dir(results) as board:
        runs = {record.head: record for record in board.runs("finished") if record.encoder == "scratch"}
        predictions = board.predictions(runs["linear"].run_id)
    assert set(runs) == set(HEADS)
    for record in runs.values():
        metrics = record.metrics
        assert metrics.task == "multilabel" and metrics.confusion == []
        assert len(metrics.thresholds) == len(dataset.labels) and len(set(metrics.thresholds)) == 1
        assert set(metrics.per_class) == set(dataset.labels)
    # The stored scores are the scores of the stored 0/1 predictions.
    gold, predicted = np.asarray(predictions.gold, bool), np.asarray(predictions.predicted, bool)
    assert gold.shape == (len(dataset.test), len(dataset.labels))
    assert multilabel_scores(gold, predicted).macro_f1 == pytest.approx(runs["linear"].macro_f1)

    out = _cli(capsys, "leaderboard", "--results", str(results), "--view", "groups", "--resamples", "100")
    assert "tfidf" in out and "bilstm" in out
    out = _cli(
        capsys,
        "compare",
        rows["tfidf"].run_id,
        rows["majority"].run_id,
        "--results",
        str(results),
        "--resamples",
        "200",
    )
    assert "A is significantly better" in out

    page = tmp_path / "report.html"
    _cli(capsys, "report", "--results", str(results), "--out", str(page), "--resamples", "100")
    html = page.read_text(encoding="utf-8")
    assert "cued.csv" in html

    linear = runs["linear"].run_id
    lines = _cli(capsys, "predict", "--results", str(results), "--run", linear, "--json", "0번째 글 눈물 고함 이야기")
    record = json.loads(lines.splitlines()[0])
    assert set(record["probabilities"]) == set(dataset.labels)
    assert record["label"] == ",".join(record["labels"])
    thresholds = dict(zip(dataset.labels, runs["linear"].metrics.thresholds, strict=True))
    assert record["labels"] == {label: p for label, p in record["probabilities"].items() if p >= thresholds[label]}

    target = tmp_path / "exported"
    _cli(capsys, "export-model", "--results", str(results), "--run", linear, str(target))
    card = ModelCard.read(target)
    assert card.task == "multilabel" and card.thresholds == runs["linear"].metrics.thresholds
    exported = json.loads(
        _cli(capsys, "predict", "--model", str(target), "--json", "0번째 글 눈물 고함 이야기").splitlines()[0]
    )
    assert exported["labels"] == record["labels"]


def test_per_label_thresholds_and_class_weights_in_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(write_cued_multilabel(tmp_path / "cued.csv", rows=120))
    results = tmp_path / "results"
    _cli(
        capsys,
        "run",
        *TINY,
        "--head",
        "linear",
        "--data",
        data,
        "--results",
        str(results),
        "--per-label-threshold",
        "--class-weighted",
        "--epochs",
        "1",
    )
    with Leaderboard.for_results_dir(results) as board:
        [record] = board.runs("finished")
    assert record.config["per_label_threshold"] and record.config["class_weighted"]
    assert len(record.metrics.thresholds) == 5


def test_grid_and_tune_on_a_multilabel_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(write_cued_multilabel(tmp_path / "cued.csv", rows=120))
    results = tmp_path / "results"
    tiny = [arg for arg in TINY if arg not in ("--encoder", "scratch")]
    _cli(
        capsys,
        "grid",
        "--encoders",
        "scratch",
        "--heads",
        "linear,cnn",
        *tiny,
        "--epochs",
        "1",
        "--data",
        data,
        "--results",
        str(results),
        "--no-progress",
    )
    _cli(
        capsys,
        "tune",
        "--encoder",
        "scratch",
        "--head",
        "mlp",
        *tiny,
        "--epochs",
        "1",
        "--data",
        data,
        "--results",
        str(results),
        "--trials",
        "1",
        "--no-progress",
    )
    with Leaderboard.for_results_dir(results) as board:
        finished = board.runs("finished")
    assert len(finished) == 3
    assert all(record.metrics.task == "multilabel" and record.metrics.thresholds for record in finished)
