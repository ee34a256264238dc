"""KOTE (Korean Online That-gul Emotions) as published: a folder of headerless TSV files, 44 emotions.

``train.tsv``, ``val.tsv`` and ``test.tsv`` hold one comment per line in three
tab-separated columns: an id, the text, and comma-separated indices (0–43)
into :data:`KOTE_LABELS`. A comment has one or more labels (``없음`` is one of them).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from bench.data.hygiene import drop_unusable_rows
from bench.data.readers import clean_text, describe_rows, read_table
from bench.errors import DataError

# The published label list, in the order the label indices refer to.
KOTE_LABELS = (
    "불평/불만",
    "환영/호의",
    "감동/감탄",
    "지긋지긋",
    "고마움",
    "슬픔",
    "화남/분노",
    "존경",
    "기대감",
    "우쭐댐/무시함",
    "안타까움/실망",
    "비장함",
    "의심/불신",
    "뿌듯함",
    "편안/쾌적",
    "신기함/관심",
    "아껴주는",
    "부끄러움",
    "공포/무서움",
    "절망",
    "한심함",
    "역겨움/징그러움",
    "짜증",
    "어이없음",
    "없음",
    "패배/자기혐오",
    "귀찮음",
    "힘듦/지침",
    "즐거움/신남",
    "깨달음",
    "죄책감",
    "증오/혐오",
    "흐뭇함(귀여움/예쁨)",
    "당황/난처",
    "경악",
    "부담/안_내킴",
    "서러움",
    "재미없음",
    "불쌍함/연민",
    "놀람",
    "행복",
    "불안/걱정",
    "기쁨",
    "안심/신뢰",
)
FILES = {"train": "train.tsv", "validation": "val.tsv", "test": "test.tsv"}
_COLUMNS = 3


def locate(path: Path) -> dict[str, Path]:
    """The split files under folder ``path``: train and test are required, validation is optional."""
    if not path.is_dir():
        raise DataError(f"{path}: kote: needs the KOTE folder (train.tsv, val.tsv, test.tsv), not a file")
    files = {split: path / name for split, name in FILES.items() if (path / name).is_file()}
    missing = [FILES[split] for split in ("train", "test") if split not in files]
    if missing:
        raise DataError(f"{path}: no {' or '.join(missing)} in the KOTE folder (needs train.tsv, test.tsv, val.tsv)")
    return files


def read_split(path: Path, dropped: Counter[str]) -> tuple[pd.DataFrame, str | None]:
    """Examples of one KOTE file (columns ``text``, ``labels``; indexed by line number), and its encoding."""
    table = read_table(path, header=False)
    if len(table.frame.columns) != _COLUMNS:
        raise DataError(
            f"{path}: expected {_COLUMNS} tab-separated columns (id, text, label indices), "
            f"found {len(table.frame.columns)}"
        )
    frame = pd.DataFrame(
        {"text": clean_text(table.frame["2"]), "label": clean_text(table.frame["3"])}, index=table.frame.index
    )
    frame = drop_unusable_rows(path, frame, "3", dropped)
    return frame.assign(labels=_label_names(path, frame["label"])).drop(columns="label"), table.encoding


def _label_names(path: Path, indices: pd.Series) -> pd.Series:
    """Label-index lists (``"2,13"``) → tuples of label names in the published order."""
    names: list[tuple[str, ...]] = []
    bad: list[int] = []
    for row, value in zip(indices.index.tolist(), indices.tolist(), strict=True):
        parts = [part.strip() for part in value.split(",") if part.strip()]
        if not all(part.isdigit() and int(part) < len(KOTE_LABELS) for part in parts):
            bad.append(row)
            continue
        names.append(tuple(KOTE_LABELS[index] for index in sorted({int(part) for part in parts})))
    if bad:
        first = indices.loc[bad[0]]
        raise DataError(
            f"{path}: {describe_rows(pd.Index(bad))}: label indices must be comma-separated numbers 0 to "
            f"{len(KOTE_LABELS) - 1} (found {first!r})"
        )
    return pd.Series(names, index=indices.index, dtype=object)
