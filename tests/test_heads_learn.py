"""Every head learns on short sentences with its default settings (data shaped like counselling first turns)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.config import RunConfig
from bench.data.types import DataOptions
from bench.leaderboard.flags import majority_macro_f1
from bench.leaderboard.store import Leaderboard
from bench.training.runner import run_experiment
from heads import list_heads
from tests.conftest import tiny_config_pairs
from tests.fixtures.data.short_sentences import LABELS, write_short_sentences

# Five times the majority-class macro-F1 of six balanced classes (about 0.048).
WELL_ABOVE_MAJORITY = 0.25


@pytest.fixture(scope="module")
def short_sentences(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,600 generated sentences, 600 per class (2,880 train after the 80/10/10 split)."""
    return write_short_sentences(tmp_path_factory.mktemp("short") / "short.csv", per_label=600, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("head", ["linear", "mlp", "layernorm-mlp", "cnn", "bilstm"])
def test_each_head_learns_with_its_defaults(head: str, short_sentences: Path, results_dir: Path):
    assert head in list_heads()
    config = RunConfig(
        encoder="scratch",
        head=head,
        data=DataOptions(source=str(short_sentences)),
        encoder_config=tiny_config_pairs(),
        device="cpu",
        results_dir=str(results_dir),
    )
    with Leaderboard.for_results_dir(results_dir) as board:
        record = run_experiment(config, board)
        assert record.status == "finished", record.error
        majority = majority_macro_f1(board.predictions(record.run_id).gold, len(LABELS))
    assert record.macro_f1 is not None and record.macro_f1 >= max(WELL_ABOVE_MAJORITY, 5 * majority), (
        f"{head}: test macro-F1 {record.macro_f1:.3f}, majority row {majority:.3f}"
    )
    assert record.flags == [] and (record.predicted_classes or 0) >= len(LABELS) - 1
