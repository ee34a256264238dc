"""One declaration per head hyperparameter: default, type, allowed values or range, search space, help.

Validation, ``bench heads``, the command-line help, the ``bench tune`` search
space and grid checks all read these declarations; a head states nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.errors import UsageError
from bench.search_space import Param

Value = bool | int | float | str
_TRUE_WORDS = frozenset({"true", "yes", "1"})
_FALSE_WORDS = frozenset({"false", "no", "0"})


@dataclass(frozen=True)
class Hyperparameter:
    """A head hyperparameter; its type is the type of ``default``.

    ``choices`` lists the allowed values (they are also the search space unless
    ``search`` says otherwise); ``low``/``high`` bound a number (``high_open``:
    ``high`` itself is not allowed); ``rule`` checks anything else, described by
    ``rule_text``. ``search`` is the range ``bench tune`` samples; a
    hyperparameter without ``search`` or ``choices`` keeps its default there.
    """

    name: str
    default: Value
    help: str
    choices: tuple[Value, ...] = ()
    low: float | None = None
    high: float | None = None
    high_open: bool = False
    rule: Callable[[Any], bool] | None = None
    rule_text: str = ""
    search: Param | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.default, (bool, int, float, str)):
            raise TypeError(f"hyperparameter {self.name!r}: the default must be a bool, int, float or str")
        if self.rule is not None and not self.rule_text:
            raise TypeError(f"hyperparameter {self.name!r}: a rule needs rule_text saying what it requires")
        if self.problem(self.default) is not None:
            raise TypeError(f"hyperparameter {self.name!r}: its default {self.default!r} must be {self.requirement()}")

    @property
    def kind(self) -> type:
        """The Python type of the values."""
        return type(self.default)

    def requirement(self) -> str:
        """What an allowed value is, in words (``in [0, 1)``, ``at least 1``, ``one of a, b``)."""
        if self.choices:
            return "one of " + ", ".join(str(choice) for choice in self.choices)
        if self.low is not None and self.high is not None:
            return f"in [{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"at least {self.low:g}"
        if self.high is not None:
            return f"below {self.high:g}" if self.high_open else f"at most {self.high:g}"
        return self.rule_text or f"a {self.kind.__name__}"

    def problem(self, value: Any) -> str | None:
        """Why ``value`` (already of the right type) is not allowed, or ``None`` when it is."""
        allowed = (
            (not self.choices or value in self.choices)
            and (self.low is None or value >= self.low)
            and (self.high is None or (value < self.high if self.high_open else value <= self.high))
            and (self.rule is None or self.rule(value))
        )
        return None if allowed else f"must be {self.requirement()}"

    def resolve(self, head: str, value: Any) -> Value:
        """``value`` converted to this hyperparameter's type and checked; :class:`UsageError` naming it otherwise.

        Text from the command line (``"256"``, ``"0.2"``, ``"yes"``) is converted,
        and a list given for a text hyperparameter is joined with commas (``[2, 3]`` → ``"2,3"``).
        """
        converted = self._convert(value)
        if converted is None:
            raise UsageError(f"head {head!r}: {self.name} must be {self.kind.__name__}, got {value!r}")
        problem = self.problem(converted)
        if problem is not None:
            raise UsageError(f"head {head!r}: {self.name} {problem}, got {value!r}")
        return converted

    def _convert(self, value: Any) -> Value | None:
        if self.kind is bool:
            if isinstance(value, bool):
                return value
            word = value.strip().lower() if isinstance(value, str) else None
            return None if word not in _TRUE_WORDS | _FALSE_WORDS else word in _TRUE_WORDS
        if isinstance(value, bool):
            return None
        if self.kind is str:
            if isinstance(value, str):
                return value.strip()
            if isinstance(value, (int, float)):
                return str(value)
            if isinstance(value, (list, tuple)) and all(isinstance(item, (int, str)) for item in value):
                return ",".join(str(item).strip() for item in value)
            return None
        if isinstance(value, str):
            try:
                value = self.kind(value.strip())
            except ValueError:
                return None
        if self.kind is int:
            return value if isinstance(value, int) else None
        return float(value) if isinstance(value, (int, float)) else None

    def space(self) -> Param | None:
        """The range ``bench tune`` samples: ``search``, else the choices, else none (the default is kept)."""
        if self.search is not None:
            return self.search
        return Param.choice(*self.choices) if self.choices else None

    def describe(self) -> str:
        """``name=default``, with the allowed values or range (``pooling=last (last|mean|max)``)."""
        if self.choices:
            return f"{self.name}={self.default} ({'|'.join(map(str, self.choices))})"
        if self.low is None and self.high is None and self.rule is None:
            return f"{self.name}={self.default}"
        return f"{self.name}={self.default} ({self.requirement()})"


def dropout(default: float = 0.1) -> Hyperparameter:
    """The dropout probability most heads declare: in [0, 1), searched over [0, 0.5]."""
    return Hyperparameter(
        "dropout", default, "Dropout probability.", low=0.0, high=1.0, high_open=True, search=Param.real(0.0, 0.5)
    )
