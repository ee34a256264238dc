"""The real 단발성 대화 dataset in ../shared: the xlsx and the cp949 CSV load to the same rows."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import pytest

from bench.data import DataOptions, load_dataset
from bench.data.split import SPLITS
from bench.data.types import SplitDataset
from tests.conftest import shared_path

COUNTS = {"공포": 5468, "놀람": 5898, "분노": 5665, "슬픔": 5267, "중립": 4830, "행복": 6037, "혐오": 5429}


@dataclass(frozen=True)
class TimedLoad:
    """A dataset and the seconds its load took."""

    dataset: SplitDataset
    seconds: float


@pytest.fixture(scope="module")
def xlsx_load() -> TimedLoad:
    started = time.perf_counter()
    dataset = load_dataset(DataOptions(source=str(shared_path("data/single_turn_7emo.xlsx"))))
    return TimedLoad(dataset, time.perf_counter() - started)


def test_single_turn_xlsx_and_cp949_csv_load_to_the_same_38594_rows(xlsx_load: TimedLoad) -> None:
    csv = shared_path("data/single_turn_7emo_cp949.csv")
    from_xlsx = xlsx_load.dataset
    from_csv = load_dataset(DataOptions(source=f"single-turn:{csv}"))
    assert from_csv.report.encoding == "cp949"
    for dataset in (from_xlsx, from_csv):
        examples = [example for name in SPLITS for example in getattr(dataset, name)]
        assert len(examples) == 38_594
        assert Counter(example.label for example in examples) == COUNTS
        assert dataset.report.dropped == {}
    assert from_xlsx.fingerprint == from_csv.fingerprint


def test_the_38594_row_xlsx_loads_in_under_5_seconds(xlsx_load: TimedLoad) -> None:
    """Speed only (slow on a loaded machine); what is loaded is checked above."""
    assert xlsx_load.seconds < 5, f"loading the 38,594-row xlsx took {xlsx_load.seconds:.1f} s"
