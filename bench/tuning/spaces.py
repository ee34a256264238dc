"""Search spaces of ``bench tune``: the encoder's (its registry entry) plus the head's (its declarations).

Each encoder registry entry owns the space of its training settings (for its
pretrained weights and for random weights), and each head declares the range of
each hyperparameter. A YAML/JSON file (``--space``) overrides any parameter, and
an option given explicitly on the command line fixes one.

Parameter names are the run settings' own (those with a declared range,
:data:`RUN_PARAMS`) and ``head.<name>`` for a head's own (``head.dropout``,
``head.lstm_hidden``, ...); a ``--space`` file may still use the earlier
``<head>.<name>``, which is also the name Optuna stores the value under.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.config import SETTINGS
from bench.errors import UsageError
from bench.params import Param
from encoders import encoder_entry
from heads import head_class

__all__ = [
    "HEAD_PREFIX",
    "RUN_PARAMS",
    "Param",
    "SearchSpace",
    "encoder_space",
    "load_space_file",
    "shown_name",
    "standard_space",
]

# How a head's hyperparameter is named in a space: ``head.NAME``, as everywhere. Optuna itself stores it as
# ``<head>.NAME`` (Head.trial_param), so that one study may search several heads whose same-named
# hyperparameters have different ranges.
HEAD_PREFIX = "head."


def standard_space(*, random_init: bool = False) -> dict[str, Param]:
    """The ``bench tune`` ranges the run settings declare (:mod:`bench.settings`): the usual fine-tuning
    ranges of pretrained base-size transformers, or (``random_init``) those of random weights — large
    learning rates, many epochs."""
    spaces = {
        name: (declared.search_scratch or declared.search) if random_init else declared.search
        for name, declared in SETTINGS.items()
        if declared is not None
    }
    return {name: space for name, space in spaces.items() if space is not None}


# RunConfig fields with a declared tune range: every encoder's space covers them.
RUN_PARAMS = tuple(standard_space())


def encoder_space(encoder: str, *, random_init: bool = False) -> dict[str, Param]:
    """The search space for ``encoder`` and its weights (``random_init``: random weights): the standard
    ranges, with those its registry entry sets in their place."""
    entry = encoder_entry(encoder)
    standard = standard_space(random_init=entry.weights(random_init=random_init) != "pretrained")
    return {**standard, **entry.search_space_overrides(random_init=random_init)}


# A range or choice, None (leave the parameter out of the space), or a fixed value.
Override = Param | None | bool | int | float | str


def load_space_file(path: Path) -> dict[str, Override]:
    """Read a ``--space`` YAML/JSON file: parameter name → range, choice list, fixed value or ``null``.

    ``{low, high[, log, step]}`` is a range (int when both ends are integers),
    a list is a categorical choice, a scalar fixes the parameter and ``null``
    takes it out of the space (the ``bench run`` default is used).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot read --space file {path}: {error.strerror or error}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise UsageError(
            f"--space file {path} is not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {first_line}"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"--space file {path}: expected a mapping of parameter name to range, list or value")
    return {str(name): _parse_override(path, str(name), value) for name, value in data.items()}


def _parse_override(path: Path, name: str, value: Any) -> Override:
    where = f"--space file {path}, parameter {name!r}"
    if isinstance(value, list):
        if not value:
            raise UsageError(f"{where}: an empty list of choices")
        return Param.choice(*value)
    if not isinstance(value, dict):
        return value
    unknown = sorted(set(value) - {"low", "high", "log", "step"})
    if unknown or not {"low", "high"} <= set(value):
        raise UsageError(
            f"{where}: a range needs low and high (and optionally log, step), got keys {', '.join(map(str, value))}"
        )
    low, high, step = (_number(where, value.get(key)) for key in ("low", "high", "step"))
    log = bool(value.get("log", False))
    if low is None or high is None:
        raise UsageError(f"{where}: low and high must be numbers")
    if low > high or (log and low <= 0):
        raise UsageError(f"{where}: needs low <= high (and low > 0 with log), got low={low}, high={high}")
    if isinstance(low, int) and isinstance(high, int) and (step is None or isinstance(step, int)):
        return Param.integer(low, high, log=log, step=step or 1)
    return Param.real(float(low), float(high), log=log, step=None if step is None else float(step))


def _number(where: str, value: Any) -> int | float | None:
    """A range bound as a number; YAML reads ``1e-5`` (no dot) as text, so numeric text is accepted."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise UsageError(f"{where}: low, high and step must be numbers, got {value!r}")


@dataclass
class SearchSpace:
    """The space of one ``bench tune`` study: encoder space, head space, overrides and fixed values.

    ``overrides`` replace or add ranges (by Optuna name); ``fixed`` holds the
    parameters taken out of the space with their value (by Optuna name; ``None``:
    the ``bench run`` default) and ``fixed_by`` where each was fixed.
    """

    encoder: str
    head: str
    random_init: bool = False
    overrides: dict[str, Param] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    fixed_by: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        encoder: str,
        head: str,
        file_overrides: Mapping[str, Override],
        explicit: Mapping[str, Any],
        *,
        random_init: bool = False,
        from_file: Collection[str] = (),
    ) -> SearchSpace:
        """The space for ``encoder`` + ``head`` with a ``--space`` file's entries and explicit options applied.

        ``explicit`` (name → value, from options given on the command line or, for the names in
        ``from_file``, in the ``--config`` file) wins over the ``--space`` file. ``None`` values in the file leave
        the parameter out.
        """
        head_type = head_class(head)
        file_overrides, explicit = _current_spelling(head, file_overrides), _current_spelling(head, explicit)
        known = {*RUN_PARAMS, *(HEAD_PREFIX + name for name in head_type.defaults)}
        unknown = sorted(set(file_overrides) - known)
        if unknown:
            raise UsageError(
                f"--space names unknown parameter {unknown[0]!r}; for {encoder} + {head} the parameters are: "
                f"{', '.join(sorted(known))}"
            )
        space = cls(encoder, head, random_init)
        for name, value in file_overrides.items():
            if isinstance(value, Param):
                space.overrides[name] = value
            else:
                space.fixed[name], space.fixed_by[name] = value, "--space"
        for name, value in explicit.items():
            space.overrides.pop(name, None)
            space.fixed[name], space.fixed_by[name] = value, "--config" if name in from_file else "command line"
        return space

    def _declared(self) -> dict[str, tuple[Param, str]]:
        """The encoder's and the head's own ranges by Optuna name, with where each comes from."""
        origin = f"encoder {self.encoder}" + (" (random init)" if self.random_init else "")
        declared = {
            name: (param, origin) for name, param in encoder_space(self.encoder, random_init=self.random_init).items()
        }
        head_space = _current_spelling(self.head, head_class(self.head).search_space())
        declared.update({name: (param, f"head {self.head}") for name, param in head_space.items()})
        return declared

    def searched(self) -> dict[str, Param]:
        """Every sampled parameter and its range: declared ones and ``--space`` ranges, minus the fixed ones."""
        params = {name: param for name, (param, _) in self._declared().items()}
        params.update(self.overrides)
        return {name: param for name, param in params.items() if name not in self.fixed}

    def sample(self, trial: Any) -> dict[str, Any]:
        """RunConfig updates for one trial: searched fields, fixed file values, and ``head_params`` (a dict)."""
        head_type = head_class(self.head)
        values = {
            name: param.suggest(
                trial, head_type.trial_param(name.removeprefix(HEAD_PREFIX)) if name.startswith(HEAD_PREFIX) else name
            )
            for name, param in self.searched().items()
        }
        values.update({name: value for name, value in self.fixed.items() if value is not None})
        updates: dict[str, Any] = {name: value for name, value in values.items() if name in RUN_PARAMS}
        updates["head_params"] = {
            name.removeprefix(HEAD_PREFIX): value for name, value in values.items() if name.startswith(HEAD_PREFIX)
        }
        return updates

    def describe(self) -> list[tuple[str, str, str]]:
        """Rows (name, range or value, origin) for a table of the space."""
        declared = self._declared()
        names = [*declared, *(name for name in [*self.overrides, *self.fixed] if name not in declared)]
        rows: list[tuple[str, str, str]] = []
        for name in dict.fromkeys(names):
            if name in self.fixed:
                value = self.fixed[name]
                rows.append(
                    (name, "bench run default" if value is None else str(value), f"fixed ({self.fixed_by[name]})")
                )
            elif name in self.overrides:
                rows.append((name, self.overrides[name].describe(), "--space"))
            else:
                param, origin = declared[name]
                rows.append((name, param.describe(), origin))
        return rows


def _current_spelling(head: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with the earlier spelling of a head parameter, ``<head>.NAME`` (``bilstm.dropout``), read as
    ``head.NAME``; space files written for earlier versions keep working."""
    prefix = f"{head}."
    return {
        HEAD_PREFIX + name.removeprefix(prefix) if name.startswith(prefix) else name: value
        for name, value in values.items()
    }


def shown_name(optuna_name: str) -> str:
    """How an Optuna parameter name is shown: a head's ``<head>.NAME`` as ``head.NAME`` (run settings have no dot)."""
    _, dot, name = optuna_name.partition(".")
    return HEAD_PREFIX + name if dot else optuna_name
