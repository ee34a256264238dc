"""Head registry: ``register_head``, ``create_head``, ``list_heads``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bench.errors import UsageError
from heads.base import Head

_REGISTRY: dict[str, type[Head]] = {}
_TRUE_WORDS = frozenset({"true", "yes", "1"})
_FALSE_WORDS = frozenset({"false", "no", "0"})


def register_head(name: str) -> Callable[[type[Head]], type[Head]]:
    """Register a :class:`Head` subclass under ``name`` (and set its ``name``)."""

    def decorate(cls: type[Head]) -> type[Head]:
        if name in _REGISTRY:
            raise ValueError(f"head {name!r} is registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def list_heads() -> dict[str, type[Head]]:
    """All registered heads, by name."""
    return {name: _REGISTRY[name] for name in sorted(_REGISTRY)}


def head_class(name: str) -> type[Head]:
    """The class registered as ``name``; :class:`UsageError` if there is none."""
    if name not in _REGISTRY:
        raise UsageError(f"unknown head {name!r}; choose one of: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def resolve_head_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The head's defaults updated with ``params``; unknown names or unusable values are a :class:`UsageError`.

    Values are converted to the type of their default, so text from the command
    line (``"256"``, ``"0.2"``) works, and a list given for a text hyperparameter
    is joined with commas (``[2, 3, 4]`` → ``"2,3,4"``).
    """
    cls = head_class(name)
    unknown = sorted(set(params) - set(cls.defaults))
    if unknown:
        raise UsageError(
            f"head {name!r} has no hyperparameter {', '.join(unknown)}; it has: {', '.join(sorted(cls.defaults))}"
        )
    resolved = dict(cls.defaults)
    for param, value in params.items():
        resolved[param] = _coerce(name, param, value, cls.defaults[param])
    return resolved


def create_head(name: str, hidden_size: int, num_labels: int, params: Mapping[str, Any] | None = None) -> Head:
    """Build head ``name`` for ``hidden_size`` inputs and ``num_labels`` classes."""
    return head_class(name)(hidden_size, num_labels, **resolve_head_params(name, params or {}))


def _coerce(head: str, param: str, value: Any, default: Any) -> Any:
    """``value`` converted to the type of ``default``; :class:`UsageError` if it cannot be."""
    wrong = UsageError(f"head {head!r}: {param} must be {type(default).__name__}, got {value!r}")
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS | _FALSE_WORDS:
            return value.strip().lower() in _TRUE_WORDS
        raise wrong
    if isinstance(value, bool):
        raise wrong
    if isinstance(default, int):
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise wrong from None
        raise wrong
    if isinstance(default, float):
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise wrong from None
        raise wrong
    if isinstance(default, str):
        if isinstance(value, str):
            return value.strip()
        if isinstance(value, (int, float)):
            return str(value)
        if isinstance(value, (list, tuple)) and all(isinstance(item, (int, str)) for item in value):
            return ",".join(str(item).strip() for item in value)
        raise wrong
    return value
