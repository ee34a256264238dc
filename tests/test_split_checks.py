"""Splits a run cannot train, select or test on are refused when the data is loaded, before anything is written."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest

from bench.data import DataOptions, load_dataset
from bench.errors import DataError
from bench.leaderboard.store import database_path
from bench.preparation.datasets import check_splits
from tests.conftest import bench, tiny_config_args


@pytest.fixture
def two_dialogues(tmp_path: Path) -> Path:
    """Multi-turn data of two dialogues: split by dialogue, both land in train; validation and test are empty."""
    path = tmp_path / "two_dialogues.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["dialog #", "발화", "감정"])
        for dialogue in (1, 2):
            for turn in range(20):
                label = "공포" if turn % 2 else "행복"
                writer.writerow([dialogue if turn == 0 else "", f"대화 {dialogue}의 {turn}번째 말: {label}", label])
    return path


TRAINING = [*tiny_config_args(), "--epochs", "1", "--max-len", "32"]
COMMANDS = {
    "run": ["run", "--encoder", "scratch", "--head", "linear", *TRAINING, "--no-progress"],
    "grid": ["grid", "--encoders", "scratch", "--heads", "linear", *TRAINING, "--no-progress"],
    "tune": ["tune", "--encoder", "scratch", "--head", "linear", *TRAINING, "--trials", "1"],
    "baseline": ["baseline"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_empty_split_is_refused_with_exit_2_and_nothing_written(
    capsys, tmp_path: Path, two_dialogues: Path, command: str
) -> None:
    results = tmp_path / "results"
    code, out, err = bench(
        capsys, *COMMANDS[command], "--data", f"multi-turn:{two_dialogues}", "--results", str(results)
    )
    assert code == 2, out + err
    assert len(err.strip().splitlines()) == 1, err
    assert "validation" in err and "split" in err and "empty" in err
    assert not database_path(results).exists()
    assert not results.exists() or not list(results.rglob("*.db"))


def test_check_splits_names_the_split_and_the_cause() -> None:
    dataset = load_dataset(DataOptions())
    with pytest.raises(
        DataError, match=r"the validation split is empty; a run needs at least 1 to choose the best epoch on"
    ):
        check_splits(replace(dataset, validation=[]))
    usable = replace(dataset, validation=dataset.train[:2], test=dataset.train[2:3])
    check_splits(usable)  # every split serves one device
    with pytest.raises(DataError, match=r"the test split has 1 example; a run needs at least 2 \(one per device"):
        check_splits(usable, devices=2)
    label = dataset.train[0].label
    one_class = [example for example in dataset.train if example.label == label]
    with pytest.raises(DataError, match=f"the train split holds only the class '{label}'"):
        check_splits(replace(usable, train=one_class))
    with pytest.raises(DataError, match="the train split is empty; a run needs at least 1 to train on"):
        check_splits(replace(usable, train=[]))
