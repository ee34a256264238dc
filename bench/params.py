"""A tune search range (:class:`Param`): what heads and run settings declare for ``bench tune``."""

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
