"""``bench leaderboard``, ``bench export``, ``bench show`` and ``bench compare``: read the recorded runs."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.text import Text

from bench.cli.app import app, console, err_console
from bench.cli.options import DEFAULT_RESULTS, Results, Storage, find_leaderboard, require_leaderboard
from bench.cli.tables import Column, FitTable, flag_legend, flag_symbols, parse_columns, print_fields, print_table
from bench.data.folds import fold_of, fold_scheme
from bench.errors import ResultsError, UsageError
from bench.escaping import terminal
from bench.files import write_atomic
from bench.leaderboard import stats
from bench.leaderboard.export import FORMATS, TIED_NOTE, export, format_params, format_value
from bench.leaderboard.mistakes import Mistake, disagreements, misclassified
from bench.leaderboard.pareto import ParetoPoint, pareto_points
from bench.leaderboard.records import RUN_STATUSES, Predictions, RunMetrics, RunRecord
from bench.leaderboard.store import Leaderboard, database_path, is_stale

View = Annotated[
    Literal["runs", "groups", "pareto"],
    typer.Option(
        "--view",
        help="runs: one row per run; groups: seeds aggregated; pareto: macro-F1 vs latency (bench leaderboard only).",
    ),
]
Status = Annotated[
    list[str] | None,
    typer.Option(
        "--status",
        metavar="STATUS",
        help=f"Only runs with this status (repeatable): {', '.join(RUN_STATUSES)}.",
    ),
]
Resamples = Annotated[int, typer.Option("--resamples", min=1, help="Bootstrap resamples for CIs and p-values.")]
BootstrapSeed = Annotated[int, typer.Option("--bootstrap-seed", help="Seed of the bootstrap random generator.")]
Wide = Annotated[
    bool, typer.Option("--wide", help="Every column (and every run's full settings), however wide the table gets.")
]
Columns = Annotated[
    str | None,
    typer.Option(
        "--columns",
        metavar="A,B,C",
        help="Only these columns, in the table's order (an unknown name lists the table's columns).",
    ),
]
IncludeFlagged = Annotated[
    bool,
    typer.Option("--include-flagged", help="Let flagged runs (collapsed, below the majority row) count as best."),
]
TABLE_FORMAT_HELP = f"Table format: {', '.join(FORMATS)}."
TableFormat = Annotated[str | None, typer.Option("--format", "-f", help=TABLE_FORMAT_HELP)]


@app.command("leaderboard")
def leaderboard_command(
    results: Results = DEFAULT_RESULTS,
    storage: Storage = None,
    view: View = "runs",
    status: Status = None,
    encoder: Annotated[str | None, typer.Option("--encoder", help="Only runs of this encoder.")] = None,
    head: Annotated[str | None, typer.Option("--head", help="Only runs of this head.")] = None,
    resamples: Resamples = stats.DEFAULT_RESAMPLES,
    bootstrap_seed: BootstrapSeed = 0,
    include_flagged: IncludeFlagged = False,
    wide: Wide = False,
    columns: Columns = None,
    fmt: TableFormat = None,
) -> None:
    """Recorded runs sorted by test macro-F1, one table per dataset fingerprint."""
    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt is not None and view == "pareto":
        raise UsageError("--format writes the runs or groups view; --view pareto is a terminal table only")
    chosen = parse_columns(columns)
    board = find_leaderboard(storage, results)
    records = [] if board is None else board.runs(status, encoder=encoder, head=head)
    if not records:
        message = empty_message(results, board, filtered=bool(status or encoder or head))
        (err_console if fmt else console).print(terminal(message))
        return
    if view == "groups" and board is not None:
        groups = load_groups(board, records, resamples, bootstrap_seed, include_flagged)
        if not groups:
            console.print("No finished runs to aggregate yet; `bench leaderboard` lists the unfinished ones.")
            return
        if fmt is not None:
            typer.echo(export(groups, fmt, "groups", include_flagged=include_flagged), nl=False)
            return
        for section in stats.sections(groups).values():
            print_table(console, group_table(section), wide=wide, columns=chosen)
        if any(group.indistinguishable_from_best for group in groups):
            console.print(terminal("≈ " + TIED_NOTE.removeprefix("† "), style="dim"), soft_wrap=not console.is_terminal)
        print_flag_legend(flag for group in groups for flag in group.flags)
        return
    if view == "pareto":
        points = pareto_points(records)
        if not points:
            console.print("No finished run recorded a latency yet.")
            return
        for section in stats.sections(points).values():
            print_table(console, pareto_table(section), wide=wide, columns=chosen)
        return
    if fmt is not None:
        typer.echo(export(sort_runs(records), fmt, "runs", include_flagged=include_flagged), nl=False)
        return
    for section in stats.sections(sort_runs(records)).values():
        print_table(console, run_table(section, include_flagged, wide), wide=wide, columns=chosen)
    if any(is_stale(record) for record in records):
        console.print(
            terminal(
                "stale: recorded as running, but its process is gone (rerun the same command to resume it)", style="dim"
            ),
            soft_wrap=not console.is_terminal,
        )
    print_flag_legend(flag for record in records for flag in record.flags)


def print_flag_legend(flags: Iterable[str]) -> None:
    """The meaning of the flag symbols shown, and how to let flagged runs count as best."""
    text = flag_legend(flags)
    if text:
        console.print(
            Text(f"{text}. Flagged runs are never marked best (--include-flagged to allow it).", style="dim"),
            soft_wrap=not console.is_terminal,
        )


@app.command("export")
def export_command(
    fmt: Annotated[str, typer.Option("--format", "-f", help=TABLE_FORMAT_HELP)],
    results: Results = DEFAULT_RESULTS,
    storage: Storage = None,
    view: View = "runs",
    status: Status = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to FILE (atomically) instead of stdout.")
    ] = None,
    resamples: Resamples = stats.DEFAULT_RESAMPLES,
    bootstrap_seed: BootstrapSeed = 0,
    include_flagged: IncludeFlagged = False,
) -> None:
    """The leaderboard as csv, md, latex, html or json.

    Without --status only finished runs are exported.
    """
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if view == "pareto":
        raise UsageError("--view pareto is a terminal table of bench leaderboard; export the runs or groups view")
    board = find_leaderboard(storage, results)
    records = [] if board is None else board.runs(status or "finished")
    items: list[Any] = records
    if view == "groups" and board is not None:
        items = load_groups(board, records, resamples, bootstrap_seed, include_flagged)
    if not items:
        err_console.print(terminal(empty_message(results, board, filtered=True) + " Nothing exported."))
        return
    text = export(items, fmt, view, include_flagged=include_flagged)
    if out is None:
        typer.echo(text, nl=False)
        return
    write_atomic(out, text)
    err_console.print(terminal(f"Wrote {len(items)} {view} to {out}"))


@app.command("show")
def show_command(
    run: Annotated[str, typer.Argument(help="Run id or a unique prefix of it.")],
    results: Results = DEFAULT_RESULTS,
    storage: Storage = None,
) -> None:
    """One run: config, scores, per-class precision/recall/F1 and the confusion matrix."""
    board = require_leaderboard(storage, results)
    record = board.get_run(run)
    print_fields(console, f"run {record.run_id}", summary_fields(record))
    print_fields(console, "config", config_fields(record))
    if record.metrics is None:
        return
    metrics = record.metrics
    if metrics.per_class:
        print_table(console, per_class_table(metrics))
    if metrics.confusion:
        matrix = confusion_table(metrics.labels, metrics.confusion)
        if console.is_terminal and matrix.width(range(len(matrix.columns))) > console.width:
            matrix = confusion_table(metrics.labels, metrics.confusion, numbered=True)
        print_table(console, matrix)
    if metrics.history:
        print_table(console, history_table(metrics.history))


@app.command("errors")
def errors_command(
    run: Annotated[str, typer.Argument(help="Run id or a unique prefix of it.")],
    results: Results = DEFAULT_RESULTS,
    storage: Storage = None,
    label: Annotated[
        str | None,
        typer.Option("--class", metavar="LABEL", help="Only mistakes whose gold or predicted class is LABEL."),
    ] = None,
    gold: Annotated[
        str | None, typer.Option("--gold", metavar="LABEL", help="Only mistakes on gold class LABEL.")
    ] = None,
    predicted: Annotated[
        str | None, typer.Option("--predicted", metavar="LABEL", help="Only mistakes predicted as LABEL.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=0, help="Show at most N mistakes (0: all).")] = 20,
    wide: Wide = False,
    columns: Columns = None,
) -> None:
    """Misclassified test sentences of a run: gold, predicted and confidence, most confident mistakes first."""
    chosen = parse_columns(columns)
    board = require_leaderboard(storage, results)
    record = board.get_run(run)
    if record.metrics is None:
        raise UsageError(f"run {record.run_id} is {record.status}; only finished runs have test predictions")
    predictions = board.predictions(record.run_id)
    labels = record.metrics.labels
    mistakes = misclassified(predictions, labels, gold=gold, predicted=predicted, either=label)
    total = len(predictions.example_ids)
    wrong = sum(
        gold_value != predicted_value for gold_value, predicted_value in zip(predictions.gold, predictions.predicted)
    )
    filtered = gold is not None or predicted is not None or label is not None
    console.print(
        terminal(
            f"run {record.run_id} ({record.encoder} / {record.head}): {wrong} of {total} test examples misclassified"
            + (f", {len(mistakes)} match the filter" if filtered else ""),
            style="bold",
        ),
        soft_wrap=not console.is_terminal,
    )
    if predictions.texts is None:
        console.print(
            terminal(
                f"run {record.run_id} was recorded before runs stored their test texts: example ids "
                "are shown instead (run it again to see the sentences)",
                style="yellow",
            ),
            soft_wrap=not console.is_terminal,
        )
    shown = mistakes[:limit] if limit else mistakes
    if shown:
        print_table(console, mistakes_table(shown), wide=wide, columns=chosen)
    if len(shown) < len(mistakes):
        console.print(terminal(f"… {len(mistakes) - len(shown)} more (--limit 0 shows all)", style="dim"))


def mistakes_table(mistakes: list[Mistake]) -> FitTable:
    """Misclassified examples: id, gold, predicted, confidence, p(gold) and the text (shortened to fit)."""
    with_texts = any(mistake.text is not None for mistake in mistakes)
    columns = [
        Column("example", priority=0 if not with_texts else 2, detail=with_texts),
        Column("gold"),
        Column("predicted"),
        Column("confidence", "right"),
        Column("p(gold)", "right", priority=1),
    ]
    columns += [Column("text", free_text=True, min_width=20)] if with_texts else []
    table = FitTable(None, columns)
    for mistake in mistakes:
        cells = [
            mistake.example_id,
            mistake.gold,
            mistake.predicted,
            format_value(mistake.confidence, "score"),
            format_value(mistake.gold_probability, "score"),
        ]
        table.add_row(*cells, *([mistake.text or "—"] if with_texts else []))
    return table


@app.command("compare")
def compare_command(
    a: Annotated[
        str, typer.Argument(help="Run id (or unique prefix) or group key (g-…, see `bench leaderboard --view groups`).")
    ],
    b: Annotated[str, typer.Argument(help="Run id (or unique prefix) or group key to compare against.")],
    results: Results = DEFAULT_RESULTS,
    storage: Storage = None,
    resamples: Resamples = stats.DEFAULT_RESAMPLES,
    bootstrap_seed: BootstrapSeed = 0,
    examples: Annotated[
        int, typer.Option("--examples", min=0, help="Two runs: show N of the test sentences they label differently.")
    ] = 5,
) -> None:
    """Paired bootstrap of test macro-F1, A − B, on the test examples both were scored on.

    For two groups evaluated on the same cross-validation folds, also the corrected resampled t-test
    (Nadeau & Bengio 2003).
    """
    board = require_leaderboard(storage, results)
    finished = board.runs("finished")
    side_a, side_b = resolve_side(board, a, finished), resolve_side(board, b, finished)
    if side_a.fingerprint != side_b.fingerprint:
        raise UsageError(
            f"{a} and {b} were tested on different data (fingerprints {side_a.fingerprint[:12]} and "
            f"{side_b.fingerprint[:12]}); compare needs the same test set"
        )
    folds = stats.fold_test(side_a.runs, side_b.runs)
    if any(stats.rotates_test(run) for run in [*side_a.runs, *side_b.runs]):
        if folds is None:
            raise UsageError(
                f"{a} and {b} rotate the test split over folds but were not run on the same folds; "
                "compare needs the same folds (or the same test set)"
            )
        print_sides(
            a,
            b,
            side_a,
            side_b,
            folds.folds,
            stats.mean_macro_f1(side_a.runs),
            stats.mean_macro_f1(side_b.runs),
            title="compare over folds that rotate the test split (no shared test examples to bootstrap)",
        )
        print_fold_test(folds)
        print_verdict(folds.significant, folds.mean_difference)
        return
    stored = board.predictions_many([*side_a.run_ids, *side_b.run_ids], probabilities=False)
    missing = [run_id for run_id in [*side_a.run_ids, *side_b.run_ids] if run_id not in stored]
    if missing:
        raise ResultsError(f"run {missing[0]} has no stored test predictions; it cannot be compared")
    result = stats.compare(
        [stored[run_id] for run_id in side_a.run_ids],
        [stored[run_id] for run_id in side_b.run_ids],
        num_classes=max(side_a.num_classes, side_b.num_classes),
        resamples=resamples,
        seed=bootstrap_seed,
    )
    print_sides(
        a,
        b,
        side_a,
        side_b,
        folds.folds if folds is not None else None,
        result.a_macro_f1,
        result.b_macro_f1,
        title=f"compare on {result.n_examples} shared test examples",
        runs=(result.a_runs, result.b_runs),
    )
    console.print(
        f"Δ macro-F1 (A − B) = {result.difference:+.4f}, 95% CI [{result.ci_low:+.4f}, {result.ci_high:+.4f}], "
        f"p = {format_value(result.p_value, 'p')} (paired bootstrap, {result.resamples} resamples)",
        markup=False,
        highlight=False,
    )
    if folds is not None:
        print_fold_test(folds)
    print_verdict(result.significant, result.difference)
    if len(side_a.runs) == 1 and len(side_b.runs) == 1:
        labels = side_a.runs[0].metrics.labels if side_a.runs[0].metrics else []
        print_disagreements(
            board.predictions(side_a.run_ids[0]), board.predictions(side_b.run_ids[0]), labels, examples
        )


def print_disagreements(a: Predictions, b: Predictions, labels: list[str], limit: int) -> None:
    """How often two runs label a shared test example differently, who is right then, and ``limit`` examples."""
    shared, found = disagreements(a, b, labels)
    wins = Counter(item.winner for item in found)
    console.print(
        terminal(
            f"A and B disagree on {len(found)} of {shared} shared test examples: A right on {wins['A']}, "
            f"B right on {wins['B']}, neither on {wins['neither']}"
        ),
        soft_wrap=not console.is_terminal,
    )
    if not found or not limit:
        return
    with_texts = any(item.text is not None for item in found)
    columns = [Column("example", detail=with_texts), Column("gold"), Column("A"), Column("B"), Column("right")]
    columns += [Column("text", free_text=True, min_width=20)] if with_texts else []
    table = FitTable(None, columns)
    for item in found[:limit]:
        table.add_row(
            item.example_id, item.gold, item.a, item.b, item.winner, *([item.text or "—"] if with_texts else [])
        )
    print_table(console, table)


def print_sides(
    a: str,
    b: str,
    side_a: Side,
    side_b: Side,
    folds: int | None,
    a_f1: float,
    b_f1: float,
    *,
    title: str,
    runs: tuple[int, int] | None = None,
) -> None:
    """The two sides of a comparison: runs, encoder / head, number of runs and mean macro-F1."""
    counts = runs or (len(side_a.run_ids), len(side_b.run_ids))
    count = "seeds × folds" if folds else "seeds"
    table = FitTable(
        title,
        [Column(""), Column("runs"), Column("encoder / head"), Column(count, "right"), Column("macro-F1", "right")],
    )
    table.add_row("A", a, side_a.description, str(counts[0]), f"{a_f1:.4f}")
    table.add_row("B", b, side_b.description, str(counts[1]), f"{b_f1:.4f}")
    print_table(console, table)


def print_fold_test(folds: stats.FoldTest) -> None:
    """The corrected resampled t-test over folds, as one line."""
    console.print(
        f"Δ macro-F1 over {folds.folds} folds = {folds.mean_difference:+.4f}, t = {folds.t:+.3f}, "
        f"p = {format_value(folds.p_value, 'p')} (corrected resampled t-test, Nadeau & Bengio 2003: "
        f"{folds.folds - 1} degrees of freedom, n_test/n_train = {folds.test_train_ratio:.3f})",
        markup=False,
        highlight=False,
    )


def print_verdict(significant: bool, difference: float) -> None:
    """Which side is significantly better at the 5 % level, if either."""
    if not significant:
        verdict = "no significant difference at the 5% level"
    else:
        verdict = f"{'A' if difference > 0 else 'B'} is significantly better (p < 0.05)"
    console.print(terminal(verdict, style="bold"))


# ------------------------------------------------------------------ helpers


@dataclass
class Side:
    """One side of ``bench compare``: a single run or a group of seeds (and folds)."""

    description: str
    runs: list[RunRecord]
    fingerprint: str
    num_classes: int

    @property
    def run_ids(self) -> list[str]:
        """The ids of the side's runs."""
        return [run.run_id for run in self.runs]


def resolve_side(board: Leaderboard, token: str, finished: list[RunRecord]) -> Side:
    """A run id/prefix or a group key (``g-…``, prefix allowed) as the runs to compare."""
    if token.startswith("g-"):
        groups = stats.group_runs(finished)
        matches = [key for key in groups if key.startswith(token)]
        if len(matches) != 1:
            problem = "is ambiguous" if matches else "matches no group of finished runs"
            raise UsageError(f"group key {token!r} {problem}; see `bench leaderboard --view groups`")
        runs = groups[matches[0]]
        first = runs[0]
        return Side(f"{first.encoder} / {first.head}", runs, fold_scheme(first.fingerprint), _num_classes(runs))
    record = board.get_run(token)
    if record.status != "finished":
        raise UsageError(f"run {record.run_id} is {record.status}, not finished; only finished runs can be compared")
    return Side(f"{record.encoder} / {record.head}", [record], fold_scheme(record.fingerprint), _num_classes([record]))


def _num_classes(runs: list[RunRecord]) -> int:
    return max(len(run.metrics.labels) if run.metrics else 0 for run in runs)


def empty_message(results: Path, board: Leaderboard | None, *, filtered: bool) -> str:
    """A friendly line for an empty (or fully filtered) leaderboard."""
    where = board.url if board is not None else str(database_path(results))
    if board is None:
        return f"No leaderboard yet: {where} does not exist. Record a run (bench run …) to start one."
    if filtered:
        return f"No runs in {where} match the filters."
    return f"The leaderboard {where} is empty: no runs recorded yet."


def load_groups(
    board: Leaderboard, records: list[RunRecord], resamples: int, seed: int, include_flagged: bool = False
) -> list[stats.GroupStats]:
    """Groups of the finished ``records`` with bootstrap CIs and p-values from stored predictions."""
    finished = [record for record in records if record.status == "finished"]
    predictions = board.predictions_many((record.run_id for record in finished), probabilities=False)
    return stats.aggregate(finished, predictions, resamples=resamples, seed=seed, include_flagged=include_flagged)


def sort_runs(records: list[RunRecord]) -> list[RunRecord]:
    """Finished runs by test macro-F1 (best first), then unfinished runs, newest first."""
    finished = sorted(
        (record for record in records if record.macro_f1 is not None), key=lambda record: -(record.macro_f1 or 0.0)
    )
    others = sorted((record for record in records if record.macro_f1 is None), key=lambda r: r.updated_at, reverse=True)
    return finished + others


def run_table(records: list[RunRecord], include_flagged: bool = False, wide: bool = False) -> FitTable:
    """Runs of one fingerprint; the best unflagged run in bold green, flag symbols after the status.

    The setting column shows what sets each run apart from the others (``wide``: all its settings).
    """
    first = records[0]
    with_errors = any(record.error for record in records)
    if wide:
        settings = {record.run_id: stats.hyperparameters(record) for record in records}
    else:
        settings = stats.distinguishing_settings(records)
    with_settings = any(settings.values())
    folds = {record.run_id: fold_of(record.fingerprint) for record in records}
    with_folds = any(folds.values())
    columns = [
        Column("#", "right"),
        Column("run"),
        Column("encoder"),
        Column("head"),
        Column("seed", "right", priority=4),
    ]
    columns += [Column("fold", "right", priority=4)] if with_folds else []
    columns += [Column("setting", priority=1, free_text=True)] if with_settings else []
    # When every run finished unflagged the status says nothing new: it is the first to go on a narrow terminal.
    routine = all(record.status == "finished" and not record.flags for record in records)
    columns += [
        Column("status", priority=3 if routine else 0),
        Column("macro-F1", "right"),
        Column("accuracy", "right", priority=2),
        Column("val F1", "right", detail=True),
        Column("params", "right", detail=True),
        Column("train s", "right", detail=True),
    ]
    columns += [Column("error", priority=3, free_text=True, min_width=16)] if with_errors else []
    table = FitTable(f"{first.dataset} · fingerprint {first.fingerprint[:12]} · test scores", columns)
    best = stats.best_run_id(records, include_flagged)
    for position, record in enumerate(records, start=1):
        efficiency = stats.efficiency(record)
        f1 = format_value(record.macro_f1, "score")
        cells = [
            str(position) if record.macro_f1 is not None else "",
            record.run_id,
            record.encoder,
            record.head,
            str(record.seed),
            *([_fold_text(folds[record.run_id])] if with_folds else []),
            *([format_params(settings[record.run_id]) or "—"] if with_settings else []),
            _status_text(record),
            terminal(f1, style="bold green") if record.run_id == best else f1,
            format_value(record.accuracy, "score"),
            format_value(record.val_macro_f1, "score"),
            format_value(efficiency.get("total_params"), "params"),
            format_value(efficiency.get("train_seconds"), "seconds"),
        ]
        if with_errors:
            cells.append(terminal(record.error.splitlines()[0] if record.error else "", style="dim"))
        table.add_row(*cells)
    return table


def _fold_text(fold: tuple[int, int] | None) -> str:
    return f"{fold[0]}/{fold[1]}" if fold is not None else "—"


def pareto_table(points: list[ParetoPoint]) -> FitTable:
    """Runs of one fingerprint by latency at batch 1, the Pareto-optimal ones (macro-F1 vs latency) starred."""
    first = points[0]
    title = f"{first.dataset} · fingerprint {first.fingerprint[:12]} · macro-F1 vs latency"
    columns = [
        Column(""),
        Column("run"),
        Column("encoder"),
        Column("head"),
        Column("seed", "right", priority=2),
        Column("macro-F1", "right"),
        Column("latency b1 (ms)", "right"),
        Column("dominated by", priority=1),
    ]
    table = FitTable(title, columns)
    for point in points:
        cells = [
            "★" if point.optimal else "",
            point.run_id,
            point.encoder,
            point.head,
            str(point.seed),
            format_value(point.macro_f1, "score"),
            format_value(point.latency_ms, "ms"),
            point.dominated_by or "",
        ]
        table.add_row(*cells, style="bold" if point.optimal else None)
    return table


def _status_text(record: RunRecord) -> Text:
    styles = {"finished": "green", "running": "cyan", "failed": "red", "interrupted": "yellow", "pruned": "dim"}
    if is_stale(record):
        return terminal("stale", style="yellow")
    text = terminal(record.status, style=styles.get(record.status, ""))
    if record.flags:
        text.append(f" {flag_symbols(record.flags)}", style="bold red")
    return text


def group_table(groups: list[stats.GroupStats]) -> FitTable:
    """Groups of one fingerprint: mean ± std, 95% CI, n, ≈ for ties with the best, flag symbols."""
    first = groups[0]
    settings = stats.distinguishing_settings(groups)
    with_settings = any(settings.values())
    columns = [Column("rank", "right"), Column(""), Column("group"), Column("encoder"), Column("head")]
    columns += [Column("setting", priority=1, free_text=True)] if with_settings else []
    columns += [
        Column("n", "right", priority=4),
        Column("macro-F1", "right"),
        Column("95% CI", "right", priority=2),
        Column("accuracy", "right", priority=3),
        Column("p vs best", "right", detail=True),
    ]
    table = FitTable(
        f"{first.dataset} · fingerprint {first.fingerprint[:12]} · test scores, mean ± std over seeds", columns
    )
    for group in groups:
        mark = "★" if group.best else ("≈" if group.indistinguishable_from_best else "")
        mark += flag_symbols(group.flags)
        row = [str(group.rank), mark, group.key, group.encoder, group.head]
        if with_settings:
            row.append(format_params(settings[group.key]) or "—")
        ci = "—" if group.ci_low is None or group.ci_high is None else f"[{group.ci_low:.4f}, {group.ci_high:.4f}]"
        row += [
            f"{group.n} ({len(group.folds)} folds)" if group.folds else str(group.n),
            _mean_std(group.macro_f1_mean, group.macro_f1_std),
            ci,
            _mean_std(group.accuracy_mean, group.accuracy_std),
            format_value(group.p_vs_best, "p"),
        ]
        table.add_row(*row, style="bold" if group.best else None)
    return table


def _mean_std(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "—"
    return f"{mean:.4f} ± {std:.4f}" if std is not None else f"{mean:.4f}"


def summary_fields(record: RunRecord) -> list[tuple[str, str | Text]]:
    """Identity, status and headline scores of one run, as (name, value) pairs."""
    rows: list[tuple[str, str | Text]] = [
        ("status", _status_text(record)),
        ("encoder / head / seed", f"{record.encoder} / {record.head} / {record.seed}"),
        ("dataset", f"{record.dataset} (fingerprint {record.fingerprint})"),
        ("group", stats.group_key(record)),
        ("config hash", record.config_hash),
        ("attempts", str(record.attempts)),
        ("process", f"{record.pid} on {record.host}" if record.pid else "—"),
        ("created / updated", f"{record.created_at} / {record.updated_at}"),
    ]
    if record.study:
        rows.append(("study / trial", f"{record.study} / {record.trial}"))
    if record.error:
        rows.append(("error", terminal(record.error, style="red")))
    if record.flags:
        rows.append(("flags", terminal(flag_legend(record.flags), style="bold red")))
    metrics = record.metrics
    if metrics is not None:
        rows += [
            ("test macro-F1", format_value(metrics.macro_f1, "score")),
            ("test accuracy", format_value(metrics.accuracy, "score")),
            (
                "predicted classes",
                "—" if record.predicted_classes is None else f"{record.predicted_classes} of {len(metrics.labels)}",
            ),
            (
                "val macro-F1",
                format_value(metrics.val_macro_f1, "score")
                + (f" (best epoch {metrics.best_epoch})" if metrics.best_epoch is not None else ""),
            ),
            ("parameters (trainable)", f"{metrics.total_params:,} ({metrics.trainable_params:,})"),
        ]
        rows += [
            (name.replace("_", " "), f"{value:,.3f}")
            for name, value in sorted(metrics.timings.items())
            if isinstance(value, (int, float))
        ]
        if metrics.checkpoint:
            rows.append(("checkpoint", metrics.checkpoint))
    return rows


def config_fields(record: RunRecord) -> list[tuple[str, str | Text]]:
    """The run's full config, nested fields flattened to ``data.source`` style keys."""
    return [
        (name, json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else str(value))
        for name, value in _flatten(record.config)
    ]


def _flatten(config: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for name, value in sorted(config.items()):
        if isinstance(value, dict):
            items += _flatten(value, f"{prefix}{name}.")
        else:
            items.append((f"{prefix}{name}", value))
    return items


def per_class_table(metrics: RunMetrics) -> FitTable:
    """Precision, recall, F1 and support per class on the test split."""
    columns = [
        Column("class"),
        Column("precision", "right"),
        Column("recall", "right"),
        Column("F1", "right"),
        Column("support", "right"),
    ]
    table = FitTable("test scores per class", columns)
    per_class = metrics.per_class
    for label in [label for label in metrics.labels if label in per_class] or list(per_class):
        scores = per_class[label]
        scores_text = (f"{scores.precision:.4f}", f"{scores.recall:.4f}", f"{scores.f1:.4f}", str(scores.support))
        table.add_row(label, *scores_text)
    return table


def confusion_table(labels: list[str], confusion: list[list[int]], *, numbered: bool = False) -> FitTable:
    """The test confusion matrix: rows are gold classes, columns predicted classes.

    ``numbered`` heads the columns with class numbers (rows say which is which), for a narrow terminal.
    """
    names = labels if len(labels) == len(confusion) else [str(index) for index in range(len(confusion))]
    headers = [str(index) for index in range(len(names))] if numbered else names
    rows = [f"{index} {name}" for index, name in enumerate(names)] if numbered else names
    columns = [Column("gold \\ predicted"), *(Column(header, "right") for header in headers)]
    table = FitTable("confusion matrix (rows: gold, columns: predicted)", columns)
    for index, (name, row) in enumerate(zip(rows, confusion, strict=True)):
        cells = [
            terminal(str(count), style="bold green" if column == index else "") for column, count in enumerate(row)
        ]
        table.add_row(name, *cells)
    return table


def history_table(history: list[dict[str, Any]]) -> FitTable:
    """One row per training epoch."""
    names = list(dict.fromkeys(name for epoch in history for name in epoch))
    table = FitTable("training history", [Column(name, "right") for name in names])
    for epoch in history:
        table.add_row(*[_history_value(epoch.get(name)) for name in names])
    return table


def _history_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "—" if value is None else str(value)
