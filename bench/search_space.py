"""Search-space ranges shared by heads, encoders and ``bench tune``.

A :class:`Param` is one searched hyperparameter (a float or int range, or a
choice). Heads declare one per hyperparameter, run settings one each
(:mod:`bench.settings`), encoder registry entries may register their own;
``bench tune`` samples them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


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


def standard_space(*, random_init: bool = False) -> dict[str, Param]:
    """The ``bench tune`` ranges the run settings declare (:mod:`bench.settings`): the usual fine-tuning
    ranges of pretrained base-size transformers, or (``random_init``) those of random weights — large
    learning rates, many epochs. An encoder gets these unless it registers its own."""
    from bench.config import SETTINGS  # the settings declare their ranges with Param, defined above

    spaces = {
        name: (declared.search_scratch or declared.search) if random_init else declared.search
        for name, declared in SETTINGS.items()
        if declared is not None
    }
    return {name: space for name, space in spaces.items() if space is not None}


def __getattr__(name: str) -> dict[str, Param]:
    """``PRETRAINED_SPACE`` and ``FROM_SCRATCH_SPACE``: :func:`standard_space` for each kind of weights."""
    if name == "PRETRAINED_SPACE":
        return standard_space()
    if name == "FROM_SCRATCH_SPACE":
        return standard_space(random_init=True)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
