"""What every classification head provides."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from bench.errors import UsageError
from encoders.base import EncoderOutput


class Head(nn.Module, ABC):
    """Maps an :class:`EncoderOutput` to class logits.

    ``defaults`` declares the head's own hyperparameters (name → default value);
    ``__init__`` takes ``hidden_size``, ``num_labels`` and exactly those names.
    ``choices`` lists the allowed values of categorical hyperparameters;
    ``name`` is set by :func:`heads.register_head`.
    """

    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    choices: ClassVar[dict[str, tuple[str, ...]]] = {}
    description: ClassVar[str] = ""

    @abstractmethod
    def forward(self, features: EncoderOutput) -> torch.Tensor:
        """Logits of shape ``(batch, num_labels)``."""

    @classmethod
    def suggest(cls, trial: Any) -> dict[str, Any]:
        """Sample this head's hyperparameters from an Optuna ``trial`` (its search space)."""
        return {}

    @classmethod
    def trial_param(cls, param: str) -> str:
        """The Optuna parameter name of ``param``: prefixed with the head name so heads sharing a study never clash."""
        return f"{cls.name}.{param}"

    @classmethod
    def check(cls, ok: bool, param: str, requirement: str, value: Any) -> None:
        """Raise :class:`UsageError` saying ``param`` must be ``requirement`` unless ``ok``."""
        if not ok:
            raise UsageError(f"head {cls.name!r}: {param} must be {requirement}, got {value!r}")
