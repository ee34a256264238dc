"""``bench baseline``: TF-IDF + logistic regression and majority-class rows that rank and compare like runs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import bench.cli  # noqa: F401  (registers the commands)
from bench.baselines import BASELINE_ENCODERS, baseline_config, chosen_c
from bench.cli.app import main
from bench.data.types import DataOptions
from bench.errors import UsageError
from bench.leaderboard.records import RunRecord
from bench.leaderboard.stats import EFFICIENCY_FIELDS, efficiency
from bench.leaderboard.store import Leaderboard
from bench.preparation.datasets import prepare_dataset
from encoders import check_encoder_name
from tests.conftest import run_cli
from tests.tiny_runs import TRAIN_LIMIT, tiny_run_config

C_GRID = "1,10"


pytestmark = pytest.mark.usefixtures("wide_console")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Path, dict[str, RunRecord]]:
    """Both baselines recorded through the CLI on the sample data, with the tiny runs' train limit."""
    results = tmp_path_factory.mktemp("baselines") / "results"
    main(["baseline", "--results", str(results), "--train-limit", str(TRAIN_LIMIT), "--c-grid", C_GRID])
    with Leaderboard.for_results_dir(results) as board:
        rows = {record.encoder: board.get_run(record.run_id, with_predictions=True) for record in board.runs()}
    return results, rows


def test_both_rows_are_recorded_with_full_metrics(recorded) -> None:
    _, rows = recorded
    assert set(rows) == {"tfidf", "majority"}
    assert (rows["tfidf"].head, rows["majority"].head) == ("logreg", "constant")
    dataset = prepare_dataset(tiny_run_config(Path("unused")))
    for record in rows.values():
        metrics = record.metrics
        assert record.status == "finished" and record.fingerprint == dataset.fingerprint
        assert metrics.labels == list(dataset.labels) and set(metrics.per_class) == set(dataset.labels)
        assert np.asarray(metrics.confusion).sum() == len(dataset.test)
        assert metrics.predictions.example_ids == [example.uid for example in dataset.test]
        probabilities = np.asarray(metrics.predictions.probabilities)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
        assert (probabilities.argmax(axis=1) == metrics.predictions.predicted).all()
        assert set(efficiency(record)) == set(EFFICIENCY_FIELDS)
        assert record.config["train_limit"] == TRAIN_LIMIT


def test_tfidf_chooses_c_on_validation_and_counts_coefficients(recorded) -> None:
    _, rows = recorded
    metrics = rows["tfidf"].metrics
    assert [entry["C"] for entry in metrics.history] == [1.0, 10.0]
    assert metrics.val_macro_f1 == max(entry["val_macro_f1"] for entry in metrics.history)
    assert chosen_c(metrics) in (1.0, 10.0)
    classes = len(metrics.labels)
    assert metrics.total_params == metrics.trainable_params
    assert metrics.total_params % classes == 0 and metrics.total_params > classes * 100  # classes × (features + 1)
    assert rows["tfidf"].macro_f1 > rows["majority"].macro_f1 + 0.2  # character n-grams learn the sample data


def test_majority_predicts_the_most_frequent_training_label(recorded) -> None:
    _, rows = recorded
    dataset = prepare_dataset(tiny_run_config(Path("unused")))
    counts = Counter(example.label for example in dataset.train)
    top = max(dataset.labels, key=lambda label: (counts[label], -dataset.labels.index(label)))
    metrics = rows["majority"].metrics
    assert set(metrics.predictions.predicted) == {dataset.labels.index(top)}
    assert metrics.total_params == len(dataset.labels)
    prior = np.array([counts[label] for label in dataset.labels]) / len(dataset.train)
    np.testing.assert_allclose(metrics.predictions.probabilities[0], prior, atol=1e-6)


def test_rows_rank_and_compare_like_runs(recorded, capsys) -> None:
    results, rows = recorded
    code, out, _ = run_cli(["leaderboard", "--results", str(results), "--view", "groups", "--resamples", "200"], capsys)
    assert code == 0 and "tfidf" in out and "majority" in out
    code, out, _ = run_cli(
        ["compare", rows["tfidf"].run_id, rows["majority"].run_id, "--results", str(results), "--resamples", "200"],
        capsys,
    )
    assert code == 0 and "A is significantly better" in out


def test_recorded_rows_are_reused_unless_rerun(recorded, capsys) -> None:
    results, rows = recorded
    args = [
        "baseline",
        "--results",
        str(results),
        "--train-limit",
        str(TRAIN_LIMIT),
        "--c-grid",
        C_GRID,
        "--kind",
        "majority",
    ]
    assert run_cli(args, capsys)[0] == 0
    with Leaderboard.for_results_dir(results) as board:
        assert board.get_run(rows["majority"].run_id).attempts == 1
        assert run_cli([*args, "--rerun"], capsys)[0] == 0
        assert board.get_run(rows["majority"].run_id).attempts == 2
        assert len(board.runs()) == 2


def test_baseline_names_are_leaderboard_rows_not_trainable_encoders(recorded, capsys) -> None:
    results, rows = recorded
    for name in BASELINE_ENCODERS:
        with pytest.raises(UsageError):
            check_encoder_name(name)
    config = baseline_config("tfidf", DataOptions(), c_grid=[10, 1, 1])
    assert config.head_kwargs["c_grid"] == "1,10"
    code, _, err = run_cli(["predict", "--results", str(results), "--run", rows["tfidf"].run_id, "문장"], capsys)
    assert code == 2 and "baselines keep no model" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--c-grid", "0,1"], "--c-grid needs positive numbers"),
        (["--c-grid", "a,b"], "--c-grid expects comma-separated numbers"),
        (["--kind", "svm"], "unknown baseline 'svm'"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, capsys, args, message) -> None:
    code, out, err = run_cli(["baseline", "--results", str(tmp_path / "results"), *args], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_sigterm_during_a_baseline_is_recorded_as_sigterm(tmp_path, monkeypatch) -> None:
    """The baseline shares the runs' lifecycle: SIGTERM is recorded as SIGTERM, not as Ctrl-C."""
    import os
    import signal

    from bench.baselines import fitting
    from bench.errors import Terminated

    def terminated_fit(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not stop the fit")

    monkeypatch.setattr(fitting, "fit_tfidf", terminated_fit)
    config = baseline_config("tfidf", DataOptions(), train_limit=TRAIN_LIMIT, results_dir=str(tmp_path / "results"))
    with Leaderboard.for_results_dir(tmp_path / "results") as board:
        with pytest.raises(Terminated):
            fitting.run_baseline(config, board)
        (record,) = board.runs()
    assert (record.status, record.error) == ("interrupted", "terminated (SIGTERM)")
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
