"""``inspect_dataset``: what a loaded dataset holds, as one JSON-able dict (``bench data inspect``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bench.data.hygiene import EMPTY_TEXT
from bench.data.split import SPLITS
from bench.data.types import SplitDataset

if TYPE_CHECKING:  # encoders import torch; a summary without a tokenizer does not need it
    from encoders.base import TextTokenizer

# Longest encoding asked of the tokenizer when measuring lengths (no real text comes near it).
_UNTRUNCATED = 1 << 20


def inspect_dataset(dataset: SplitDataset, tokenizer: TextTokenizer | None, max_len: int) -> dict[str, Any]:
    """Rows and labels per split, how the data was split, rows dropped and why, duplicates, and text lengths.

    Lengths are in characters and, with a ``tokenizer``, in tokens including
    the special tokens, with the share of texts longer than ``max_len`` tokens
    (those are truncated in training). Without a tokenizer the share of texts
    longer than ``max_len`` characters stands in: Korean tokenizers give about
    one token per one or two characters, so such texts are at risk.
    """
    texts = [example.text for name in SPLITS for example in getattr(dataset, name)]
    char_lengths = [len(text) for text in texts]
    report = dataset.report
    summary: dict[str, Any] = {
        "name": dataset.name,
        "fingerprint": dataset.fingerprint,
        "encoding": report.encoding,
        "classes": list(dataset.labels),
        "split_rule": report.split_rule,
        "rows": {name: report.rows.get(name, 0) for name in SPLITS},
        "dialogues": dict(report.groups),
        "labels": {name: dict(report.labels.get(name, {})) for name in SPLITS},
        "dropped": dict(report.dropped),
        "empty_texts": report.dropped.get(EMPTY_TEXT, 0),
        "duplicates": {"within_train": report.duplicates_within_train, "train_test": report.duplicates_train_test},
        "max_len": max_len,
        "length": {"chars": _length_stats(char_lengths)},
        "warnings": list(report.warnings),
        "task": dataset.task,
    }
    if dataset.multilabel:
        per_example = [len(example.labels) for name in SPLITS for example in getattr(dataset, name)]
        summary["labels_per_example"] = {"mean": round(float(np.mean(per_example)), 2), "max": max(per_example)}
    summary["length"]["chars"]["over_max_len"] = float(np.mean(np.asarray(char_lengths) > max_len)) if texts else 0.0
    if tokenizer is not None:
        token_lengths = [len(ids) for ids in tokenizer.encode_batch(texts, _UNTRUNCATED)]
        stats = _length_stats(token_lengths)
        stats["over_max_len"] = float(np.mean(np.asarray(token_lengths) > max_len)) if token_lengths else 0.0
        summary["length"]["tokens"] = stats
        if stats["over_max_len"] > 0:
            summary["warnings"].append(
                f"{stats['over_max_len']:.1%} of texts are longer than --max-len {max_len} tokens and will be truncated"
            )
    elif summary["length"]["chars"]["over_max_len"] > 0:
        share = summary["length"]["chars"]["over_max_len"]
        summary["warnings"].append(
            f"{share:.1%} of texts are longer than {max_len} characters and may be truncated at --max-len {max_len} "
            "tokens; pass --encoder to count tokens"
        )
    return summary


def _length_stats(lengths: list[int]) -> dict[str, float]:
    if not lengths:
        return {"mean": 0.0, "p95": 0.0, "max": 0}
    values = np.asarray(lengths)
    return {"mean": round(float(values.mean()), 2), "p95": float(np.percentile(values, 95)), "max": int(values.max())}
