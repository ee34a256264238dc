"""``bench heads``: the registered classification heads and their hyperparameters."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from bench.cli.app import app, console
from heads import list_heads
from heads.base import Head


@app.command("heads")
def heads_command() -> None:
    """List the classification heads with their hyperparameters and defaults."""
    table = Table(title="classification heads")
    table.add_column("name", style="bold")
    table.add_column("description")
    table.add_column("hyperparameters (default)")
    for name, cls in list_heads().items():
        table.add_row(Text(name), Text(cls.description), Text(describe_hyperparameters(cls)))
    console.print(table)


def describe_hyperparameters(cls: type[Head]) -> str:
    """One line per hyperparameter: ``name=default``, with the allowed values of categorical ones."""
    lines = []
    for param, default in cls.defaults.items():
        allowed = cls.choices.get(param)
        lines.append(f"{param}={default}" + (f" ({'|'.join(allowed)})" if allowed else ""))
    return "\n".join(lines)
