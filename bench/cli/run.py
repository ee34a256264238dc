"""``bench run``: one configuration, trained, tested and recorded."""

from __future__ import annotations

import statistics
from typing import Annotated, Any

import typer
from lightning.pytorch.callbacks import RichProgressBar
from rich.table import Table

from bench.cli import options as opt
from bench.cli.app import add_row, app, console
from bench.data.folds import fold_of
from bench.escaping import terminal
from bench.leaderboard.records import RunRecord
from bench.preparation.datasets import fold_configs
from bench.preparation.service import prepare
from bench.tasks import task_named
from bench.training.runner import run_experiment


@app.command()
@opt.with_options(opt.DATA_OPTIONS, opt.FOLD_OPTIONS, opt.RUN_OPTIONS, opt.PLUGIN_OPTIONS, opt.RESULTS_OPTIONS)
def run(
    rerun: Annotated[
        bool, typer.Option("--rerun", help="Train again even if this configuration has finished.")
    ] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar while training.")] = True,
    **options: Any,
) -> None:
    """Train ENCODER + HEAD on DATA, test the best epoch, record the run in the leaderboard \
(one run per fold with --folds)."""
    config = opt.run_config(options)
    if config.threads is None:
        config = config.with_updates(threads=opt.default_threads(config.devices))
    # Refused inputs and unusable splits of any fold leave no results folder behind.
    prepared = prepare(config, options["storage"], plugin_specs=options["plugin"])
    records = []
    for fold in fold_configs(config):
        callbacks = [RichProgressBar(leave=True)] if progress and console.is_terminal else []
        record = run_experiment(
            fold,
            prepared.leaderboard,
            dataset=prepared.datasets.dataset(fold),
            callbacks=callbacks,
            rerun=rerun,
            phases=prepared.phases[fold.data.fold],
        )
        print_run(record)
        records.append(record)
    if len(records) > 1:
        print_folds(records)
    if any(record.status != "finished" for record in records):
        raise SystemExit(1)


def print_folds(records: list[RunRecord]) -> None:
    """Test macro-F1 over the folds of one configuration: mean ± standard deviation."""
    scores = [record.macro_f1 for record in records if record.status == "finished" and record.macro_f1 is not None]
    spread = f" ± {statistics.stdev(scores):.4f}" if len(scores) > 1 else ""
    mean = f"{statistics.fmean(scores):.4f}{spread}" if scores else "-"
    console.print(
        f"{len(scores)} of {len(records)} folds finished · test macro-F1 {mean} (mean ± std over folds) · "
        f"config {records[0].config_hash}",
        highlight=False,
    )


def print_run(record: RunRecord) -> None:
    """One run's outcome as a small table."""
    table = Table(title=terminal(f"run {record.run_id}"), show_header=False)
    add_row(table, "encoder / head", f"{record.encoder} / {record.head}")
    add_row(table, "dataset", f"{record.dataset} ({record.fingerprint[:12]})")
    if (fold := fold_of(record.fingerprint)) is not None:
        add_row(table, "fold", f"{fold[0]} of {fold[1]}")
    add_row(table, "status", record.status)
    if record.status == "finished" and record.metrics is not None:
        metrics = record.metrics
        for name, value in task_named(metrics.task).headline(metrics):
            add_row(table, name, value)
        add_row(table, "val macro-F1 (best epoch)", f"{metrics.val_macro_f1:.4f} (epoch {metrics.best_epoch})")
        add_row(table, "parameters (trainable)", f"{metrics.total_params:,} ({metrics.trainable_params:,})")
        add_row(table, "train samples/s", f"{metrics.timings.get('train_samples_per_second', 0):.1f}")
        if any(metrics.truncated.values()):
            splits = ", ".join(f"{split} {count}" for split, count in metrics.truncated.items() if count)
            add_row(table, "texts cut to --max-len", splits)
    elif record.error:
        add_row(table, "error", record.error)
    console.print(table)
