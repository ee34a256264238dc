"""Leaderboard tables as CSV, Markdown, LaTeX (booktabs), standalone HTML or JSON.

Human formats (md, latex, html) get one table per dataset fingerprint with the best
value of each score and efficiency column in bold (flagged runs never count as best
unless ``include_flagged``), a Flags column and its legend where a run is flagged;
machine formats (csv, json) get one flat list with full-precision numbers, the
``flags`` and ``predicted_classes`` of every run.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bench import escaping
from bench.errors import UsageError
from bench.leaderboard.flags import FLAG_MARKER, legend
from bench.leaderboard.records import RunRecord
from bench.leaderboard.stats import (
    EFFICIENCY_FIELDS,
    GroupStats,
    distinguishing_settings,
    efficiency,
    hyperparameters,
    sections,
)

FORMATS = ("csv", "md", "latex", "html", "json")
VIEWS = ("runs", "groups")
MISSING = "—"
TIED_MARK = "†"
TIED_NOTE = f"{TIED_MARK} not significantly different from the best (paired bootstrap, p ≥ 0.05)."

View = Literal["runs", "groups"]


@dataclass(frozen=True)
class Column:
    """A table column: machine ``key``, human ``title``, value ``kind`` and which direction is better."""

    key: str
    title: str
    kind: str = "text"
    better: Literal["high", "low"] | None = None


_EFFICIENCY_STYLE: dict[str, tuple[str, str, Literal["high", "low"]]] = {
    "total_params": ("Params", "params", "low"),
    "trainable_params": ("Trainable", "params", "low"),
    "train_seconds": ("Train (s)", "seconds", "low"),
    "train_samples_per_second": ("Samples/s", "rate", "high"),
    "latency_ms_batch1": ("Latency b1 (ms)", "ms", "low"),
    "latency_ms_batch64": ("Latency b64 (ms/ex)", "ms", "low"),
    "peak_memory_mb": ("Peak mem (MiB)", "mb", "low"),
}
EFFICIENCY_COLUMNS = tuple(Column(key, *_EFFICIENCY_STYLE[key]) for key in EFFICIENCY_FIELDS)

FLAGS_COLUMN = Column("flags", "Flags")
SETTING_COLUMN = Column("params", "Setting")
RUN_COLUMNS = (
    Column("run_id", "Run"),
    Column("dataset", "Dataset"),
    Column("fingerprint", "Fingerprint"),
    Column("encoder", "Encoder"),
    Column("head", "Head"),
    Column("seed", "Seed", "int"),
    Column("status", "Status"),
    Column("val_macro_f1", "Val macro-F1", "score", "high"),
    Column("macro_f1", "Macro-F1", "score", "high"),
    Column("accuracy", "Accuracy", "score", "high"),
    Column("predicted_classes", "Classes predicted", "int"),
    FLAGS_COLUMN,
)


@dataclass
class _Cell:
    text: str
    value: float | None = None
    mark: str = ""
    bold: bool = False


@dataclass
class _Table:
    title: str
    columns: list[Column]
    rows: list[list[_Cell]]
    note: str | None = None


def export(
    items: Sequence[RunRecord] | Sequence[GroupStats], fmt: str, view: View = "runs", *, include_flagged: bool = False
) -> str:
    """``items`` (runs for ``view="runs"``, :class:`GroupStats` for ``"groups"``) as a table in ``fmt``.

    ``include_flagged`` lets flagged runs have the bold best values of human tables.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    if view not in VIEWS:
        raise UsageError(f"unknown view {view!r}; choose from {', '.join(VIEWS)}")
    expected = RunRecord if view == "runs" else GroupStats
    if not all(isinstance(item, expected) for item in items):
        raise UsageError(f"the {view} view exports {expected.__name__} items")
    ordered = _ordered(items, view)
    if fmt in ("csv", "json"):
        records = [_machine_row(item, view) for item in ordered]
        return _csv(records) if fmt == "csv" else json.dumps(records, indent=2, ensure_ascii=False) + "\n"
    tables = [_human_table(section, view, include_flagged) for section in sections(ordered).values()]
    render: Callable[[list[_Table]], str] = {"md": _markdown, "latex": _latex, "html": _html}[fmt]
    return render(tables)


def run_values(record: RunRecord) -> dict[str, Any]:
    """A run's exported fields: identity, scores and whatever efficiency figures it recorded."""
    values: dict[str, Any] = {column.key: getattr(record, column.key) for column in RUN_COLUMNS}
    values.update(efficiency(record))
    return values


def group_values(group: GroupStats) -> dict[str, Any]:
    """A group's exported fields: identity, mean/std/CI of the scores, rank, p vs best, mean efficiency."""
    values: dict[str, Any] = {
        "key": group.key,
        "dataset": group.dataset,
        "fingerprint": group.fingerprint,
        "encoder": group.encoder,
        "head": group.head,
        "params": group.params,
        "n": group.n,
        "seeds": group.seeds,
        "rank": group.rank,
        "macro_f1_mean": group.macro_f1_mean,
        "macro_f1_std": group.macro_f1_std,
        "macro_f1_ci_low": group.ci_low,
        "macro_f1_ci_high": group.ci_high,
        "accuracy_mean": group.accuracy_mean,
        "accuracy_std": group.accuracy_std,
        "p_vs_best": group.p_vs_best,
        "best": group.best,
        "indistinguishable_from_best": group.indistinguishable_from_best,
        "flags": group.flags,
        "run_ids": group.run_ids,
    }
    values.update(group.efficiency)
    return values


def format_params(params: dict[str, Any]) -> str:
    """Hyperparameters as ``name=value`` pairs separated by spaces."""
    return " ".join(f"{name}={_short(value)}" for name, value in params.items())


def format_value(value: Any, kind: str) -> str:
    """One value as shown in human tables (``—`` when missing)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    if kind == "score":
        return f"{value:.4f}"
    if kind == "params":
        return f"{value / 1e6:.1f}M" if value >= 1e5 else f"{value / 1e3:.1f}K"
    if kind in ("seconds", "rate"):
        return f"{value:,.1f}"
    if kind == "ms":
        return f"{value:.2f}"
    if kind == "mb":
        return f"{value:,.0f}"
    if kind == "p":
        return "<0.001" if value < 0.001 else f"{value:.3f}"
    return str(value)


# ---------------------------------------------------------------- internals


def _ordered(items: Sequence[Any], view: str) -> list[Any]:
    if view == "groups":
        return sorted(items, key=lambda group: (group.dataset, group.fingerprint, group.rank))
    return sorted(
        items, key=lambda run: (run.dataset, run.fingerprint, run.macro_f1 is None, -(run.macro_f1 or 0.0), run.run_id)
    )


def _machine_row(item: Any, view: str) -> dict[str, Any]:
    if view == "groups":
        return group_values(item)
    values = run_values(item)
    values.update(
        config_hash=item.config_hash,
        params=hyperparameters(item),
        attempts=item.attempts,
        error=item.error,
        created_at=item.created_at,
        updated_at=item.updated_at,
    )
    return values


def _csv(records: list[dict[str, Any]]) -> str:
    keys: list[str] = []
    for record in records:
        keys.extend(key for key in record if key not in keys)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[escaping.csv_cell(key) for key in keys], lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({key: escaping.csv_cell(_csv_value(record.get(key))) for key in keys})
    return buffer.getvalue()


def _csv_value(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return "" if value is None else value


def _present_efficiency(values: list[dict[str, Any]]) -> list[Column]:
    return [column for column in EFFICIENCY_COLUMNS if any(column.key in row for row in values)]


def _human_table(items: list[Any], view: str, include_flagged: bool) -> _Table:
    first = items[0]
    title = f"{first.dataset} (fingerprint {first.fingerprint[:12]})"
    flagged = [bool(item.flags) and not include_flagged for item in items]
    flag_note = legend(flag for item in items for flag in item.flags) or None
    if view == "runs":
        values = [run_values(record) for record in items]
        keys = ["run_id", "encoder", "head", "seed"]
        if any(record.status != "finished" for record in items):
            keys.append("status")
        keys += ["val_macro_f1", "macro_f1", "accuracy"]
        columns = [column for key in keys for column in RUN_COLUMNS if column.key == key]
        run_settings = distinguishing_settings(items)
        if any(run_settings.values()):
            columns.insert(4, SETTING_COLUMN)
        columns += _present_efficiency(values)
        if flag_note:
            columns.append(FLAGS_COLUMN)
        rows = [
            [
                _Cell(_flag_text(row["flags"]))
                if column is FLAGS_COLUMN
                else _Cell(format_params(run_settings[row["run_id"]]) or MISSING)
                if column is SETTING_COLUMN
                else _Cell(format_value(row.get(column.key), column.kind), _number(row.get(column.key)))
                for column in columns
            ]
            for row in values
        ]
        return _Table(title, columns, _bold_best(columns, rows, flagged), flag_note)
    values = [group_values(group) for group in items]
    settings = distinguishing_settings(items)
    columns = [Column("rank", "Rank", "int"), Column("encoder", "Encoder"), Column("head", "Head")]
    if any(settings.values()):
        columns.append(Column("params", "Setting"))
    columns += [
        Column("n", "n", "int"),
        Column("macro_f1_mean", "Macro-F1", "score", "high"),
        Column("ci", "95% CI", "interval"),
        Column("accuracy_mean", "Accuracy", "score", "high"),
    ]
    columns += _present_efficiency(values)
    if flag_note:
        columns.append(FLAGS_COLUMN)
    rows = []
    for group, row in zip(items, values, strict=True):
        cells = []
        for column in columns:
            if column is FLAGS_COLUMN:
                cells.append(_Cell(_flag_text(group.flags)))
            elif column.key == "params":
                cells.append(_Cell(format_params(settings[group.key]) or MISSING))
            elif column.key == "ci":
                cells.append(_Cell(_interval(group.ci_low, group.ci_high)))
            elif column.key in ("macro_f1_mean", "accuracy_mean"):
                std = row[column.key.replace("_mean", "_std")]
                text = format_value(row[column.key], "score") + (f" ± {std:.4f}" if std is not None else "")
                mark = TIED_MARK if column.key == "macro_f1_mean" and group.indistinguishable_from_best else ""
                cells.append(_Cell(text, _number(row[column.key]), mark))
            else:
                cells.append(_Cell(format_value(row.get(column.key), column.kind), _number(row.get(column.key))))
        rows.append(cells)
    notes = [TIED_NOTE if any(group.indistinguishable_from_best for group in items) else None, flag_note]
    note = " ".join(text for text in notes if text) or None
    return _Table(title, columns, _bold_best(columns, rows, flagged), note)


def _flag_text(flags: Sequence[str]) -> str:
    return f"{FLAG_MARKER} {', '.join(flags)}" if flags else ""


def _bold_best(columns: list[Column], rows: list[list[_Cell]], skipped: Sequence[bool]) -> list[list[_Cell]]:
    """Bold the best value of each column that has a better direction (ties all bold), ignoring ``skipped`` rows."""
    for index, column in enumerate(columns):
        numbers = [
            row[index].value
            for row, skip in zip(rows, skipped, strict=True)
            if row[index].value is not None and not skip
        ]
        if column.better is None or not numbers:
            continue
        best = max(numbers) if column.better == "high" else min(numbers)
        if len(rows) > 1 and all(row[index].value == best for row in rows):
            continue  # a column where every row ties has no best
        for row, skip in zip(rows, skipped, strict=True):
            row[index].bold = row[index].value == best and not skip
    return rows


def _markdown(tables: list[_Table]) -> str:
    parts = []
    for table in tables:
        header = "| " + " | ".join(escaping.markdown(column.title) for column in table.columns) + " |"
        rule = "|" + "|".join("---:" if _numeric(column) else ":---" for column in table.columns) + "|"
        lines = [f"### {escaping.markdown(table.title)}", "", header, rule]
        for row in table.rows:
            cells = [_md_cell(cell) for cell in row]
            lines.append("| " + " | ".join(cells) + " |")
        if table.note:
            lines += ["", escaping.markdown(table.note)]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def _md_cell(cell: _Cell) -> str:
    text = escaping.markdown(cell.text)
    return (f"**{text}**" if cell.bold else text) + escaping.markdown(cell.mark)


def _latex(tables: list[_Table]) -> str:
    parts = []
    for table in tables:
        spec = "".join("r" if _numeric(column) else "l" for column in table.columns)
        caption = f"Test results on {table.title}."
        if table.note:
            caption += " " + table.note
        lines = [
            r"\begin{table}[ht]",
            r"\centering",
            rf"\caption{{{escaping.latex(caption)}}}",
            rf"\begin{{tabular}}{{{spec}}}",
            r"\toprule",
            " & ".join(escaping.latex(column.title) for column in table.columns) + r" \\",
            r"\midrule",
        ]
        for row in table.rows:
            cells = [
                (rf"\textbf{{{escaping.latex(cell.text)}}}" if cell.bold else escaping.latex(cell.text))
                + escaping.latex(cell.mark)
                for cell in row
            ]
            lines.append(" & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
        parts.append("\n".join(lines))
    return "% Needs \\usepackage{booktabs} in the preamble.\n" + "\n\n".join(parts) + "\n"


def _html(tables: list[_Table]) -> str:
    body = []
    for table in tables:
        head = "".join(
            f'<th class="{"num" if _numeric(column) else "text"}">{escaping.html_text(column.title)}</th>'
            for column in table.columns
        )
        rows = []
        for row in table.rows:
            cells = []
            for column, cell in zip(table.columns, row, strict=True):
                text = escaping.html_text(cell.text)
                text = (f"<strong>{text}</strong>" if cell.bold else text) + escaping.html_text(cell.mark)
                cells.append(f'<td class="{"num" if _numeric(column) else "text"}">{text}</td>')
            rows.append("<tr>" + "".join(cells) + "</tr>")
        body.append(f"<h2>{escaping.html_text(table.title)}</h2>")
        body.append(f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>")
        if table.note:
            body.append(f'<p class="note">{escaping.html_text(table.note)}</p>')
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        "<title>ko-emotion-bench leaderboard</title>\n<style>\n"
        "body { font-family: system-ui, sans-serif; margin: 2em; }\n"
        "table { border-collapse: collapse; margin-bottom: 1.5em; }\n"
        "th, td { padding: 0.3em 0.8em; border-bottom: 1px solid #ddd; }\n"
        "thead th { border-bottom: 2px solid #333; }\n"
        "td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }\n"
        "td.text, th.text { text-align: left; }\n"
        ".note { color: #555; font-size: 0.9em; }\n"
        "</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


def _numeric(column: Column) -> bool:
    return column.kind != "text"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _interval(low: float | None, high: float | None) -> str:
    return MISSING if low is None or high is None else f"[{low:.4f}, {high:.4f}]"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)
