"""Command-line options shared by the commands and their conversion to a RunConfig.

The options of the run settings and of the data options are derived from their declarations
(:mod:`bench.settings`); the storage and worker options are declared here, once each.

This module stays light (no torch, no model registries): commands that train nothing import it too.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from dataclasses import MISSING, fields
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, TypeVar, get_args, get_type_hints

import typer

from bench import plugins
from bench.config import DATA_SETTINGS, SETTINGS, RunConfig, json_or_text, sort_params, split_pairs
from bench.data.types import DataOptions
from bench.errors import ResultsError, UsageError
from bench.leaderboard.store import (
    Leaderboard,
    check_storage_url,
    database_exists,
    database_path,
    sqlite_url,
)
from bench.settings import MODEL, STORAGE, Setting

PARALLEL = "Workers"
# ``--head-param`` accepts head.NAME, the spelling used wherever head parameters are shown.
HEAD_PREFIX = "head."


def _cli_type(owner: type, declared: Setting, name: str) -> Any:
    """The type of a setting's option: its declared ``cli_type``, else the type of ``owner``'s field ``name``
    (``X | None`` → ``Optional[X]``)."""
    if declared.cli_type is not None:
        return declared.cli_type
    kind = get_type_hints(owner)[name]
    args = [arg for arg in get_args(kind) if arg is not type(None)]
    return args[0] | None if len(args) == 1 and len(get_args(kind)) == 2 else kind


def number_kind(name: str) -> type[int] | type[float]:
    """``int`` for a setting whose field holds whole numbers (``int`` or ``int | None``), else ``float``."""
    kind = get_type_hints(RunConfig)[name]
    return int if kind is int or int in get_args(kind) else float


def setting_option(name: str, *, listed: bool = False) -> Any:
    """The ``Annotated`` type of setting ``name``'s option; ``listed``: ``bench grid``'s comma-separated list of it."""
    declared = SETTINGS[name]
    assert declared is not None and declared.flags, f"RunConfig.{name} has no command-line flag"
    if listed:
        return Annotated[
            str | None,
            typer.Option(
                declared.flag,
                help=f"{declared.help} Comma-separated values, one grid axis.",
                rich_help_panel=GRID_PANEL,
            ),
        ]
    return _declared_option(RunConfig, declared, name)


def _declared_option(owner: type, declared: Setting, name: str) -> Any:
    kind = _cli_type(owner, declared, name)
    return Annotated[kind, typer.Option(*declared.flags, help=declared.help, rich_help_panel=declared.panel)]


def data_option(name: str) -> Any:
    """The ``Annotated`` type of data option ``name`` (a :class:`DataOptions` field)."""
    declared = DATA_SETTINGS[name]
    assert declared.flags, f"DataOptions.{name} has no command-line flag"
    return _declared_option(DataOptions, declared, name)


def setting_default(name: str) -> Any:
    """The default of setting ``name``'s option (the field's default, as the option's type)."""
    default = DEFAULTS.__dict__[name]
    if default == () or default is None:
        return None
    return Path(default) if _cli_type(RunConfig, SETTINGS[name], name) is Path else default  # type: ignore[arg-type]


GRID_PANEL = "Grid"
EncoderPath = setting_option("encoder_path")
TrustRemoteCode = setting_option("trust_remote_code")
Device = setting_option("device")
PerLabelThreshold = setting_option("per_label_threshold")
TrainLimit = setting_option("train_limit")
Results = setting_option("results_dir")
HeadParam = Annotated[
    list[str] | None,
    typer.Option("--head-param", help="KEY=VALUE head hyperparameter (repeatable).", rich_help_panel=MODEL),
]
Dropout = Annotated[float | None, typer.Option("--dropout", help="Head dropout.", rich_help_panel=MODEL)]
Storage = Annotated[
    str | None,
    typer.Option(
        "--storage",
        help="Leaderboard database URL (sqlite:///FILE or postgresql://…); default <results>/leaderboard.db.",
        rich_help_panel=STORAGE,
    ),
]
StudyStorage = Annotated[
    str | None,
    typer.Option(
        "--study-storage",
        help="Optuna database URL shared by the workers of a grid or study (default: the --storage database "
        "when it is a server, else optuna.db beside the leaderboard).",
        rich_help_panel=STORAGE,
    ),
]
RenamedLeaderboard = Annotated[str | None, typer.Option("--leaderboard", hidden=True)]
Gpus = Annotated[
    str | None,
    typer.Option(
        "--gpus",
        help="Run one worker process per GPU, e.g. 0,1,2,3 (per --devices GPUs with --devices).",
        rich_help_panel=PARALLEL,
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        help="Worker processes sharing the work (default: one per --gpus group, else 1; with --ray, as many runs "
        "as the cluster holds at once).",
        rich_help_panel=PARALLEL,
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray",
        metavar="ADDRESS",
        help="Run the workers as tasks on the Ray cluster at ADDRESS (HOST:PORT, ray://HOST:PORT, or auto for "
        "the one this machine is part of); needs a PostgreSQL --storage.",
        rich_help_panel=PARALLEL,
    ),
]
GpusPerRun = Annotated[
    float | None,
    typer.Option(
        "--gpus-per-run",
        min=0,
        help="With --ray: GPUs each worker reserves (default: --devices where the cluster has GPUs, else 0; "
        "a fraction shares a GPU).",
        rich_help_panel=PARALLEL,
    ),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the plan and exit.")]
Progress = Annotated[
    bool, typer.Option("--progress/--no-progress", help="Progress bars (within a run only on a terminal).")
]


def _load_plugins(specs: list[str] | None) -> list[str] | None:
    """Import the ``--plugin`` modules while the command line is parsed, before any head or encoder is looked up."""
    plugins.load(specs or [])
    return specs


Plugins = Annotated[
    list[str] | None,
    typer.Option(
        "--plugin",
        help="Python file or module registering heads or encoders (repeatable; also BENCH_PLUGINS).",
        callback=_load_plugins,
        is_eager=True,
        rich_help_panel=MODEL,
    ),
]

# RunConfig's field defaults, read without building a RunConfig (which would load the encoder registry).
DEFAULTS = SimpleNamespace(
    **{
        field.name: field.default_factory() if field.default is MISSING else field.default
        for field in fields(RunConfig)
    }  # type: ignore[misc]
)
D = DEFAULTS
DEFAULT_RESULTS = Path(D.results_dir)


def _options(*specs: tuple[str, Any, Any]) -> tuple[inspect.Parameter, ...]:
    return tuple(
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=default)
        for name, kind, default in specs
    )


# The data options of a command that reads data; the cross-validation ones (``run``, ``grid``, ``tune``) apart.
FOLD_FIELDS = ("folds", "folds_test")
DATA_FIELDS = tuple(name for name, declared in DATA_SETTINGS.items() if declared.flags and name not in FOLD_FIELDS)


def data_options_of(names: Sequence[str]) -> tuple[inspect.Parameter, ...]:
    """The options of the data fields ``names``, with the fields' defaults."""
    defaults = DataOptions()
    return _options(
        *((DATA_SETTINGS[name].option or name, data_option(name), getattr(defaults, name)) for name in names)
    )


# Option groups shared by commands; see :func:`with_options`.
DATA_OPTIONS = data_options_of(DATA_FIELDS) + _options(("train_limit", TrainLimit, None))
FOLD_OPTIONS = data_options_of(FOLD_FIELDS)
RESULTS_OPTIONS = _options(("results", Results, DEFAULT_RESULTS), ("storage", Storage, None))
THREAD_OPTIONS = _options(("threads", setting_option("threads"), None))
PLUGIN_OPTIONS = _options(("plugin", Plugins, None))
# The declared run settings with a flag, except those of the shared groups above.
SETTING_NAMES = tuple(
    name
    for name, declared in SETTINGS.items()
    if declared is not None and declared.flags and name not in ("train_limit", "results_dir")
)
# The settings a grid spans with options of its own (``--encoders``, ``--heads``, ``--seeds``, ``ENCODER=PATH``).
GRID_AXES = ("encoder", "head", "seed", "encoder_path")
# The settings ``bench grid`` lists several values of.
GRID_LISTS = tuple(name for name in SETTING_NAMES if SETTINGS[name].grid)  # type: ignore[union-attr]


def setting_options(names: Sequence[str], *, listed: Sequence[str] = ()) -> tuple[inspect.Parameter, ...]:
    """The options of the settings ``names`` (those in ``listed`` as grid lists, default ``None``)."""
    return _options(
        *(
            (
                SETTINGS[name].option or name,
                setting_option(name, listed=name in listed),  # type: ignore[union-attr]
                None if name in listed else setting_default(name),
            )
            for name in names
        )
    )


# ``bench run`` and ``bench tune``: one value of each setting, and the head's hyperparameters.
RUN_OPTIONS = setting_options(SETTING_NAMES) + _options(("head_param", HeadParam, None), ("dropout", Dropout, None))
# ``bench grid``: a list of each setting that takes one, one value of the others.
GRID_LIST_OPTIONS = setting_options(GRID_LISTS, listed=GRID_LISTS)
GRID_SINGLE_OPTIONS = setting_options([name for name in SETTING_NAMES if name not in (*GRID_AXES, *GRID_LISTS)])
# Commands with worker processes sharing an Optuna study (``grid``, ``tune``).
STUDY_OPTIONS = _options(
    ("study_storage", StudyStorage, None),
    ("leaderboard", RenamedLeaderboard, None),
    ("gpus", Gpus, None),
    ("workers", Workers, None),
    ("ray", RayAddress, None),
    ("gpus_per_run", GpusPerRun, None),
    ("dry_run", DryRun, False),
    ("progress", Progress, True),
)

Command = TypeVar("Command", bound=Callable[..., Any])


def with_options(*groups: tuple[inspect.Parameter, ...]) -> Callable[[Command], Command]:
    """Give a Typer command the options of ``groups`` after its own; it receives them as ``**options``."""

    def decorate(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)
        own = [parameter for parameter in signature.parameters.values() if parameter.kind is not parameter.VAR_KEYWORD]
        command.__signature__ = signature.replace(parameters=[*own, *(option for group in groups for option in group)])  # type: ignore[attr-defined]
        return command

    return decorate


def head_param_values(pairs: Sequence[str] | None, *, lists: bool = False) -> dict[str, Any]:
    """``--head-param`` values by hyperparameter name: ``NAME=VALUE`` or ``head.NAME=VALUE`` → ``{NAME: value}``.

    Values are JSON where they are JSON, else text. With ``lists`` (``bench grid``), each value is a tuple:
    ``NAME=V1,V2`` splits at the commas, ``NAME=["2,3","3,4"]`` keeps commas inside values.
    """
    parsed: dict[str, Any] = {}
    form = "KEY=V1,V2,..." if lists else "KEY=VALUE"
    for key, raw in split_pairs(list(pairs or []), "--head-param", form):
        name = key.removeprefix(HEAD_PREFIX)
        if not lists:
            parsed[name] = json_or_text(raw)
            continue
        if not raw.strip():
            raise UsageError(f"--head-param expects {form}, got {key + '=' + raw!r}")
        whole = json_or_text(raw)
        items = (
            whole
            if isinstance(whole, list)
            else [json_or_text(item) for item in split_list(raw, f"--head-param {key}")]
        )
        parsed[name] = tuple(items)
    return parsed


def split_list(text: str, option: str) -> list[str]:
    """``"a, b,c"`` → ``["a", "b", "c"]``; an empty item is a :class:`UsageError`."""
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise UsageError(f"{option} expects a comma-separated list, got {text!r}")
    return items


def data_options(values: dict[str, Any]) -> DataOptions:
    """The data options of a command's keyword arguments (the options above); a field without an option
    there keeps its default."""
    given: dict[str, Any] = {}
    for name, declared in DATA_SETTINGS.items():
        key = declared.option or name
        if declared.flags and key in values and values[key] is not None:
            given[name] = declared.convert(values[key]) if declared.convert else values[key]
    return DataOptions(**given)


def run_config(values: dict[str, Any]) -> RunConfig:
    """A :class:`RunConfig` from a command's keyword arguments (the options above); a setting without
    an option there keeps its default."""
    head_params = head_param_values(values.get("head_param"))
    if values.get("dropout") is not None:
        head_params["dropout"] = values["dropout"]
    settings: dict[str, Any] = {}
    for name in (*SETTING_NAMES, "train_limit", "results_dir"):
        declared = SETTINGS[name]
        assert declared is not None
        key = declared.option or name
        if key in values:
            settings[name] = declared.convert(values[key]) if declared.convert else values[key]
        elif declared.convert is not None:
            settings[name] = declared.convert(None) if name != "results_dir" else DEFAULTS.results_dir
    from bench.tracking import check_trackers  # the tracker packages are checked when a command builds a config

    check_trackers(settings.get("loggers", ()))
    return RunConfig(head_params=sort_params(head_params), data=data_options(values), **settings)


def default_threads(local_processes: int = 1) -> int:
    """The CPU cores this process may use, divided by the training processes sharing them on this host; at least 1."""
    return max(1, len(os.sched_getaffinity(0)) // max(1, local_processes))


def find_leaderboard(storage: str | None, results: Path) -> Leaderboard | None:
    """The leaderboard a reading command reads: ``--storage``, else ``<results>/leaderboard.db``; ``None`` if absent."""
    if storage:
        check_storage_url(storage, "--storage")
        return Leaderboard(storage)
    if results.exists() and not results.is_dir():
        raise UsageError(f"--results {results} is not a directory")
    path = database_path(results)
    return Leaderboard(sqlite_url(path)) if database_exists(path) else None


def require_leaderboard(storage: str | None, results: Path) -> Leaderboard:
    """Like :func:`find_leaderboard`, but a missing leaderboard is an error."""
    board = find_leaderboard(storage, results)
    if board is None:
        raise ResultsError(f"no leaderboard in {results} ({database_path(results)} not found); record a run first")
    return board


def reject_renamed_leaderboard(value: str | None) -> None:
    """``--leaderboard`` was renamed: say so in one line."""
    if value is not None:
        raise UsageError(
            "--leaderboard is now --storage (the leaderboard database); the Optuna database is --study-storage"
        )
