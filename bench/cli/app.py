"""The ``bench`` Typer application; command modules register on :data:`app`."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bench.errors import BenchError
from bench.escaping import one_line, terminal
from bench.urls import redact_text

app = typer.Typer(
    name="bench",
    help="Compare Korean encoders and classification heads on emotion data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)
INTERRUPTED = 130  # exit code after Ctrl-C


def fail(message: str, exit_code: int = 2) -> None:
    """Print ``message`` as one line on stderr (URL passwords hidden, control characters visible) and exit."""
    err_console.print(f"error: {one_line(redact_text(message))}", markup=False, highlight=False, soft_wrap=True)
    raise SystemExit(exit_code)


def warn(message: str) -> None:
    """Print ``message`` as one warning line on stderr."""
    err_console.print(f"warning: {one_line(redact_text(message))}", markup=False, highlight=False, soft_wrap=True)


def add_row(table: Table, *cells: str | Text, style: str | None = None) -> None:
    """Add a row to ``table``; plain strings are shown literally (never parsed as markup, control characters visible)."""
    table.add_row(*(terminal(cell) if isinstance(cell, str) else cell for cell in cells), style=style)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``bench`` console script: one-line errors, exit code 2."""
    command = typer.main.get_command(app)
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
