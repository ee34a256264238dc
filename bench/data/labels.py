"""Label sets, the AI Hub label schemes and user label maps."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pandas as pd
import yaml

from bench.errors import DataError, UsageError
from bench.files import file_problem

# The six major emotions of AI Hub's 감성 대화 말뭉치, and the seven labels of KETI's
# 단발성/연속적 대화 데이터셋.
MAJOR6 = ("기쁨", "당황", "분노", "불안", "상처", "슬픔")
MERGED5 = ("기쁨", "당황", "분노", "불안", "슬픔")
SEVEN_EMOTIONS = ("공포", "놀람", "분노", "슬픔", "중립", "행복", "혐오")
LABEL_SCHEMES = ("major6", "merged5", "minor")
_MERGES = {"merged5": {"상처": "슬픔"}}


def check_scheme(scheme: str) -> None:
    """Raise :class:`UsageError` unless ``scheme`` is a known label scheme."""
    if scheme not in LABEL_SCHEMES:
        raise UsageError(f"--labels must be one of {', '.join(LABEL_SCHEMES)}, got {scheme!r}")


def aihub_labels(major: pd.Series, minor: pd.Series, scheme: str) -> pd.Series:
    """AI Hub labels under ``scheme``: the major emotion, 상처 merged into 슬픔, or ``"major/minor"``.

    Sub-emotions are prefixed with their major emotion because AI Hub uses some
    names under two majors (고립된, 혼란스러운 under 상처/불안 and 당황).
    """
    if scheme == "minor":
        return major + "/" + minor
    return major.replace(_MERGES.get(scheme, {}))


def outside_aihub(labels: pd.Series, scheme: str) -> pd.Series:
    """Mask of AI Hub labels that are not valid under ``scheme``.

    ``minor`` labels need a valid major emotion and a sub-emotion; sub-emotion
    names are taken as the xlsx writes them.
    """
    if scheme == "minor":
        parts = labels.str.partition("/")
        return ~parts[0].isin(MAJOR6) | (parts[2] == "")
    return ~labels.isin(MERGED5 if scheme == "merged5" else MAJOR6)


def found_labels(labels: pd.Series, scheme: str, source: str) -> pd.Series:
    """Labels of a non-AI-Hub source under ``scheme``.

    ``major6`` (the default) keeps the labels as found; ``merged5`` merges 상처
    into 슬픔 and needs labels among the six major emotions; ``minor`` needs AI
    Hub's sub-emotions and so applies to ``aihub:`` data only.
    """
    if scheme == "major6":
        return labels
    if scheme == "minor":
        raise DataError(f"{source}: label scheme 'minor' needs AI Hub sub-emotions; use it with aihub:PATH data")
    foreign = sorted(set(labels.unique()) - set(MAJOR6))
    if foreign:
        raise DataError(
            f"{source}: label scheme {scheme!r} needs the six major emotions ({', '.join(MAJOR6)}); "
            f"found {', '.join(foreign[:10])}"
        )
    return labels.replace(_MERGES[scheme])


def read_label_map(path: Path) -> dict[str, str | None]:
    """A YAML/JSON mapping source label → target label (``null`` drops the label's rows)."""
    problem = file_problem(path)
    if problem == "no such file":
        raise DataError(f"{path}: label map not found")
    if problem is not None:
        raise DataError(f"{path}: the label map is {problem}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path}: label map is not UTF-8 text") from None
    try:
        loaded = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise DataError(
            f"{path}: label map is not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: "
            f"{' '.join(str(error).split())}"
        ) from None
    if not isinstance(loaded, dict) or not loaded:
        raise DataError(f"{path}: label map must be a non-empty mapping 'source label: target label'")
    mapping: dict[str, str | None] = {}
    for source, target in loaded.items():
        if not _is_label(source) or not (target is None or _is_label(target)):
            raise DataError(f"{path}: label map entry {source!r}: {target!r} must map a label to a label or null")
        mapping[_label_text(source)] = None if target is None else _label_text(target)
    return mapping


def _label_text(value: str | int) -> str:
    """A label as the loaders clean the data's labels (stripped, NFC), so that a map typed in NFD matches."""
    return unicodedata.normalize("NFC", str(value).strip())


def _is_label(value: object) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip() != ""


def describe_counts(labels: pd.Series, limit: int = 10) -> str:
    """``"'x' (3 rows), 'y' (1 row)"`` for the distinct values of ``labels``, most frequent first."""
    counts = labels.value_counts(sort=False)
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    parts = [f"{label!r} ({count} row{'s' if count != 1 else ''})" for label, count in ordered[:limit]]
    more = f" and {len(ordered) - limit} more" if len(ordered) > limit else ""
    return ", ".join(parts) + more
