"""What every classification head provides."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from bench.search_space import Param
from encoders.base import EncoderOutput
from heads.hyperparameters import Hyperparameter


class Head(nn.Module, ABC):
    """Maps an :class:`EncoderOutput` to class logits.

    ``hyperparameters`` declares the head's own hyperparameters, once each;
    ``__init__`` takes ``hidden_size``, ``num_labels`` and those names as keywords,
    already converted and checked. ``defaults`` (name → default) is derived from
    the declarations; ``name`` is set by :func:`heads.register_head`.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    hyperparameters: ClassVar[tuple[Hyperparameter, ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names = [param.name for param in cls.hyperparameters]
        if len(set(names)) != len(names):
            raise TypeError(f"{cls.__name__} declares a hyperparameter twice: {', '.join(names)}")
        cls.defaults = {param.name: param.default for param in cls.hyperparameters}

    @abstractmethod
    def forward(self, features: EncoderOutput) -> torch.Tensor:
        """Logits of shape ``(batch, num_labels)``."""

    @classmethod
    def trial_param(cls, param: str) -> str:
        """The Optuna parameter name of ``param``: prefixed with the head name so heads sharing a study never clash."""
        return f"{cls.name}.{param}"

    @classmethod
    def search_space(cls) -> dict[str, Param]:
        """The searched hyperparameters by Optuna name (``bilstm.dropout``); the others keep their default."""
        spaces = {param.name: param.space() for param in cls.hyperparameters}
        return {cls.trial_param(name): space for name, space in spaces.items() if space is not None}

    @classmethod
    def suggest(cls, trial: Any) -> dict[str, Any]:
        """Sample the searched hyperparameters from an Optuna ``trial``."""
        prefix = cls.trial_param("")
        return {name.removeprefix(prefix): space.suggest(trial, name) for name, space in cls.search_space().items()}
