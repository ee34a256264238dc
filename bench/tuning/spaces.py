"""Search spaces of ``bench tune``: one per encoder family (here) plus each head's own (``Head.suggest``).

The encoder spaces live in this module, keyed by encoder family, because the
encoder modules belong to the encoder registry; a family without an entry uses
:data:`DEFAULT_SPACE`. A YAML/JSON file (``--space``) overrides any parameter,
and an option given explicitly on the command line fixes one.

Parameter names are Optuna's: ``lr``, ``head_lr``, ``weight_decay``,
``warmup_ratio``, ``batch_size``, ``epochs``, ``max_len``, and ``<head>.<name>``
for a head's own (``bilstm.dropout``, ``bilstm.lstm_hidden``, ...).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from bench.errors import UsageError
from encoders.registry import HF_PREFIX
from heads import head_class

# RunConfig fields every encoder family searches.
RUN_PARAMS = ("lr", "head_lr", "weight_decay", "warmup_ratio", "batch_size", "epochs", "max_len")


@dataclass(frozen=True)
class Param:
    """One searched hyperparameter: a float or int range (optionally log-scaled or stepped) or a choice."""

    kind: Literal["float", "int", "categorical"]
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    @classmethod
    def real(cls, low: float, high: float, *, log: bool = False, step: float | None = None) -> Param:
        """A float in ``[low, high]``."""
        return cls("float", low, high, log, step)

    @classmethod
    def integer(cls, low: int, high: int, *, log: bool = False, step: int = 1) -> Param:
        """An integer in ``[low, high]``."""
        return cls("int", low, high, log, step)

    @classmethod
    def choice(cls, *choices: Any) -> Param:
        """One of ``choices``."""
        return cls("categorical", choices=tuple(choices))

    def suggest(self, trial: Any, name: str) -> Any:
        """Sample this parameter as ``name`` from an Optuna trial."""
        if self.kind == "float":
            return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)
        if self.kind == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return trial.suggest_categorical(name, list(self.choices))

    def describe(self) -> str:
        """``[low, high]`` (with ``log``/``step``) or ``{a, b, c}``."""
        if self.kind == "categorical":
            return "{" + ", ".join(str(choice) for choice in self.choices) + "}"
        extra = " log" if self.log else (f" step {self.step}" if self.step not in (None, 1) else "")
        return f"[{self.low:g}, {self.high:g}]{extra}"


# Pretrained base-size transformers (KoBERT, KoELECTRA-base, any hf: model): the usual fine-tuning ranges.
PRETRAINED_SPACE: dict[str, Param] = {
    "lr": Param.real(1e-5, 1e-4, log=True),
    "head_lr": Param.real(1e-5, 1e-3, log=True),
    "weight_decay": Param.real(0.0, 0.1),
    "warmup_ratio": Param.real(0.0, 0.2),
    "batch_size": Param.choice(16, 32, 64),
    "epochs": Param.integer(2, 5),
    "max_len": Param.choice(64, 128),
}

# Search spaces by encoder family (the registry name; ``hf`` for every ``hf:<model-id>``).
search_space: dict[str, dict[str, Param]] = {
    "kobert": PRETRAINED_SPACE,
    "koelectra": PRETRAINED_SPACE,
    "hf": PRETRAINED_SPACE,
    # Small discriminator: tolerates and needs larger learning rates, more epochs.
    "koelectra-small": {
        **PRETRAINED_SPACE,
        "lr": Param.real(3e-5, 3e-4, log=True),
        "head_lr": Param.real(3e-5, 3e-3, log=True),
        "batch_size": Param.choice(32, 64),
        "epochs": Param.integer(3, 8),
    },
    # Randomly initialised small BERT trained from scratch: large learning rates, many epochs.
    "scratch": {
        **PRETRAINED_SPACE,
        "lr": Param.real(1e-4, 2e-3, log=True),
        "head_lr": Param.real(1e-4, 3e-3, log=True),
        "batch_size": Param.choice(32, 64),
        "epochs": Param.integer(4, 12),
    },
}
DEFAULT_SPACE = PRETRAINED_SPACE


def encoder_family(encoder: str) -> str:
    """The key of :data:`search_space` for an encoder name."""
    return "hf" if encoder.startswith(HF_PREFIX) else encoder


def encoder_space(encoder: str) -> dict[str, Param]:
    """The search space of ``encoder``'s family (or :data:`DEFAULT_SPACE`)."""
    return dict(search_space.get(encoder_family(encoder), DEFAULT_SPACE))


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
    """The space of one ``bench tune`` study: encoder family space, head space, overrides and fixed values.

    ``overrides`` replace or add ranges (by Optuna name); ``fixed`` holds the
    parameters taken out of the space with their value (by Optuna name; ``None``:
    the ``bench run`` default) and ``fixed_by`` where each was fixed.
    """

    encoder: str
    head: str
    overrides: dict[str, Param] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    fixed_by: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls, encoder: str, head: str, file_overrides: Mapping[str, Override], explicit: Mapping[str, Any]
    ) -> SearchSpace:
        """The space for ``encoder`` + ``head`` with a ``--space`` file's entries and explicit options applied.

        ``explicit`` (Optuna name → value, from options given on the command line)
        wins over the file. ``None`` values in the file leave the parameter out.
        """
        known = {*RUN_PARAMS, *(head_class(head).trial_param(name) for name in head_class(head).defaults)}
        unknown = sorted(set(file_overrides) - known)
        if unknown:
            raise UsageError(
                f"--space names unknown parameter {unknown[0]!r}; for {encoder} + {head} the parameters are: {', '.join(sorted(known))}"
            )
        space = cls(encoder, head)
        for name, value in file_overrides.items():
            if isinstance(value, Param):
                space.overrides[name] = value
            else:
                space.fixed[name], space.fixed_by[name] = value, "--space"
        for name, value in explicit.items():
            space.overrides.pop(name, None)
            space.fixed[name], space.fixed_by[name] = value, "command line"
        return space

    def run_params(self) -> dict[str, Param]:
        """The searched RunConfig fields and their ranges."""
        params = {**encoder_space(self.encoder), **{k: v for k, v in self.overrides.items() if k in RUN_PARAMS}}
        return {name: param for name, param in params.items() if name not in self.fixed}

    def sample(self, trial: Any) -> dict[str, Any]:
        """RunConfig updates for one trial: searched fields, fixed file values, and ``head_params`` (a dict)."""
        updates: dict[str, Any] = {name: param.suggest(trial, name) for name, param in self.run_params().items()}
        updates.update({name: value for name, value in self.fixed.items() if name in RUN_PARAMS and value is not None})
        prefix = head_class(self.head).trial_param("")
        head_overrides = {name: param for name, param in self.overrides.items() if name.startswith(prefix)}
        head_fixed = {name: value for name, value in self.fixed.items() if name.startswith(prefix)}
        cls = head_class(self.head)
        head_params = cls.suggest(_OverridingTrial(trial, head_overrides, head_fixed))
        for name, param in head_overrides.items():
            head_params.setdefault(name.removeprefix(prefix), param.suggest(trial, name))
        for name, value in head_fixed.items():
            if value is None:
                head_params.pop(name.removeprefix(prefix), None)
            else:
                head_params[name.removeprefix(prefix)] = value
        updates["head_params"] = head_params
        return updates

    def describe(self) -> list[tuple[str, str, str]]:
        """Rows (name, range or value, origin) for a table of the space."""
        family = encoder_family(self.encoder)
        defaults = {
            name: (param, f"encoder {family}" if family in search_space else "default")
            for name, param in encoder_space(self.encoder).items()
        }
        recorder = _RecordingTrial()
        head_class(self.head).suggest(recorder)
        defaults.update({name: (param, f"head {self.head}") for name, param in recorder.params.items()})
        names = [*defaults, *(name for name in [*self.overrides, *self.fixed] if name not in defaults)]
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
                param, origin = defaults[name]
                rows.append((name, param.describe(), origin))
        return rows


class _OverridingTrial:
    """An Optuna trial as a head's ``suggest`` sees it: overridden names use the ``--space`` range, fixed ones their value."""

    def __init__(self, trial: Any, overrides: Mapping[str, Param], fixed: Mapping[str, Any]) -> None:
        self._trial = trial
        self._overrides = overrides
        self._fixed = fixed

    def _pick(self, name: str) -> tuple[bool, Any]:
        if name in self._fixed:
            return True, self._fixed[name]
        if name in self._overrides:
            return True, self._overrides[name].suggest(self._trial, name)
        return False, None

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False) -> Any:
        handled, value = self._pick(name)
        return value if handled else self._trial.suggest_float(name, low, high, step=step, log=log)

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> Any:
        handled, value = self._pick(name)
        return value if handled else self._trial.suggest_int(name, low, high, step=step, log=log)

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        handled, value = self._pick(name)
        return value if handled else self._trial.suggest_categorical(name, choices)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._trial, attribute)


class _RecordingTrial:
    """Stands in for a trial to read a head's space: records each suggestion and returns its first value."""

    def __init__(self) -> None:
        self.params: dict[str, Param] = {}

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        self.params[name] = Param.real(low, high, log=log, step=step)
        return low

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        self.params[name] = Param.integer(low, high, log=log, step=step)
        return low

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        self.params[name] = Param.choice(*choices)
        return next(iter(choices))
