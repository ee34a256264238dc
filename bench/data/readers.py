"""Reading data files into tables of strings: encodings, CSV/TSV/JSONL/XLSX, column choice.

Every problem a user can fix becomes a one-line :class:`DataError` naming the file.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from python_calamine import CalamineError

from bench.errors import DataError
from bench.files import file_problem

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".xlsx")
_SNIFF_BYTES = 1 << 16  # how much of a file the binary and encoding checks look at
# Hangul syllables outside KS X 1001 (cp949's extension area) are rare in real
# cp949 text (0.06 % of the syllables of the single-turn corpus); text in another
# single-byte encoding that happens to decode as cp949 is mostly made of them.
_MAX_EXTENSION_SHARE = 0.05
_UNNAMED = re.compile(r"^Unnamed: \d+$")


@dataclass
class Table:
    """A file's cells as strings (missing cells are ``""``).

    The frame's index is the row number a user sees: the spreadsheet row
    (header = row 1) for CSV/TSV/XLSX, the line for JSONL. ``header`` is
    ``False`` for a file read without a header row (columns ``"1"``, ``"2"``, ...).
    """

    path: Path
    frame: pd.DataFrame
    encoding: str | None
    header: bool = True
    # Headers written more than once in the file (the frame keeps the first under the name).
    duplicate_headers: frozenset[str] = field(default_factory=frozenset)


def read_table(path: Path, sheet: str | None = None, header: bool = True) -> Table:
    """Read a ``.csv``/``.tsv``/``.jsonl``/``.xlsx`` file; unnamed, empty-headed columns are dropped.

    With ``header=False`` the first row is data and the columns are named by
    their number from 1 (``"1"``, ``"2"``, ...), as ``--text-col``/``--label-col`` give them.
    """
    check_file(path)
    suffix = path.suffix.lower()
    if sheet is not None and suffix != ".xlsx":
        raise DataError(f"{path}: --sheet applies to .xlsx files only")
    if not header and suffix not in (".csv", ".tsv", ".xlsx"):
        raise DataError(f"{path}: --no-header applies to .csv, .tsv and .xlsx files only")
    if suffix == ".xlsx":
        frame, encoding = read_xlsx(path, sheet, header), None
        duplicates = _mangled_duplicates(frame.columns) if header else set()
    elif suffix in (".csv", ".tsv"):
        text, encoding = decode_file(path)
        separator = "\t" if suffix == ".tsv" else ","
        frame = _parse_delimited(path, text, separator, header)
        first_row = next(csv.reader(io.StringIO(text.lstrip("\n")), delimiter=separator), [])
        duplicates = _repeated(first_row) if header else set()
    elif suffix == ".jsonl":
        text, encoding = decode_file(path)
        frame, duplicates = _parse_jsonl(path, text)
    else:
        supported = ", ".join(TABLE_SUFFIXES)
        raise DataError(f"{path}: unsupported file type {path.suffix or '(none)'!r}; use one of {supported}")
    if header:
        duplicates |= _repeated(frame.columns)  # names equal once stripped
        frame = _tidy_columns(frame)
    else:
        frame.columns = [str(number) for number in range(1, len(frame.columns) + 1)]
        duplicates = set()
    if not len(frame.columns):
        raise DataError(f"{path}: no named columns in the first row")
    if frame.empty:
        raise DataError(f"{path}: no data rows (header only)")
    return Table(path, frame, encoding, header, frozenset(duplicates))


def check_file(path: Path) -> None:
    """Raise :class:`DataError` unless ``path`` is an existing, non-empty file."""
    problem = file_problem(path)
    if problem is not None:
        raise DataError(f"{path}: {problem}")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")


def decode_file(path: Path) -> tuple[str, str]:
    """The text of ``path`` and its encoding: ``utf-8``, ``utf-8-sig`` or ``cp949`` (EUC-KR superset)."""
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"{path}: UTF-16/32 text is not supported; save the file as UTF-8")
    if b"\x00" in raw[:_SNIFF_BYTES]:
        raise DataError(f"{path}: binary data (NUL bytes), not a text table; UTF-16 text must be saved as UTF-8")
    if raw.startswith(b"\xef\xbb\xbf"):
        try:
            text, encoding = raw[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as error:
            position = error.start + 3
            raise DataError(f"{path}: starts with a UTF-8 byte-order mark but byte {position} is not UTF-8") from None
    else:
        text, encoding = _utf8_or_cp949(path, raw)
    if _is_binary(text[:_SNIFF_BYTES]):
        raise DataError(f"{path}: binary data (control characters), not a text table")
    return text, encoding


def _utf8_or_cp949(path: Path, raw: bytes) -> tuple[str, str]:
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("cp949")
    except UnicodeDecodeError:
        text = None
    if text is not None and _looks_korean(text[:_SNIFF_BYTES]):
        return text, "cp949"
    raise DataError(f"{path}: unsupported encoding or binary data (neither UTF-8 nor cp949/EUC-KR text)")


def _ks_x_1001_hangul() -> frozenset[str]:
    syllables = set()
    for lead in range(0xB0, 0xC9):
        for trail in range(0xA1, 0xFF):
            try:
                syllables.add(bytes((lead, trail)).decode("euc_kr"))
            except UnicodeDecodeError:
                continue
    return frozenset(syllables)


_KS_X_1001 = _ks_x_1001_hangul()
_HANGUL = re.compile("[가-힣]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _is_binary(text: str) -> bool:
    """More than 1 % control characters (other than tab, newlines and form feed)."""
    return len(_CONTROL.findall(text)) > len(text) * 0.01


def _looks_korean(text: str) -> bool:
    """Whether cp949-decoded ``text`` is plausible text rather than another encoding's bytes."""
    if _is_binary(text):
        return False
    syllables = _HANGUL.findall(text)
    if not syllables:
        return True
    rare = sum(1 for syllable in syllables if syllable not in _KS_X_1001)
    return rare <= len(syllables) * _MAX_EXTENSION_SHARE


def _parse_delimited(path: Path, text: str, separator: str, header: bool = True) -> pd.DataFrame:
    """Rows of a CSV/TSV text; blank lines stay as empty rows so row numbers match the file's lines."""
    if not text.strip():
        raise DataError(f"{path}: file is empty")
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=separator,
            dtype=str,
            na_filter=False,
            skip_blank_lines=False,
            header=0 if header else None,
        )
    except pd.errors.ParserError as error:
        kind = "TSV" if separator == "\t" else "CSV"
        raise DataError(f"{path}: cannot parse as {kind}: {_one_line(error)}") from None
    first = 2 if header else 1
    frame.index = pd.RangeIndex(first, first + len(frame))
    return frame


def _parse_jsonl(path: Path, text: str) -> tuple[pd.DataFrame, set[str]]:
    """One row per non-blank line, indexed by line number.

    Lines end at ``\n`` only: JSON strings may hold U+2028, U+0085 and the like,
    which ``str.splitlines`` would also split at.
    """
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    duplicates: set[str] = set()

    def keep_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        duplicates.update(_repeated(key for key, _ in pairs))
        return dict(pairs)

    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, object_pairs_hook=keep_keys)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: line {number}: invalid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}: line {number}: expected a JSON object, got {type(record).__name__}")
        records.append(record)
        lines.append(number)
    if not records:
        raise DataError(f"{path}: file is empty")
    return pd.DataFrame.from_records(records, index=lines).map(_cell_text), duplicates


def _cell_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return value if isinstance(value, str) else str(value)


def read_xlsx(path: Path, sheet: str | None, header: bool = True) -> pd.DataFrame:
    """One sheet of an ``.xlsx`` workbook as strings; ``sheet`` is required when there are several.

    Read with calamine (Rust): about ten times faster than openpyxl on a 40k-row sheet.
    """
    try:
        workbook = pd.ExcelFile(path, engine="calamine")
    except (CalamineError, zipfile.BadZipFile, OSError, ValueError) as error:
        raise DataError(f"{path}: not a readable .xlsx workbook ({_one_line(error)})") from None
    with workbook:
        names = [str(name) for name in workbook.sheet_names]
        if sheet is None:
            if len(names) != 1:
                listed = ", ".join(names)
                raise DataError(f"{path}: workbook has {len(names)} sheets ({listed}); choose one with --sheet")
            sheet = names[0]
        elif sheet not in names:
            raise DataError(f"{path}: no sheet {sheet!r}; sheets found: {', '.join(names)}")
        try:
            frame = pd.read_excel(workbook, sheet_name=sheet, dtype=str, header=0 if header else None)
        except (CalamineError, ValueError) as error:
            raise DataError(f"{path}: sheet {sheet!r} cannot be read ({_one_line(error)})") from None
    first = 2 if header else 1
    frame.index = pd.RangeIndex(first, first + len(frame))
    return frame.fillna("")


def _tidy_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Strip column names and drop pandas' ``Unnamed: N`` columns (cells without a header).

    Of columns whose names are equal once stripped, the first is kept (a chosen
    duplicated header is refused by :func:`find_column`).
    """
    frame = frame.rename(columns=lambda name: str(name).strip())
    keep = [name for name in frame.columns if name and not _UNNAMED.match(name)]
    frame = frame.loc[:, keep]
    return frame.loc[:, ~frame.columns.duplicated()]


def _repeated(names: Iterable[Any]) -> set[str]:
    """Names (stripped) that occur more than once."""
    counts = Counter(str(name).strip() for name in names)
    return {name for name, count in counts.items() if count > 1 and name}


_MANGLED = re.compile(r"^(?P<name>.+)\.(?P<copy>\d+)$")


def _mangled_duplicates(columns: Iterable[Any]) -> set[str]:
    """Headers pandas renamed ``name.1``, ``name.2`` ... because ``name`` came first."""
    names = {str(name).strip() for name in columns}
    found = set()
    for name in names:
        match = _MANGLED.match(name)
        if match and match["name"] in names:
            found.add(match["name"])
    return found


def find_column(table: Table, given: str | None, candidates: tuple[str, ...], what: str, option: str) -> str:
    """The column named ``given``, else the first of ``candidates`` present (case-insensitive).

    In a table read without a header, ``given`` is a column number and is required.
    """
    columns = [str(name) for name in table.frame.columns]
    if not table.header:
        if given is None:
            raise DataError(f"{table.path}: --no-header needs {option} to give the {what} column's number (from 1)")
        if given in columns:
            return given
        raise DataError(
            f"{table.path}: {option} {given!r} is not a column number; the file has columns 1 to {len(columns)}"
        )
    found = describe_columns(columns)
    if given is not None:
        if given in columns:
            return _unique(table, given, option)
        raise DataError(f"{table.path}: no {what} column {given!r}; columns found: {found}{_header_hint(columns)}")
    by_lower = {name.lower(): name for name in columns}
    for candidate in candidates:
        if candidate.lower() in by_lower:
            return _unique(table, by_lower[candidate.lower()], option)
    if first_row_is_data(columns):
        raise DataError(
            f"{table.path}: cannot tell which column holds the {what}: the first row looks like data, not a header "
            f"({found}); if the file has no header row, pass --no-header with --text-col and --label-col as "
            "column numbers (from 1)"
        )
    raise DataError(f"{table.path}: cannot tell which column holds the {what}; columns found: {found}; pass {option}")


_NUMBER = re.compile(r"^[+-]?\d+(?:[.,]\d+)*$")
_SENTENCE_END = re.compile(r"[.?!~…]$")
_MAX_HEADER_WORDS = 3
_MAX_HEADER_CHARS = 30


def first_row_is_data(columns: list[str]) -> bool:
    """Whether header cells look like a row of data: a number, or text with a sentence's length or ending."""
    return any(
        _NUMBER.match(name)
        or _SENTENCE_END.search(name)
        or len(name) > _MAX_HEADER_CHARS
        or len(name.split()) > _MAX_HEADER_WORDS
        for name in columns
    )


def _header_hint(columns: list[str]) -> str:
    if not first_row_is_data(columns):
        return ""
    return "; the first row looks like data: if the file has no header row, pass --no-header and column numbers"


def describe_columns(columns: list[str], limit: int = 8, width: int = 30) -> str:
    """Column names for error messages: at most ``limit``, each cut to ``width`` characters."""
    shown = [name if len(name) <= width else name[: width - 1] + "…" for name in columns[:limit]]
    more = f" and {len(columns) - limit} more" if len(columns) > limit else ""
    return (", ".join(shown) + more) or "(none)"


def _unique(table: Table, column: str, option: str) -> str:
    """``column``, unless the file's header names more than one column so."""
    if column in table.duplicate_headers:
        raise DataError(
            f"{table.path}: the header names more than one column {column!r}; rename the copies so that "
            f"{option} picks one"
        )
    return column


def clean_text(values: pd.Series) -> pd.Series:
    """Strings with surrounding whitespace removed, in Unicode NFC (so identical texts compare equal)."""
    return values.astype(str).str.strip().str.normalize("NFC")


def describe_rows(rows: pd.Index, limit: int = 5) -> str:
    """``"row 4"`` or ``"rows 4, 9, 12 and 3 more"`` for error messages."""
    numbers = [str(number) for number in rows.tolist()]
    head = ", ".join(numbers[:limit])
    more = f" and {len(numbers) - limit} more" if len(numbers) > limit else ""
    return f"row{'s' if len(numbers) > 1 else ''} {head}{more}"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
