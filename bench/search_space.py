"""Search-space ranges shared by heads, encoders and ``bench tune``.

A :class:`Param` is one searched hyperparameter (a float or int range, or a
choice). Heads declare one per hyperparameter, encoder registry entries one
per training setting; ``bench tune`` samples them. The standard encoder
spaces below are what an encoder gets unless it registers its own.
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

# Random weights (an encoder trained from scratch, or --random-init): large learning rates, many epochs.
FROM_SCRATCH_SPACE: dict[str, Param] = {
    **PRETRAINED_SPACE,
    "lr": Param.real(1e-4, 2e-3, log=True),
    "head_lr": Param.real(1e-4, 3e-3, log=True),
    "batch_size": Param.choice(32, 64),
    "epochs": Param.integer(4, 12),
}
