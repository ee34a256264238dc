"""`bench tune`: search spaces, overrides, explicit options, pruning, resuming, seed confirmation."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from bench.config import RunConfig
from bench.errors import UsageError
from bench.leaderboard.store import Leaderboard
from bench.preparation.datasets import prepare_dataset
from bench.tuning.spaces import Param, SearchSpace, encoder_space, load_space_file
from bench.tuning.storage import default_storage_url, open_storage
from bench.tuning.study import TuneObjective, counted_trials, run_trials, tune_study_name
from tests.conftest import bench, tiny_config_args, tiny_config_pairs

TINY_RUN = [*tiny_config_args(), "--train-limit", "60", "--max-len", "32", "--epochs", "1", "--no-progress"]


def sample(space: SearchSpace, seed: int = 0) -> dict:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return space.sample(study.ask())


# ------------------------------------------------------------------------------------------- spaces


def test_each_encoder_family_and_head_contributes_its_space():
    updates = sample(SearchSpace.build("kobert", "bilstm", {}, {}))
    assert set(updates) == {
        "lr",
        "head_lr",
        "weight_decay",
        "warmup_ratio",
        "batch_size",
        "epochs",
        "max_len",
        "head_params",
    }
    assert set(updates["head_params"]) == {"dropout", "lstm_hidden", "lstm_layers", "pooling"}
    assert 1e-5 <= updates["lr"] <= 1e-4
    assert encoder_space("scratch")["lr"] != encoder_space("kobert")["lr"]
    assert encoder_space("hf:klue/roberta-base") == encoder_space("kobert")
    RunConfig(encoder="kobert", head="bilstm").with_updates(**updates)


def test_explicit_options_and_space_files_fix_or_replace_parameters(tmp_path: Path):
    space_file = tmp_path / "space.yaml"
    space_file.write_text(
        "lr: {low: 2e-5, high: 3.0e-5, log: true}\nbatch_size: [8]\nepochs: {low: 1, high: 2}\n"
        "warmup_ratio: 0.05\nhead_lr: null\nmlp.hidden_dim: [64]\nmlp.dropout: 0.3\n"
    )
    overrides = load_space_file(space_file)
    assert overrides["epochs"] == Param.integer(1, 2) and overrides["head_lr"] is None
    space = SearchSpace.build("scratch", "mlp", overrides, {"epochs": 1, "mlp.dropout": 0.25})
    for seed in range(5):
        updates = sample(space, seed)
        assert 2e-5 <= updates["lr"] <= 3e-5
        assert updates["batch_size"] == 8 and updates["epochs"] == 1 and updates["warmup_ratio"] == 0.05
        assert "head_lr" not in updates
        assert updates["head_params"] == {"hidden_dim": 64, "dropout": 0.25}
    described = {name: (value, origin) for name, value, origin in space.describe()}
    assert described["epochs"] == ("1", "fixed (command line)")
    assert described["warmup_ratio"] == ("0.05", "fixed (--space)")
    assert described["head.hidden_dim"] == ("{64}", "--space")  # the file's earlier spelling, mlp.hidden_dim
    assert described["max_len"][1] == "encoder scratch"


@pytest.mark.parametrize(
    ("text", "suffix", "needle"),
    [
        ("lr: {low: 1, high: 0}", ".yaml", "needs low <= high"),
        ("lr: {low: 0, high: 1, log: true}", ".yaml", "low > 0 with log"),
        ("lr: {high: 1}", ".yaml", "a range needs low and high"),
        ("lr: {low: small, high: 1}", ".yaml", "must be numbers, got 'small'"),
        ("lr: []", ".yaml", "empty list"),
        ("- lr", ".yaml", "expected a mapping"),
        ("lr: [1, 2", ".yaml", "is not valid YAML"),
        ('{"lr": ', ".json", "is not valid JSON"),
    ],
)
def test_bad_space_files_are_one_line_errors(tmp_path: Path, text: str, suffix: str, needle: str):
    path = tmp_path / f"space{suffix}"
    path.write_text(text)
    with pytest.raises(UsageError, match=needle) as error:
        load_space_file(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_unknown_space_parameters_are_named():
    with pytest.raises(UsageError, match="unknown parameter 'bilstm.dropout'.*head.dropout"):
        SearchSpace.build("scratch", "linear", {"bilstm.dropout": Param.real(0, 0.1)}, {})


def test_dry_run_shows_options_given_on_the_command_line_as_fixed(capsys, results_dir: Path):
    code, out, err = bench(
        capsys,
        "tune",
        "--head",
        "mlp",
        "--epochs",
        "1",
        "--dropout",
        "0.2",
        "--head-param",
        "hidden_dim=128",
        "--results",
        str(results_dir),
        "--dry-run",
    )
    assert code == 0, err
    for line in ("epochs", "head.dropout", "head.hidden_dim"):
        row = next(row for row in out.splitlines() if row.split()[:1] == [line])
        assert "fixed (command line)" in row, row
    lr_row = next(row for row in out.splitlines() if row.split()[:1] == ["lr"])
    assert "encoder scratch" in lr_row
    assert "tune-scratch-mlp-" in out
    assert not (results_dir / "optuna.db").exists()


# --------------------------------------------------------------------------------------- studies


def test_a_study_resumes_from_3_to_5_trials_and_confirms_the_best_over_seeds(capsys, results_dir: Path):
    args = [
        "tune",
        "--encoder",
        "scratch",
        "--head",
        "linear",
        *TINY_RUN,
        "--results",
        str(results_dir),
        "--pruner",
        "none",
    ]
    code, out, err = bench(capsys, *args, "--trials", "3")
    assert code == 0, err + out
    assert "3 complete" in out
    # One-epoch runs on 60 examples collapse to one class; confirming one of them needs --include-flagged.
    code, out, err = bench(capsys, *args, "--trials", "5", "--confirm-seeds", "1,2")
    assert code == 2 and "every completed trial" in err and "--include-flagged" in err
    code, out, err = bench(capsys, *args, "--trials", "5", "--confirm-seeds", "1,2", "--include-flagged")
    assert code == 0, err + out
    assert "5 complete" in out and "mean ± sd" in out

    dataset = prepare_dataset(RunConfig(train_limit=60))
    name = tune_study_name("scratch", "linear", dataset.fingerprint)
    study = optuna.load_study(study_name=name, storage=open_storage(default_storage_url(results_dir)))
    assert counted_trials(study) == 5
    for trial in study.trials:
        assert set(trial.params) == {"lr", "head_lr", "weight_decay", "warmup_ratio", "batch_size", "linear.dropout"}
    runs = Leaderboard.for_results_dir(results_dir).runs(study=name)
    tuned = [run for run in runs if run.seed == 1]
    assert sorted(run.trial for run in tuned if run.trial is not None) == [0, 1, 2, 3, 4]
    assert len({run.config_hash for run in tuned}) == 5, "a resumed study replayed a configuration"
    assert all(run.config["epochs"] == 1 and run.config["max_len"] == 32 for run in runs)
    confirmation = [run for run in runs if run.seed == 2]
    assert len(confirmation) == 1 and confirmation[0].trial == study.best_trial.number
    assert confirmation[0].status == "finished"

    code, out, err = bench(capsys, *args, "--trials", "5")
    assert code == 0 and "5/5 trials done" in out and "trial 5" not in out


def test_pruned_trials_are_leaderboard_rows_marked_pruned(results_dir: Path):
    base = RunConfig(
        encoder_config=tiny_config_pairs(), train_limit=60, max_len=32, epochs=2, results_dir=str(results_dir)
    )
    dataset = prepare_dataset(base)
    board = Leaderboard.for_results_dir(results_dir)
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2.0))
    space = SearchSpace.build("scratch", "linear", {}, {"epochs": 2, "max_len": 32})
    objective = TuneObjective(base, space, dataset, board, "prune-test")
    run_trials(study, objective, 1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert list(trial.intermediate_values) == [0]
    (run,) = board.runs()
    assert (run.status, run.study, run.trial, run.run_id) == ("pruned", "prune-test", 0, trial.user_attrs["run_id"])
    assert json.loads(trial.user_attrs["config"])["epochs"] == 2
