"""Texts to classify from a file: one per line, or a column of a csv/tsv/jsonl/xlsx table."""

from __future__ import annotations

from pathlib import Path

from bench.data.hygiene import blank_mask, is_blank
from bench.data.readers import (
    TABLE_SUFFIXES,
    check_file,
    clean_text,
    decode_file,
    describe_rows,
    find_column,
    read_table,
)
from bench.data.sources import TEXT_COLUMNS
from bench.errors import DataError


def read_texts(path: Path, text_col: str | None = None) -> list[str]:
    """Every text of ``path`` in file order; an empty text is a :class:`DataError` naming its line or row.

    A text made only of whitespace and invisible characters (zero-width spaces, a BOM) is empty.

    ``.csv``, ``.tsv``, ``.jsonl`` and ``.xlsx`` files are tables whose text column is
    ``text_col`` or detected by name (text, sentence, 문장, ...); any other file holds one
    text per line (UTF-8 or cp949).
    """
    if path.suffix.lower() in TABLE_SUFFIXES:
        return _table_texts(path, text_col)
    if text_col is not None:
        raise DataError(f"{path}: --text-col applies to {', '.join(TABLE_SUFFIXES)} tables, not to a text file")
    check_file(path)
    text, _ = decode_file(path)
    lines = [line.strip() for line in text.splitlines()]
    empty = [number for number, line in enumerate(lines, start=1) if is_blank(line)]
    if empty:
        shown = ", ".join(map(str, empty[:5])) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
        raise DataError(
            f"{path}: line{'s' if len(empty) > 1 else ''} {shown} {'are' if len(empty) > 1 else 'is'} "
            "empty; give one text per line"
        )
    return lines


def _table_texts(path: Path, text_col: str | None) -> list[str]:
    table = read_table(path)
    column = find_column(table, text_col, TEXT_COLUMNS, "text", "--text-col")
    texts = clean_text(table.frame[column])
    empty = texts.index[blank_mask(texts)]
    if len(empty):
        raise DataError(f"{path}: column {column!r} is empty in {describe_rows(empty)}")
    return texts.tolist()
