"""``bench baseline``: TF-IDF + logistic regression and majority-class reference rows in the leaderboard."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from bench.baselines import BASELINES, DEFAULT_C_GRID, baseline_config, chosen_c
from bench.baselines.fitting import run_baseline
from bench.cli import options as opt
from bench.cli.app import app, console
from bench.config import SETTINGS
from bench.errors import UsageError
from bench.escaping import terminal
from bench.leaderboard.export import format_value
from bench.leaderboard.records import RunRecord
from bench.machine.threads import set_threads
from bench.preparation.service import prepare

D = opt.DEFAULTS

Kind = Annotated[
    list[str] | None,
    typer.Option("--kind", metavar="KIND", help="Baseline to record: tfidf or majority (repeatable; default: both)."),
]
DEFAULT_C_GRID_TEXT = ",".join(f"{value:g}" for value in DEFAULT_C_GRID)
CGrid = Annotated[
    str, typer.Option("--c-grid", help="Comma-separated C values of the logistic regression, chosen on validation.")
]


@app.command()
@opt.with_options(opt.DATA_OPTIONS, opt.RESULTS_OPTIONS, opt.THREAD_OPTIONS)
def baseline(
    kind: Kind = None,
    c_grid: CGrid = DEFAULT_C_GRID_TEXT,
    rerun: Annotated[bool, typer.Option("--rerun", help="Fit again even if the row is already recorded.")] = False,
    per_label_threshold: opt.PerLabelThreshold = False,
    **options: Any,
) -> None:
    """Record reference rows on DATA's split: TF-IDF (char n-grams) + logistic regression, and the majority class.

    Both are tested on the same test examples as every run, so `bench leaderboard`,
    `bench compare` and `bench report` treat them like trained encoders (encoder
    tfidf / head logreg, encoder majority / head constant). Give the --train-limit
    of your runs to train the baselines on the same subset.
    """
    grid = parse_c_grid(c_grid)
    data_options = opt.data_options(options)
    results, train_limit = options["results"], options["train_limit"]
    configs = [
        baseline_config(
            name,
            data_options,
            train_limit=train_limit,
            results_dir=str(results),
            c_grid=grid,
            per_label_threshold=per_label_threshold,
        )
        for name in dict.fromkeys(kind or list(BASELINES))
    ]
    problem = SETTINGS["threads"].problem(options["threads"])  # type: ignore[union-attr]
    if problem is not None:
        raise UsageError(problem)
    set_threads(options["threads"] or opt.default_threads())
    # Unusable splits are refused before the leaderboard is touched.
    prepared = prepare(configs[0], options["storage"], check_names=False)
    board, dataset = prepared.leaderboard, prepared.datasets.first
    assert board is not None
    records = [run_baseline(config, board, dataset=dataset, rerun=rerun) for config in configs]
    console.print(baseline_table(records))
    if any(record.status != "finished" for record in records):
        raise SystemExit(1)


def parse_c_grid(text: str) -> list[float]:
    """``"0.3,1,3"`` → ``[0.3, 1.0, 3.0]``; :class:`UsageError` unless every part is a number."""
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--c-grid expects comma-separated numbers, got {text!r}") from None


def baseline_table(records: list[RunRecord]) -> Table:
    """The recorded baseline rows: scores, the chosen C and fitting time."""
    first = records[0]
    table = Table(
        title=terminal(f"baselines on {first.dataset} · fingerprint {first.fingerprint[:12]}"), title_justify="left"
    )
    unfinished = any(record.status != "finished" for record in records)
    columns = [("run", "left"), ("encoder", "left"), ("head", "left")] + ([("status", "left")] if unfinished else [])
    columns += [("val F1", "right"), ("test F1", "right"), ("accuracy", "right"), ("C", "right"), ("fit s", "right")]
    for name, justify in columns:
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for record in records:
        metrics = record.metrics
        c = chosen_c(metrics) if metrics is not None else None
        fit_seconds = metrics.timings.get("train_seconds") if metrics is not None else None
        status = (
            [terminal(record.status if not record.error else f"{record.status}: {record.error}")] if unfinished else []
        )
        table.add_row(
            terminal(record.run_id),
            terminal(record.encoder),
            terminal(record.head),
            *status,
            format_value(record.val_macro_f1, "score"),
            format_value(record.macro_f1, "score"),
            format_value(record.accuracy, "score"),
            "—" if c is None else f"{c:g}",
            format_value(fit_seconds, "seconds"),
        )
    return table
