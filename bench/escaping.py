"""One escaping function per output, for every label, text, file name, run name or error that reaches one.

- :func:`terminal`: rich ``Text`` (never parsed as markup) with control characters,
  ANSI escapes and bidirectional overrides shown as visible ``\\x1b``-style escapes
  (:func:`markup` is the same for a value placed inside a markup string);
- :func:`markdown`: HTML and Markdown syntax neutralised, one line;
- :func:`html_text`: HTML entities;
- :func:`latex`: LaTeX specials escaped (plus a few symbols);
- :func:`plot`: text drawn by matplotlib (no mathtext);
- :func:`csv_cell`: cells that a spreadsheet would run as a formula prefixed with ``'``.
"""

from __future__ import annotations

import html
import re
from typing import Any

from rich.markup import escape
from rich.style import StyleType
from rich.text import Text

# C0 and C1 control characters (but newline and tab), DEL, and the invisible characters that reorder or hide
# text on screen (bidirectional overrides and isolates, as in "Trojan source" attacks).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS = re.compile(r"\r\n|[\n\r\u2028\u2029\x85]")


def visible(value: Any) -> str:
    """``str(value)`` with every control, ANSI-escape or bidi character written as ``\\xNN`` / ``\\uNNNN``."""
    return _UNSAFE.sub(_escape_character, str(value))


def terminal(value: Any, style: StyleType = "") -> Text:
    """``value`` as rich ``Text`` safe for a terminal: no markup parsing, no raw control characters."""
    return Text(visible(value), style=style)


def markup(value: Any) -> str:
    """``value`` for a place inside a rich markup string: markup escaped, control characters visible."""
    return escape(visible(value))


def one_line(value: Any) -> str:
    """``value`` on one line (line breaks as spaces) with control characters made visible (for error messages)."""
    return visible(_LINE_BREAKS.sub(" ", str(value)))


def markdown(value: Any) -> str:
    """``value`` as literal text in a Markdown table cell or heading: no HTML, no emphasis, links or pipes."""
    text = html.escape(one_line(value), quote=False)
    return _MARKDOWN_SPECIAL.sub(r"\\\g<0>", text)


_MARKDOWN_SPECIAL = re.compile(r"[\\`*_\[\]|~]")


def html_text(value: Any) -> str:
    """``value`` as literal text in HTML (element content or a quoted attribute), control characters visible."""
    return html.escape(visible(value), quote=True)


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}
_LATEX_SYMBOLS = {"±": r"$\pm$", "—": "--", "≥": r"$\geq$", "†": r"$^\dagger$", "⚑": "(!)"}


def latex(value: Any) -> str:
    """``value`` safe inside LaTeX: specials escaped, ±/—/†/≥ as LaTeX symbols, one line."""
    escaped = "".join(_LATEX_SPECIALS.get(character, character) for character in one_line(value))
    for symbol, replacement in _LATEX_SYMBOLS.items():
        escaped = escaped.replace(symbol, replacement)
    return escaped


def plot(value: Any) -> str:
    """``value`` drawn literally by matplotlib: ``$`` cannot start mathtext, control characters visible, one line."""
    return one_line(value).replace("$", r"\$")


# What Excel, LibreOffice and Google Sheets treat as the start of a formula (tab and CR too: some strip them first).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV cell: strings a spreadsheet would run as a formula get a leading ``'``; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _escape_character(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
