"""One declaration per run setting: its option, help, panel, identity, grid list, tune range and check.

Each :class:`~bench.config.RunConfig` field is declared with :func:`setting`, which stores a
:class:`Setting` in the field's metadata (as transformers' ``HfArgumentParser`` reads dataclass
fields). The command-line options of ``run``, ``grid`` and ``tune``, grid's list options, the
fields left out of the run identity, :func:`bench.config.validate` and the standard ``bench tune``
spaces are all derived from these declarations, so a new setting is one declaration plus its use.
This module stays light (no torch): the command line reads it to build ``--help``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.params import Param

# Help panels of the options (rich_help_panel).
DATA = "Data"
MODEL = "Model"
TRAIN = "Training"
SPEED = "Speed"
TRACKING = "Experiment tracking"
STORAGE = "Results and storage"

METADATA_KEY = "setting"


@dataclass(frozen=True)
class Setting:
    """How one run setting appears to users and to the benchmark.

    ``flags`` are its command-line flags (``("--warmup-ratio",)``; a switch spells both sides,
    ``("--bucketing/--no-bucketing",)``); none for a setting the program sets itself.
    ``identity``: the setting changes what a run computes, so it is part of the config hash;
    ``identity_at_default=False`` leaves it out of the hash while it holds its default, so that adding a
    setting keeps the hash (and the leaderboard rows) of every run recorded before it existed.
    ``grid``: ``bench grid`` takes a comma-separated list of values under the same flag.
    ``search`` is the standard ``bench tune`` range for pretrained weights, ``search_scratch`` the one
    for random weights (default: ``search``). ``check`` tests a value (``None`` is never checked);
    ``requirement`` says what it requires, for the one-line error (``must be at least 1``).
    ``option`` names the option's keyword when it is not the field's name, ``cli_type`` its type when
    it is not the field's, and ``convert`` turns the option's value into the field's.
    """

    help: str
    flags: tuple[str, ...] = ()
    panel: str = TRAIN
    identity: bool = True
    identity_at_default: bool = True
    grid: bool = False
    search: Param | None = None
    search_scratch: Param | None = None
    check: Callable[[Any], bool] | None = None
    requirement: str = ""
    option: str | None = None
    cli_type: Any = None
    convert: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        if self.check is not None and not self.requirement:
            raise TypeError(f"setting {self.flags}: a check needs the requirement it tests, in words")
        if self.grid and not self.flags:
            raise TypeError("a setting bench grid lists needs a command-line flag")

    @property
    def flag(self) -> str:
        """The long flag users see in messages (``--warmup-ratio``; ``--bucketing`` for a switch)."""
        return self.flags[0].split("/")[0] if self.flags else ""

    def problem(self, value: Any) -> str | None:
        """The one-line error for ``value``, or ``None`` when it passes the check."""
        if self.check is None or value is None or self.check(value):
            return None
        shown = repr(value) if isinstance(value, str) else value
        return f"{self.flag} {self.requirement}, got {shown}"


def setting(default: Any = None, *flags: str, default_factory: Callable[[], Any] | None = None, **declared: Any) -> Any:
    """A dataclass field declared by a :class:`Setting` (``flags`` and ``declared`` are its arguments)."""
    metadata = {METADATA_KEY: Setting(flags=flags, **declared)}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def declaration(field: dataclasses.Field[Any]) -> Setting | None:
    """The :class:`Setting` of a dataclass field, ``None`` if it has none."""
    return field.metadata.get(METADATA_KEY)


def at_least(low: float) -> Callable[[Any], bool]:
    """A check: the value is at least ``low``."""
    return lambda value: value >= low


def positive(value: float) -> bool:
    """A finite number above zero."""
    return math.isfinite(value) and value > 0


def in_unit_interval(value: float) -> bool:
    """In ``[0, 1)``."""
    return 0 <= value < 1


def path_text(value: Any) -> str | None:
    """A conversion: a path option's value as the text a field holds (``None`` when not given)."""
    return str(value) if value else None
