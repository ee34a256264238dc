"""Tables that fit where they are read: a terminal of any width, a pipe, a CI log.

A :class:`FitTable` knows which of its columns answer the question (kept) and which are detail
(dropped, lowest priority first, when a terminal is too narrow; shown with ``--wide``). Values —
numbers, statuses, names, ids — never wrap: their columns are as wide as their longest cell.
Only free-text columns (a description, an error) are shortened, with an ellipsis. When the
output is not a terminal the table is rendered at its full natural width, never squeezed to 80
columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from bench.errors import UsageError
from bench.escaping import terminal
from bench.leaderboard.flags import BELOW_MAJORITY, COLLAPSED, DUPLICATE, FLAG_MARKER, FLAG_MEANINGS, LEGACY_IDENTITY

# Short symbols for the flags, so a flagged run's row stays one line; :func:`flag_legend` explains them.
FLAG_SYMBOLS: dict[str, str] = {COLLAPSED: "C", BELOW_MAJORITY: "M", DUPLICATE: "D", LEGACY_IDENTITY: "L"}
FREE_TEXT_MIN_WIDTH = 12

Justify = Literal["left", "right", "center"]


@dataclass(frozen=True)
class Column:
    """One column: header, alignment, and how it behaves when space runs out.

    ``priority`` 0 columns are always shown; higher numbers are dropped first on a narrow terminal.
    ``detail`` columns appear only with ``--wide`` (or when named in ``--columns``). ``free_text``
    columns may be shortened with an ellipsis (down to ``min_width``) instead of being dropped.
    """

    name: str
    justify: Justify = "left"
    priority: int = 0
    detail: bool = False
    free_text: bool = False
    min_width: int = FREE_TEXT_MIN_WIDTH
    style: str = ""

    @property
    def key(self) -> str:
        """The name ``--columns`` accepts: the header in lower case, spaces as hyphens."""
        return self.name.lower().replace(" ", "-") or "mark"


@dataclass
class FitTable:
    """A table whose columns are chosen to fit the console; build it, then :func:`print_table` it."""

    title: str | None
    columns: list[Column]
    rows: list[tuple[list[Text], str | None]] = field(default_factory=list)
    show_header: bool = True
    caption: str | None = None

    def add_row(self, *cells: str | Text, style: str | None = None) -> None:
        """Add a row; plain strings are shown literally (never parsed as markup, control characters visible)."""
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(([terminal(cell) if isinstance(cell, str) else cell for cell in cells], style))

    def keys(self) -> list[str]:
        """The ``--columns`` names of every column."""
        return [column.key for column in self.columns]

    def chosen(self, width: int | None, *, wide: bool = False, only: Sequence[str] | None = None) -> list[int]:
        """Indexes of the columns to show: ``only`` (by key) if given, else the default (``wide``: all)
        columns, the lowest-priority ones dropped while the table is wider than ``width``."""
        if only:
            unknown = [key for key in only if key not in self.keys()]
            if unknown:
                raise UsageError(f"--columns: unknown column {unknown[0]!r}; this table has {', '.join(self.keys())}")
            return [index for index, column in enumerate(self.columns) if column.key in only]
        shown = [index for index, column in enumerate(self.columns) if wide or not column.detail]
        if width is None or wide:
            return shown
        while self.width(shown, shrink=True) > width:
            droppable = [index for index in shown if self.columns[index].priority > 0]
            if not droppable:
                break
            shown.remove(max(droppable, key=lambda index: (self.columns[index].priority, index)))
        return shown

    def natural_width(self, index: int) -> int:
        """The width of column ``index`` with no cell wrapped: its longest cell or its header."""
        cells = [cells[index].cell_len for cells, _ in self.rows]
        header = len(self.columns[index].name) if self.show_header else 0
        return max([header, *cells, 1])

    def width(self, shown: Sequence[int], *, shrink: bool = False) -> int:
        """Total width of the table showing ``shown`` (free-text columns at their minimum when ``shrink``)."""
        total = 0
        for index in shown:
            column = self.columns[index]
            natural = self.natural_width(index)
            total += min(natural, max(column.min_width, len(column.name))) if shrink and column.free_text else natural
        return total + 2 * max(len(shown) - 1, 0)  # two spaces between columns, no outer border

    def render(self, shown: Sequence[int], width: int | None = None) -> Table:
        """The rich table of the ``shown`` columns; value columns never wrap, free-text columns share what
        ``width`` leaves them (shortened with an ellipsis)."""
        limits = self.free_text_widths(shown, width)
        table = Table(
            show_header=self.show_header,
            caption=self.caption,
            caption_justify="left",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            collapse_padding=True,
        )
        for index in shown:
            column = self.columns[index]
            if index in limits:
                table.add_column(
                    terminal(column.name),
                    justify=column.justify,
                    overflow="ellipsis",
                    no_wrap=True,
                    max_width=limits[index],
                    style=column.style,
                )
            else:
                table.add_column(
                    terminal(column.name),
                    justify=column.justify,
                    no_wrap=True,
                    min_width=self.natural_width(index),
                    style=column.style,
                )
        for cells, style in self.rows:
            table.add_row(*(cells[index] for index in shown), style=style)
        return table

    def free_text_widths(self, shown: Sequence[int], width: int | None) -> dict[int, int]:
        """The width each shown free-text column gets within ``width`` (all they need when ``width`` is None)."""
        free = [index for index in shown if self.columns[index].free_text]
        needed = {index: self.natural_width(index) for index in free}
        if width is None or not free:
            return needed
        left = width - self.width([index for index in shown if index not in needed]) - 2 * len(free)
        if sum(needed.values()) <= left:
            return needed
        total = sum(needed.values())
        return {
            index: min(
                needed[index],
                max(self.columns[index].min_width, len(self.columns[index].name), left * needed[index] // total),
            )
            for index in free
        }


def print_table(console: Console, table: FitTable, *, wide: bool = False, columns: Sequence[str] | None = None) -> None:
    """Print ``table`` on ``console`` under its title: fitted to a terminal's width, at full natural width elsewhere."""
    if table.title:
        console.print(terminal(table.title, style="bold"), soft_wrap=not console.is_terminal)
    shown = table.chosen(console.width if console.is_terminal else None, wide=wide, only=columns)
    if console.is_terminal and table.width(shown, shrink=True) <= console.width:
        console.print(table.render(shown, console.width))
        return
    print_natural(console, table.render(shown))


def print_natural(console: Console, renderable: Table) -> None:
    """Print ``renderable`` at its natural width: never squeezed to the console's width (80 columns when piped),
    so no cell is cut or wrapped; a terminal narrower than the table wraps its lines instead."""
    width = Measurement.get(console, console.options.update_width(10_000), renderable).maximum
    if width <= console.width:
        console.print(renderable)
        return
    wide = Console(
        file=console.file,
        width=width,
        color_system=console.color_system,  # type: ignore[arg-type]
        force_terminal=console.is_terminal,
        highlight=False,
    )
    wide.print(renderable)


def parse_columns(value: str | None) -> list[str] | None:
    """``--columns a,b,c`` as a list of column keys (``None`` when not given)."""
    if value is None:
        return None
    keys = [key.strip().lower() for key in value.split(",") if key.strip()]
    if not keys:
        raise UsageError("--columns needs at least one column name, e.g. --columns rank,encoder,head,test-macro-f1")
    return keys


def flag_symbols(flags: Iterable[str]) -> str:
    """``["collapsed", "below-majority"]`` → ``"⚑CM"`` (empty when unflagged)."""
    symbols = "".join(FLAG_SYMBOLS.get(flag, "?") for flag in flags)
    return f"{FLAG_MARKER}{symbols}" if symbols else ""


def flag_legend(flags: Iterable[str]) -> str:
    """One line explaining the flag symbols that occur, e.g. ``⚑C collapsed: predicts …; ⚑M …``."""
    present = sorted(set(flags))
    return "; ".join(
        f"{FLAG_MARKER}{FLAG_SYMBOLS.get(flag, '?')} {flag}: {FLAG_MEANINGS.get(flag, flag)}" for flag in present
    )


def print_fields(console: Console, title: str, fields: Sequence[tuple[str, str | Text]]) -> None:
    """``name  value`` lines under a bold title, names aligned; a long value is never cut into a narrow column
    (a terminal wraps it between words, a pipe keeps it on one line)."""
    console.print(terminal(title, style="bold"), soft_wrap=not console.is_terminal)
    width = max((len(name) for name, _ in fields), default=0)
    for name, value in fields:
        line = terminal(f"  {name:<{width}}  ", style="bold")
        line.append_text(terminal(value) if isinstance(value, str) else value)
        console.print(line, soft_wrap=not console.is_terminal)
