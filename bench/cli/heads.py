"""``bench heads``: the registered classification heads and their hyperparameters."""

from __future__ import annotations

from rich.table import Table

from bench.cli import options as opt
from bench.cli.app import app, console
from bench.escaping import terminal
from heads import list_heads
from heads.base import Head


@app.command("heads")
def heads_command(plugin: opt.Plugins = None) -> None:
    """List the classification heads with their hyperparameters, defaults and `bench tune` ranges."""
    table = Table(title="classification heads")
    table.add_column("name", style="bold")
    table.add_column("description")
    table.add_column("hyperparameters (default)")
    table.add_column("bench tune searches")
    for name, cls in list_heads().items():
        table.add_row(
            terminal(name), terminal(cls.description), terminal(describe_hyperparameters(cls)), terminal(describe_space(cls))
        )
    console.print(table)


def describe_hyperparameters(cls: type[Head]) -> str:
    """One line per hyperparameter: ``name=default`` with its allowed values or range, and what it is."""
    return "\n".join(f"{param.describe()}: {param.help}" for param in cls.hyperparameters)


def describe_space(cls: type[Head]) -> str:
    """One line per searched hyperparameter: its name and range."""
    prefix = cls.trial_param("")
    return "\n".join(f"{name.removeprefix(prefix)} {space.describe()}" for name, space in cls.search_space().items())
