"""k-fold cross-validation: fold splits, fold identity, grouping, the corrected resampled t-test, and the CLI."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import optuna
import pytest

from bench.config import RunConfig
from bench.data import DataOptions, SplitDataset, load_dataset
from bench.data.folds import fold_of, fold_scheme
from bench.data.split import SPLITS
from bench.errors import DataError, UsageError
from bench.leaderboard import stats
from bench.leaderboard.store import Leaderboard
from bench.preparation.datasets import RunDatasets, fold_configs
from tests.conftest import bench, tiny_config_args
from tests.fixtures.data.builders import write_cued_multilabel, write_kote_dir, write_multi_turn

K = 3
TINY = [
    "-e",
    "scratch",
    *tiny_config_args(),
    "--train-limit",
    "60",
    "--max-len",
    "32",
    "--epochs",
    "1",
    "--no-progress",
]


def uids(examples: list) -> set[str]:
    return {example.uid for example in examples}


def folds_of(options: DataOptions) -> list[SplitDataset]:
    return [load_dataset(replace(options, folds=K, fold=fold)) for fold in range(1, K + 1)]


def test_folds_depend_on_the_split_seed_only_and_keep_the_test_split() -> None:
    plain = load_dataset(DataOptions())
    folds = folds_of(DataOptions())
    again = folds_of(DataOptions())
    assert [uids(fold.validation) for fold in folds] == [uids(fold.validation) for fold in again]
    assert [fold.fingerprint for fold in folds] == [fold.fingerprint for fold in again]
    other_seed = folds_of(DataOptions(split_seed=7))
    assert [uids(fold.validation) for fold in other_seed] != [uids(fold.validation) for fold in folds]
    # The training seed never reaches the splitter: configs differing only in --seed load the same folds.
    for seed in (1, 99):
        configs = fold_configs(RunConfig(seed=seed, data=DataOptions(folds=K)))
        loaded = RunDatasets.of_config(RunConfig(seed=seed, data=DataOptions(folds=K)))
        assert [config.data.fold for config in configs] == [1, 2, 3]
        assert [uids(loaded.dataset(config).validation) for config in configs] == [
            uids(fold.validation) for fold in folds
        ]
    pool = uids(plain.train) | uids(plain.validation)
    seen: list[str] = []
    for fold in folds:
        assert uids(fold.test) == uids(plain.test)  # the test split stays fixed
        assert uids(fold.train) | uids(fold.validation) == pool
        assert not uids(fold.train) & uids(fold.validation)
        seen += [example.uid for example in fold.validation]
    assert sorted(seen) == sorted(pool)  # every non-test example is validation exactly once
    sizes = [len(fold.validation) for fold in folds]
    assert max(sizes) - min(sizes) <= 1
    # Stratified: every class is in every fold's validation, in proportion (6 balanced classes).
    for fold in folds:
        counts = fold.report.labels["validation"]
        assert set(counts) == set(plain.labels) and max(counts.values()) - min(counts.values()) <= 1


def test_folds_test_rotates_the_test_split() -> None:
    plain = load_dataset(DataOptions())
    folds = folds_of(DataOptions(folds_test=True))
    everything = uids(plain.train) | uids(plain.validation) | uids(plain.test)
    tested = [example.uid for fold in folds for example in fold.test]
    assert sorted(tested) == sorted(everything)  # each example is tested in exactly one fold
    for fold in folds:
        assert uids(fold.train) | uids(fold.validation) | uids(fold.test) == everything
        assert not uids(fold.train) & uids(fold.validation) and not uids(fold.validation) & uids(fold.test)
        assert 0 < len(fold.validation) < len(fold.train)
    assert {fold_scheme(fold.fingerprint) for fold in folds} != {
        fold_scheme(f.fingerprint) for f in folds_of(DataOptions())
    }


def test_dialogues_stay_whole_in_every_fold(tmp_path: Path) -> None:
    options = DataOptions(source=str(write_multi_turn(tmp_path / "multi.xlsx", dialogues=40)))
    for folds_test in (False, True):
        folds = folds_of(replace(options, folds_test=folds_test))
        held_out = "test" if folds_test else "validation"
        seen: list[str] = []
        for fold in folds:
            groups = {name: {example.group for example in getattr(fold, name)} for name in SPLITS}
            assert not groups["train"] & groups["validation"] and not groups["train"] & groups["test"]
            assert not groups["validation"] & groups["test"]
            seen += sorted(groups[held_out])
        assert len(seen) == len(set(seen))  # each dialogue is held out in one fold only


def test_multi_label_folds_are_stratified_and_given_test_files_stay_fixed(tmp_path: Path) -> None:
    folds = folds_of(DataOptions(source=str(write_cued_multilabel(tmp_path / "cued.csv"))))
    assert all(fold.multilabel for fold in folds)
    labels_in_validation = [set(fold.report.labels["validation"]) for fold in folds]
    assert all(labels == labels_in_validation[0] for labels in labels_in_validation)
    kote = DataOptions(source=f"kote:{write_kote_dir(tmp_path / 'KOTE', train=120, validation=20, test=20)}")
    plain = load_dataset(kote)
    kote_folds = folds_of(kote)
    assert all(uids(fold.test) == uids(plain.test) for fold in kote_folds)
    assert sorted(uid for fold in kote_folds for uid in uids(fold.validation)) == sorted(
        uids(plain.train) | uids(plain.validation)
    )
    with pytest.raises(DataError, match="--folds-test rotates the test split"):
        load_dataset(replace(kote, folds=K, fold=1, folds_test=True))


def test_fold_fingerprints_name_the_scheme_and_folds_share_the_config_hash() -> None:
    plain = load_dataset(DataOptions())
    folds = folds_of(DataOptions())
    assert [fold_of(fold.fingerprint) for fold in folds] == [(1, 3), (2, 3), (3, 3)]
    assert len({fold_scheme(fold.fingerprint) for fold in folds}) == 1
    assert fold_scheme(folds[0].fingerprint) != plain.fingerprint and fold_of(plain.fingerprint) is None
    five = load_dataset(DataOptions(folds=5, fold=1))
    assert fold_scheme(five.fingerprint) != fold_scheme(folds[0].fingerprint)
    base = RunConfig()
    hashes = {config.config_hash() for config in fold_configs(base.with_updates(data=DataOptions(folds=K)))}
    assert hashes == {base.config_hash()}  # the fold lives in the fingerprint, old ids are unchanged


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (DataOptions(folds=1, fold=1), "--folds must be at least 2"),
        (DataOptions(folds_test=True), "--folds-test needs --folds"),
        (DataOptions(folds=3, fold=4), "fold 4 does not exist"),
    ],
)
def test_bad_fold_options_are_usage_errors(options: DataOptions, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_dataset(options)


def test_more_folds_than_examples_is_a_data_error(tmp_path: Path) -> None:
    multi = DataOptions(source=str(write_multi_turn(tmp_path / "multi.xlsx", dialogues=40)), folds=40, fold=40)
    with pytest.raises(DataError, match="fold 40 of --folds 40 is empty"):
        load_dataset(multi)


def test_corrected_resampled_t_test_matches_a_hand_computation() -> None:
    differences, ratio = [0.02, 0.05, -0.01, 0.04, 0.03], 0.25
    # By hand: mean 0.026; squared deviations sum to 0.00212, so var = 0.00053 (k − 1 = 4);
    # t = 0.026 / sqrt((1/5 + 0.25) · 0.00053) = 0.026 / sqrt(0.0002385).
    t = 0.026 / math.sqrt(0.0002385)
    # Student's t with 4 degrees of freedom has a closed-form CDF.
    cdf = 0.5 + (3 / 8) * (t / math.sqrt(1 + t * t / 4)) * (1 - t * t / (12 * (1 + t * t / 4)))
    p = 2 * (1 - cdf)
    assert stats.corrected_resampled_ttest(differences, ratio) == pytest.approx((t, p))
    assert stats.corrected_resampled_ttest([-d for d in differences], ratio) == pytest.approx((-t, p))
    assert (round(t, 4), round(p, 4)) == (1.6836, 0.1676)
    assert stats.corrected_resampled_ttest([0.1, 0.1], 0.2) == (math.inf, 0.0)
    with pytest.raises(UsageError, match="at least 2 folds"):
        stats.corrected_resampled_ttest([0.1], 0.2)


def test_run_grid_and_tune_with_folds_record_one_row_per_fold_in_one_group(
    results_dir: Path, capsys: pytest.CaptureFixture[str], wide_console: None
) -> None:
    results = ["--results", str(results_dir)]
    code, out, err = bench(capsys, "run", *TINY, "-h", "linear", "--folds", str(K), *results)
    assert code == 0, err
    assert f"3 of {K} folds finished" in out
    board = Leaderboard.for_results_dir(results_dir)
    linear = board.runs(head="linear")
    assert len(linear) == K and len({run.config_hash for run in linear}) == 1
    assert sorted(fold_of(run.fingerprint) for run in linear) == [(1, 3), (2, 3), (3, 3)]
    assert all(run.environment["train_examples"] == "60" for run in linear)

    code, out, err = bench(capsys, "run", *TINY, "-h", "linear", "--folds", str(K), *results)
    assert code == 0, err
    assert len(board.runs(head="linear")) == K  # rerunning finds the recorded folds
    assert {run.run_id: run.updated_at for run in board.runs(head="linear")} == {
        run.run_id: run.updated_at for run in linear
    }

    code, out, err = bench(
        capsys, "grid", "--encoders", "scratch", "--heads", "mlp", *TINY[2:], "--folds", str(K), *results
    )
    assert code == 0, err
    assert len(board.runs(head="mlp")) == K

    code, out, err = bench(capsys, "tune", *TINY, "-h", "cnn", "--trials", "1", "--folds", str(K), *results)
    assert code == 0, err
    cnn = board.runs(head="cnn")
    assert len(cnn) == K and len({run.config_hash for run in cnn}) == 1
    study = optuna.load_study(study_name=cnn[0].study, storage=f"sqlite:///{results_dir / 'optuna.db'}")
    (trial,) = study.trials
    assert trial.value == pytest.approx(sum(run.val_macro_f1 for run in cnn) / K)
    assert sorted(trial.user_attrs["run_ids"]) == sorted(run.run_id for run in cnn)

    groups = stats.aggregate(board.runs(), resamples=0)
    assert sorted(len(group.run_ids) for group in groups) == [K, K, K]
    assert all(group.folds == [1, 2, 3] for group in groups)
    assert len({group.fingerprint for group in groups}) == 1

    code, out, _ = bench(capsys, "leaderboard", "--view", "groups", "--include-flagged", *results)
    assert code == 0 and out.count(f"({K} folds)") == 3

    linear_group, mlp_group = (stats.group_key(board.runs(head=head)[0]) for head in ("linear", "mlp"))
    code, out, err = bench(capsys, "compare", linear_group, mlp_group, "--resamples", "200", *results)
    assert code == 0, err
    assert "paired bootstrap" in out and "corrected resampled t-test" in out
    expected = stats.fold_test(board.runs(head="linear"), board.runs(head="mlp"))
    assert expected is not None and expected.folds == K
    assert f"t = {expected.t:+.3f}" in out and f"{K - 1} degrees of freedom" in out

    code, _, err = bench(
        capsys, "tune", *TINY, "-h", "cnn", "--trials", "1", "--folds", str(K), "--pruner", "median", *results
    )
    assert code == 2 and "trials are not pruned" in err


def test_compare_over_folds_that_rotate_the_test_split_uses_the_t_test_only(
    results_dir: Path, capsys: pytest.CaptureFixture[str], wide_console: None
) -> None:
    results = ["--results", str(results_dir)]
    for head in ("linear", "mlp"):
        code, _, err = bench(capsys, "run", *TINY, "-h", head, "--folds", str(K), "--folds-test", *results)
        assert code == 0, err
    board = Leaderboard.for_results_dir(results_dir)
    runs = board.runs()
    assert len(runs) == 2 * K and len({fold_scheme(run.fingerprint) for run in runs}) == 1
    keys = [stats.group_key(board.runs(head=head)[0]) for head in ("linear", "mlp")]
    code, out, err = bench(capsys, "compare", *keys, *results)
    assert code == 0, err
    assert "folds that rotate the test split" in out and "corrected resampled t-test" in out
    assert "paired bootstrap" not in out
