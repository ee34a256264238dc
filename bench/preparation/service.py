"""What every training command does before it trains: plugins, checked names, datasets, the leaderboard.

``bench run``, ``bench grid``, ``bench tune`` and ``bench baseline`` call :func:`prepare`, so the
preamble (plugins → config → datasets → leaderboard) is written once: every fold's split is loaded and
checked before the leaderboard is touched, and a refused input leaves no results folder behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench import plugins
from bench.config import RunConfig
from bench.leaderboard.store import Leaderboard, check_storage_url, sqlite_file
from bench.preparation.datasets import RunDatasets
from bench.recording.phases import PhaseTimes


@dataclass
class Prepared:
    """A command's configuration with its checked datasets, the time each fold's data took to load, and
    its leaderboard (``None`` when the command only plans)."""

    config: RunConfig
    datasets: RunDatasets
    leaderboard: Leaderboard | None
    phases: dict[int | None, PhaseTimes] = field(default_factory=dict)


def prepare(
    config: RunConfig,
    storage: str | None,
    *,
    plugin_specs: list[str] | None = None,
    check_names: bool = True,
    open_board: bool = True,
) -> Prepared:
    """Load the plugins, check the encoder and head names (``check_names``), load and check the dataset of
    every fold of ``config``, then open the leaderboard (``--storage``, else ``<results>/leaderboard.db``)."""
    plugins.load(plugin_specs or [])
    if check_names:
        from encoders import check_encoder_name
        from heads import resolve_head_params

        check_encoder_name(config.encoder)
        resolve_head_params(config.head, config.head_kwargs)
    phases: dict[int | None, PhaseTimes] = {}
    datasets = RunDatasets.of_config(config, phases)
    leaderboard = open_leaderboard(storage, config.results_path) if open_board else None
    return Prepared(config, datasets, leaderboard, phases)


def open_leaderboard(storage: str | None, results: Path) -> Leaderboard:
    """The leaderboard a training command writes: ``--storage``, else ``<results>/leaderboard.db`` (created, with the
    folder of a SQLite file)."""
    if storage:
        check_storage_url(storage, "--storage")
        database_file = sqlite_file(storage)
        if database_file is not None:
            database_file.parent.mkdir(parents=True, exist_ok=True)
        return Leaderboard(storage)
    return Leaderboard.for_results_dir(results)
