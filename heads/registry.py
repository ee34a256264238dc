"""Head registry: ``register_head``, ``create_head``, ``list_heads``, ``resolve_head_params``."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from bench import plugins
from bench.errors import UsageError
from heads.base import Head

_REGISTRY: dict[str, type[Head]] = {}


def register_head(name: str) -> Callable[[type[Head]], type[Head]]:
    """Register a :class:`Head` subclass under ``name`` (and set its ``name``).

    Its ``__init__`` must take ``hidden_size``, ``num_labels`` and every declared
    hyperparameter by name; a second head under the same name is a :class:`UsageError`.
    """

    def decorate(cls: type[Head]) -> type[Head]:
        if not (isinstance(cls, type) and issubclass(cls, Head)):
            raise TypeError(f"register_head({name!r}) decorates a heads.Head subclass, not {cls!r}")
        if name in _REGISTRY:
            raise UsageError(f"head {name!r} is already registered (by {_REGISTRY[name].__module__})")
        _check_init(name, cls)
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def _check_init(name: str, cls: type[Head]) -> None:
    """Raise ``TypeError`` unless ``cls.__init__`` accepts exactly the declared hyperparameters."""
    parameters = inspect.signature(cls.__init__).parameters
    if any(parameter.kind is parameter.VAR_KEYWORD for parameter in parameters.values()):
        return
    wanted = {"hidden_size", "num_labels", *cls.defaults}
    taken = {
        key for key, parameter in parameters.items() if key != "self" and parameter.kind is not parameter.VAR_POSITIONAL
    }
    if wanted != taken:
        raise TypeError(
            f"head {name!r}: __init__ takes {', '.join(sorted(taken)) or 'nothing'}; it must take hidden_size, "
            f"num_labels and its declared hyperparameters ({', '.join(cls.defaults) or 'none'})"
        )


def list_heads() -> dict[str, type[Head]]:
    """All registered heads (plugins included), by name."""
    plugins.load_configured()
    return {name: _REGISTRY[name] for name in sorted(_REGISTRY)}


def head_class(name: str) -> type[Head]:
    """The class registered as ``name``; :class:`UsageError` if there is none."""
    plugins.load_configured()
    if name not in _REGISTRY:
        raise UsageError(f"unknown head {name!r}; choose one of: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def resolve_head_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Every hyperparameter of head ``name``: its default, or the converted and checked value in ``params``.

    Unknown names or unusable values are a :class:`UsageError`; text from the
    command line (``"256"``, ``"0.2"``) is converted to the declared type.
    """
    cls = head_class(name)
    unknown = sorted(set(params) - set(cls.defaults))
    if unknown:
        raise UsageError(
            f"head {name!r} has no hyperparameter {', '.join(unknown)}; it has: {', '.join(sorted(cls.defaults))}"
        )
    return {
        param.name: param.resolve(name, params[param.name]) if param.name in params else param.default
        for param in cls.hyperparameters
    }


def create_head(name: str, hidden_size: int, num_labels: int, params: Mapping[str, Any] | None = None) -> Head:
    """Build head ``name`` for ``hidden_size`` inputs and ``num_labels`` classes."""
    return head_class(name)(hidden_size=hidden_size, num_labels=num_labels, **resolve_head_params(name, params or {}))
