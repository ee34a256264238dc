"""k-fold cross-validation: which split each row falls in for one fold, and the fold's fingerprint.

Folds are dealt by the same stratified, seeded, group-keeping splitter as the
train/validation/test split (:func:`bench.data.split.assign_parts`), so they depend
only on the data and the split seed. With the test split fixed, the rows outside it
(train + validation) are dealt into ``K`` parts and fold ``i`` validates on part ``i``;
with a rotating test split all rows are dealt into ``K`` parts, fold ``i`` tests on
part ``i`` and splits validation from the rest (90/10).

A fold's fingerprint is ``<scheme digest>-fold<i>of<K>``: the digest covers the data
and the whole fold scheme, so every fold of one scheme shares it (the leaderboard
groups folds by it) and different schemes never share it.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from bench.data.split import TRAIN_VALIDATION, assign_parts, assign_splits
from bench.data.types import DataOptions
from bench.errors import DataError, UsageError

if TYPE_CHECKING:  # imported where frames are built: bench.config (every command) imports this module
    import pandas as pd

FOLD_SUFFIX = re.compile(r"-fold(\d+)of(\d+)$")


def check_fold_options(options: DataOptions) -> None:
    """Raise :class:`UsageError` unless ``folds``, ``fold`` and ``folds_test`` fit together."""
    if options.folds is None:
        if options.fold is not None or options.folds_test:
            raise UsageError("--folds-test needs --folds K" if options.folds_test else "a fold needs --folds K")
        return
    if options.folds < 2:
        raise UsageError(f"--folds must be at least 2, got {options.folds}")
    if options.fold is not None and not 1 <= options.fold <= options.folds:
        raise UsageError(
            f"fold {options.fold} does not exist with --folds {options.folds} (folds 1 to {options.folds})"
        )


def require_fold(options: DataOptions) -> int:
    """The fold to load; :class:`UsageError` when ``folds`` is set without one."""
    if options.fold is None:
        raise UsageError(f"--folds {options.folds}: say which fold to load (1 to {options.folds})")
    return options.fold


def fold_parts(strata: pd.DataFrame, fixed: pd.Series, options: DataOptions) -> pd.Series:
    """The fold (1 to K) of each row; 0 for rows of the fixed test split (none with ``folds_test``).

    ``strata`` has the splitter's columns (``uid``, ``label`` as stratum, ``group``);
    ``fixed`` is each row's split without folds.
    """
    import pandas as pd

    assert options.folds is not None
    pool = pd.Series(True, index=strata.index) if options.folds_test else fixed != "test"
    parts = pd.Series(0, index=strata.index)
    parts.loc[pool] = assign_parts(strata.loc[pool], (1,) * options.folds, options.split_seed) + 1
    return parts


def fold_splits(strata: pd.DataFrame, parts: pd.Series, options: DataOptions, where: str) -> pd.Series:
    """Each row's split in fold ``options.fold``; :class:`DataError` when the fold's held-out part is empty."""
    import pandas as pd

    assert options.folds is not None and options.fold is not None
    held_out = parts == options.fold
    if not held_out.any():
        what = "dialogues" if strata["group"].notna().any() else "examples"
        raise DataError(
            f"{where}: fold {options.fold} of --folds {options.folds} is empty (too few {what} to deal into "
            f"{options.folds} folds); use fewer folds"
        )
    if not options.folds_test:
        return pd.Series("test", index=strata.index).where(
            parts == 0, held_out.map({True: "validation", False: "train"})
        )
    splits = pd.Series("test", index=strata.index)
    rest = ~held_out
    splits.loc[rest] = assign_splits(strata.loc[rest], TRAIN_VALIDATION, options.split_seed)
    return splits


def scheme_digest(base: hashlib._Hash, uids: list[str], parts: pd.Series, options: DataOptions) -> str:
    """The digest of the data choices in ``base`` plus the fold scheme: K, what rotates, each row's fold."""
    digest = base.copy()
    digest.update(f"\x1dfolds {options.folds} rotate {'test' if options.folds_test else 'validation'}\x1d".encode())
    for uid, part in zip(uids, parts.tolist(), strict=True):
        digest.update(f"{uid}\x1f{part}\x1e".encode())
    return digest.hexdigest()


def fold_fingerprint(scheme: str, fold: int, folds: int) -> str:
    """The fingerprint of fold ``fold`` of ``folds`` in the scheme ``scheme``."""
    return f"{scheme}-fold{fold}of{folds}"


def fold_scheme(fingerprint: str) -> str:
    """The fingerprint shared by every fold of a fingerprint's scheme (the fingerprint itself without folds)."""
    return FOLD_SUFFIX.sub("", fingerprint)


def fold_of(fingerprint: str) -> tuple[int, int] | None:
    """``(fold, K)`` of a fold's fingerprint; ``None`` for a run without folds."""
    match = FOLD_SUFFIX.search(fingerprint)
    return (int(match.group(1)), int(match.group(2))) if match else None
