"""``bench heads``: the registered classification heads and their hyperparameters."""

from __future__ import annotations

from bench.cli import options as opt
from bench.cli.app import app, console
from bench.escaping import terminal
from heads import list_heads
from heads.base import Head


@app.command("heads")
def heads_command(plugin: opt.Plugins = None) -> None:
    """List the classification heads with their hyperparameters, defaults and `bench tune` ranges."""
    console.print(terminal("classification heads", style="bold"), soft_wrap=not console.is_terminal)
    for name, cls in list_heads().items():
        print_head(name, cls)


def print_head(name: str, cls: type[Head]) -> None:
    """One head as a block: name and description, then one line per hyperparameter and per searched range.

    Lines are never cut into columns: a long one runs on (a terminal wraps it, a pipe keeps it whole).
    """
    console.print()
    line = terminal(name, style="bold")
    line.append_text(terminal(f"  {cls.description}"))
    console.print(line, soft_wrap=not console.is_terminal)
    for title, text in (
        ("hyperparameters (default)", describe_hyperparameters(cls)),
        ("bench tune searches", describe_space(cls)),
    ):
        if text:
            console.print(terminal(f"  {title}", style="dim"), soft_wrap=not console.is_terminal)
            for entry in text.splitlines():
                console.print(terminal(f"    {entry}"), soft_wrap=not console.is_terminal)


def describe_hyperparameters(cls: type[Head]) -> str:
    """One line per hyperparameter: ``name=default`` with its allowed values or range, and what it is."""
    return "\n".join(f"{param.describe()}: {param.help}" for param in cls.hyperparameters)


def describe_space(cls: type[Head]) -> str:
    """One line per searched hyperparameter: its name and range."""
    prefix = cls.trial_param("")
    return "\n".join(f"{name.removeprefix(prefix)} {space.describe()}" for name, space in cls.search_space().items())
