"""The ``bench`` Typer application; command modules register on :data:`app` and are imported lazily.

``bench --help`` lists every command from :data:`COMMANDS` without importing any
command module; running a command imports only the module that defines it, so
commands that train nothing never import torch, Lightning or transformers.
"""

from __future__ import annotations

import importlib
import sys
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:
    from typer import _click as click  # Typer's own copy of click, whose classes its groups use

from bench.errors import BenchError
from bench.escaping import one_line, terminal
from bench.urls import redact_text

# Every command: the module that registers it, and its one-line help for `bench --help` (the first line of the
# command's docstring; tests/test_cli_startup.py keeps the two equal).
COMMANDS: dict[str, tuple[str, str]] = {
    "run": (
        "bench.cli.run",
        "Train ENCODER + HEAD on DATA, test the best epoch, record the run in the leaderboard "
        "(one run per fold with --folds).",
    ),
    "grid": (
        "bench.cli.grid",
        "Run every combination of ENCODERS × HEADS × SEEDS × hyperparameter lists into the leaderboard.",
    ),
    "tune": (
        "bench.cli.tune",
        "Search ENCODER + HEAD hyperparameters with Optuna (seeded TPE, pruning); every trial is a leaderboard run.",
    ),
    "baseline": (
        "bench.cli.baseline",
        "Record reference rows on DATA's split: TF-IDF (char n-grams) + logistic regression, and the majority class.",
    ),
    "leaderboard": (
        "bench.cli.leaderboard",
        "Recorded runs sorted by test macro-F1, one table per dataset fingerprint.",
    ),
    "show": (
        "bench.cli.leaderboard",
        "One run: config, scores, per-class precision/recall/F1 and the confusion matrix.",
    ),
    "errors": (
        "bench.cli.leaderboard",
        "Misclassified test sentences of a run: gold, predicted and confidence, most confident mistakes first.",
    ),
    "compare": (
        "bench.cli.leaderboard",
        "Paired bootstrap of test macro-F1, A − B, on the test examples both were scored on.",
    ),
    "export": ("bench.cli.leaderboard", "The leaderboard as csv, md, latex, html or json."),
    "report": (
        "bench.cli.report",
        "Write one self-contained HTML report (inline plots, no network needed) of every recorded run.",
    ),
    "predict": (
        "bench.cli.predict",
        "Label TEXTS (and/or the texts of --input) with a run's best weights (--run) or an exported model (--model).",
    ),
    "export-model": (
        "bench.cli.predict",
        "Copy a run's best weights, tokenizer and model.json into TARGET for `bench predict --model TARGET`.",
    ),
    "data": ("bench.cli.data", "Look at data sources before training on them."),
    "encoders": (
        "bench.cli.encoders",
        "List the registered encoders with their hub ids, parameter counts and default learning rates.",
    ),
    "heads": (
        "bench.cli.heads",
        "List the classification heads with their hyperparameters, defaults and `bench tune` ranges.",
    ),
    "tokenize": (
        "bench.cli.encoders",
        "Show the pieces and ids (with special tokens) an encoder's tokenizer gives each text.",
    ),
}


class LazyGroup(TyperGroup):
    """A Typer group that imports a command's module only when the command runs (or its own help is shown)."""

    listing = False  # while True (rendering `bench --help`), unloaded commands are stand-ins with their help line

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *(name for name in super().list_commands(ctx) if name not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return self.commands.get(cmd_name)
        if self.listing:
            short_help = COMMANDS[cmd_name][1]
            return TyperCommand(cmd_name, short_help=short_help, help=short_help)
        self.commands[cmd_name] = registered_command(cmd_name)
        return self.commands[cmd_name]

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self.listing = False

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return self._click_resolve_command(ctx, args)
        except typer.TyperException as error:  # click's UsageError: no such command
            matches = get_close_matches(args[0], self.list_commands(ctx)) if args else []
            if matches:
                error.message = f"{error.message.rstrip('.')}. Did you mean {', '.join(map(repr, matches))}?"
            raise


app = typer.Typer(
    name="bench",
    cls=LazyGroup,
    help="Compare Korean encoders and classification heads on emotion data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)
INTERRUPTED = 130  # exit code after Ctrl-C


def registered_command(name: str) -> click.Command:
    """The click command (or group) ``name`` of :data:`COMMANDS`: its module imported (which registers it on
    :data:`app`), then built from its Typer declaration."""
    importlib.import_module(COMMANDS[name][0])
    settings: dict[str, Any] = {
        "pretty_exceptions_short": app.pretty_exceptions_short,
        "rich_markup_mode": app.rich_markup_mode,
    }
    for info in app.registered_commands:
        if (info.name or typer.main.get_command_name(info.callback.__name__)) == name:  # type: ignore[union-attr]
            return typer.main.get_command_from_info(info, **settings)
    for group in app.registered_groups:
        if group.name == name:
            return typer.main.get_group_from_info(group, suggest_commands=app.suggest_commands, **settings)
    raise LookupError(f"{COMMANDS[name][0]} registers no command {name!r}")


def fail(message: str, exit_code: int = 2) -> None:
    """Print ``message`` as one line on stderr (URL passwords hidden, control characters visible) and exit."""
    err_console.print(f"error: {one_line(redact_text(message))}", markup=False, highlight=False, soft_wrap=True)
    raise SystemExit(exit_code)


def warn(message: str) -> None:
    """Print ``message`` as one warning line on stderr."""
    err_console.print(f"warning: {one_line(redact_text(message))}", markup=False, highlight=False, soft_wrap=True)


def add_row(table: Table, *cells: str | Text, style: str | None = None) -> None:
    """Add a row to ``table``; plain strings are shown literally (never parsed as markup, control characters
    visible)."""
    table.add_row(*(terminal(cell) if isinstance(cell, str) else cell for cell in cells), style=style)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``bench`` console script: one-line errors, exit code 2."""
    command = typer.main.get_group(app)
    try:
        result = command.main(args=argv, prog_name="bench", standalone_mode=False)
    except typer.Abort:
        fail("interrupted (Ctrl-C); rerun the same command to resume", INTERRUPTED)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except typer.TyperException as error:
        context = getattr(error, "ctx", None)
        if type(error).__name__ == "NoArgsIsHelpError" and context is not None:
            console.print(context.get_help(), markup=False, highlight=False)
            sys.exit(0)
        fail(error.format_message(), getattr(error, "exit_code", 2))
    except BenchError as error:
        fail(str(error), error.exit_code)
    if result == INTERRUPTED:
        # Typer returns Ctrl-C (a KeyboardInterrupt in any command; SIGTERM during training too) as 130.
        fail("interrupted (Ctrl-C); rerun the same command to resume", INTERRUPTED)
    if isinstance(result, int) and result:
        sys.exit(result)
