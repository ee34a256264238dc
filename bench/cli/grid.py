"""``bench grid``: a cross product of configurations, resumable, shared by local and remote workers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from bench.cli import options as opt
from bench.cli.app import app, console
from bench.cli.config_file import ConfigFile
from bench.cli.parallel import f1_text, number_list, quiet_optuna, run_callbacks, worker_pool
from bench.cli.tables import Column, FitTable, flag_legend, flag_symbols, print_table
from bench.config import SETTINGS, RunConfig
from bench.errors import UsageError
from bench.escaping import markup, terminal
from bench.leaderboard.records import RunRecord
from bench.leaderboard.stats import best_run_id
from bench.leaderboard.store import Leaderboard
from bench.preparation.datasets import RunDatasets, fold_configs
from bench.preparation.service import prepare
from bench.tuning import grid as grids
from bench.tuning.grid_worker import GridEvent, GridOutcome, GridWorker, finished_points, open_grid_study
from bench.tuning.storage import open_storage, study_storage_url
from bench.urls import redact_url

D = opt.DEFAULTS
DEFAULTS_BY_NAME = vars(D)
GRID = "Grid"

Encoders = Annotated[
    str,
    typer.Option("--encoders", help="Comma-separated encoders, or all (every registered one).", rich_help_panel=GRID),
]
Heads = Annotated[str, typer.Option("--heads", help="Comma-separated heads, or all.", rich_help_panel=GRID)]
Seeds = Annotated[str, typer.Option("--seeds", help="Comma-separated training seeds.", rich_help_panel=GRID)]
DropoutList = Annotated[str | None, typer.Option("--dropout", help="Head dropouts.", rich_help_panel=GRID)]
HeadParamList = Annotated[
    list[str] | None,
    typer.Option(
        "--head-param",
        help="KEY=V1,V2 head hyperparameter values, for the heads that have KEY (repeatable); "
        'KEY=["2,3","3,4"] for values with commas.',
        rich_help_panel=GRID,
    ),
]
EncoderPaths = Annotated[
    list[str] | None,
    typer.Option(
        "--encoder-path",
        help="Local folder of an encoder: ENCODER=PATH (or PATH with one encoder; repeatable).",
        rich_help_panel=opt.MODEL,
    ),
]


def encoder_path_map(values: Sequence[str] | None, encoders: Sequence[str]) -> dict[str, str]:
    """``--encoder-path`` values as encoder → folder; a bare PATH needs exactly one encoder."""
    paths: dict[str, str] = {}
    for value in values or []:
        name, sep, path = value.partition("=")
        if sep and name in encoders:
            paths[name] = path
        elif len(encoders) == 1:
            paths[encoders[0]] = value
        else:
            raise UsageError(
                f"--encoder-path {value!r}: with several encoders give ENCODER=PATH (encoders: {', '.join(encoders)})"
            )
    return paths


def describe_config(config: RunConfig, fields: Sequence[str]) -> str:
    """``encoder + head · seed N · name=value …`` for the fields that vary."""
    values = " ".join(f"{name}={grids.field_value(config, name)}" for name in fields)
    return f"{config.encoder} + {config.head} · seed {config.seed}" + (f" · {values}" if values else "")


def progress_line(done: int, total: int, label: str) -> Table:
    """A static progress bar with ``done/total`` and a label (printed between runs)."""
    line = Table.grid(padding=(0, 1))
    line.add_row(
        ProgressBar(total=total, completed=done, width=30), Text(f"{done}/{total}", style="bold"), terminal(label)
    )
    return line


def grid_axes(values: dict[str, Any]) -> grids.GridAxes:
    """The axes of a grid from the ``bench grid`` options (comma lists)."""
    encoders = grids.resolve_encoders(opt.split_list(values["encoders"], "--encoders"))
    lists = {name: setting_list(name, values[name]) for name in opt.GRID_LISTS}
    head_params = opt.head_param_values(values["head_param"], lists=True)
    dropouts = number_list(values["dropout"], "--dropout", float)
    if dropouts is not None:
        head_params["dropout"] = dropouts
    return grids.GridAxes(
        encoders=encoders,
        heads=grids.resolve_heads(opt.split_list(values["heads"], "--heads")),
        seeds=number_list(values["seeds"], "--seeds", int) or (),
        hyperparameters={name: choices for name, choices in lists.items() if choices is not None},
        head_params=head_params,
        encoder_paths=encoder_path_map(values["encoder_path"], encoders),
    )


def setting_list(name: str, text: str | None) -> tuple[Any, ...] | None:
    """The values of grid list option ``name``, ``None`` when not given. A setting whose default is ``None``
    (``--lr``: each encoder's own) is resolved per point when not given, so its axis is then ``(None,)``."""
    declared, default = SETTINGS[name], DEFAULTS_BY_NAME[name]
    assert declared is not None
    values = number_list(text, declared.flag, opt.number_kind(name))
    return (None,) if values is None and default is None else values


# ---------------------------------------------------------------------------------------------- grid


@app.command()
@opt.with_options(
    opt.GRID_LIST_OPTIONS,
    opt.DATA_OPTIONS,
    opt.FOLD_OPTIONS,
    opt.GRID_SINGLE_OPTIONS,
    opt.PLUGIN_OPTIONS,
    opt.RESULTS_OPTIONS,
    opt.STUDY_OPTIONS,
)
def grid(
    ctx: typer.Context,
    config: ConfigFile = None,
    encoders: Encoders = "scratch",
    heads: Heads = "all",
    seeds: Seeds = str(D.seed),
    dropout: DropoutList = None,
    head_param: HeadParamList = None,
    encoder_path: EncoderPaths = None,
    **options: Any,
) -> None:
    """Run every combination of ENCODERS × HEADS × SEEDS × hyperparameter lists into the leaderboard.

    With --folds, each combination runs on every fold.

    Resumable: finished runs are skipped, failed or interrupted ones retried. Many
    workers (--workers or --gpus on this machine, or several machines with one
    --storage) share the grid.
    """
    quiet_optuna()
    opt.reject_renamed_leaderboard(options["leaderboard"])
    values = {**locals(), **options}
    axes = grid_axes(values)
    axis_names = (*opt.GRID_LISTS, *opt.GRID_AXES, "dropout", "head_param")
    singles = {name: value for name, value in values.items() if name not in axis_names}
    base = opt.run_config({**singles, "encoder": axes.encoders[0], "head": axes.heads[0]})
    workers = worker_pool(options, base.devices)
    base = base.with_updates(threads=workers.threads)
    points = [fold for point in grids.expand_grid(base, axes) for fold in fold_configs(point)]
    results = base.results_path
    storage_url = study_storage_url(options["study_storage"], options["storage"], results)
    # expand_grid checked every axis' names; every fold's data is checked before the leaderboard is opened.
    prepared = prepare(base, options["storage"], plugin_specs=options["plugin"], check_names=False)
    dataset, board = prepared.datasets, prepared.leaderboard
    assert board is not None
    study_name = grids.grid_study_name(points, dataset.fingerprint)
    fields = grids.varying_fields(points)
    if options["dry_run"]:
        print_grid_plan(points, fields, dataset, board, study_name, storage_url)
        return
    if workers.spawn:
        console.print(terminal(f"grid {study_name}: {len(points)} runs"))
        codes = workers.run(
            ctx,
            results,
            study_name,
            pass_index=False,
            on_poll=lambda: (len(finished_points(points, board, dataset)), "grid"),
            total=len(points),
        )
        print_grid_summary(points, fields, dataset, board)
        if any(codes):
            raise SystemExit(1)
        return
    study = open_grid_study(
        open_storage(storage_url, retry_dead_workers=True), study_name, points, dataset, config_file=config
    )
    progress = options["progress"]
    display = GridDisplay(points, fields, finished_points(points, board, dataset), progress)
    console.print(
        terminal(
            f"grid {study_name}: {len(points)} runs on {dataset.name} ({dataset.fingerprint[:12]}), "
            f"{len(display.done)} already finished · {workers.threads} threads · "
            f"study storage {redact_url(storage_url)}"
        )
    )
    outcome = GridWorker(study, points, dataset, board, callbacks=run_callbacks(progress), on_event=display.show).run()
    print_grid_summary(points, fields, dataset, board)
    print_outcome(outcome)
    if outcome.failed:
        raise SystemExit(1)


class GridDisplay:
    """Prints a progress line when a point starts and a result line when it ends."""

    def __init__(self, points: Sequence[RunConfig], fields: Sequence[str], done: set[int], progress: bool) -> None:
        self.points = points
        self.fields = fields
        self.done = set(done)
        self.progress = progress

    def show(self, event: GridEvent) -> None:
        """Render one :class:`GridEvent`."""
        label = describe_config(event.config, self.fields)
        if event.kind == "started":
            if self.progress:
                console.print(progress_line(len(self.done), len(self.points), label))
            return
        if event.kind in ("finished", "existing"):
            self.done.add(event.point)
        record = event.record
        if event.kind == "finished" and record is not None:
            seconds = record.metrics.timings.get("train_seconds", 0.0) if record.metrics else 0.0
            message = (
                f"  [green]✓[/] {markup(label)}: val macro-F1 {f1_text(record.val_macro_f1)} "
                f"· test {f1_text(record.macro_f1)} · {seconds:.1f} s"
            )
        elif event.kind == "failed" and record is not None:
            message = f"  [red]✗[/] {markup(label)}: {record.status}: {markup(record.error)}"
        elif event.kind == "existing":
            message = f"  [dim]= {markup(label)}: already finished (run {record.run_id if record else '?'})[/]"
        else:
            message = f"  [dim]· {markup(label)}: {markup(event.reason)}[/]"
        console.print(message, highlight=False)


def point_status(points: Sequence[RunConfig], board: Leaderboard, datasets: RunDatasets) -> list[RunRecord | None]:
    """The leaderboard row of each point (on its fold's dataset), if any."""
    rows = {
        (record.config_hash, record.fingerprint): record
        for fold in datasets.by_fold.values()
        for record in board.runs(fingerprint=fold.fingerprint)
    }
    return [rows.get((point.config_hash(), datasets.dataset(point).fingerprint)) for point in points]


def print_grid_plan(
    points: Sequence[RunConfig],
    fields: Sequence[str],
    dataset: RunDatasets,
    board: Leaderboard,
    study: str,
    storage_url: str,
) -> None:
    """The grid's runs, in the order workers take them, with their leaderboard status."""
    records = point_status(points, board, dataset)
    pending = sum(record is None or record.status != "finished" for record in records)
    columns = [
        Column("#", "right"),
        Column("encoder"),
        Column("head"),
        Column("seed", "right", priority=2),
        *(Column(name, priority=1) for name in fields),
        Column("config"),
        Column("status"),
    ]
    table = FitTable(f"grid {study}: {len(points)} runs, {pending} to run", columns)
    for index, (point, record) in enumerate(zip(points, records)):
        values = [str(grids.field_value(point, name)) for name in fields]
        status = (
            "to run"
            if record is None
            else ("to retry: " + record.status if record.status != "finished" else "finished")
        )
        table.add_row(str(index), point.encoder, point.head, str(point.seed), *values, point.config_hash(), status)
    print_table(console, table)
    console.print(
        terminal(
            f"dataset {dataset.name} ({dataset.fingerprint[:12]}) · leaderboard {board.url} · "
            f"study storage {redact_url(storage_url)}"
        )
    )


def print_grid_summary(
    points: Sequence[RunConfig], fields: Sequence[str], dataset: RunDatasets, board: Leaderboard
) -> None:
    """Each point's status and scores from the leaderboard."""
    records = point_status(points, board, dataset)
    columns = [
        Column(""),
        Column("encoder"),
        Column("head"),
        Column("seed", "right", priority=3),
        *(Column(name, priority=2) for name in fields),
        Column("status"),
        Column("val F1", "right", priority=1),
        Column("macro-F1", "right"),
        Column("run"),
    ]
    table = FitTable(f"grid results on {dataset.name} (test macro-F1)", columns)
    best = best_run_id([record for record in records if record is not None])
    for point, record in zip(points, records):
        values = [str(grids.field_value(point, name)) for name in fields]
        if record is None:
            table.add_row("", point.encoder, point.head, str(point.seed), *values, "not run", "–", "–", "–")
            continue
        style = {"finished": "green", "running": "yellow"}.get(record.status, "red")
        status = terminal(record.status, style=style)
        if record.flags:
            status.append(f" {flag_symbols(record.flags)}", style="bold red")
        table.add_row(
            "★" if record.run_id == best else "",
            point.encoder,
            point.head,
            str(point.seed),
            *values,
            status,
            f1_text(record.val_macro_f1),
            f1_text(record.macro_f1),
            record.run_id,
        )
    print_table(console, table)
    text = flag_legend(flag for record in records if record is not None for flag in record.flags)
    if text:
        console.print(
            f"★ best unflagged run. {text}.", highlight=False, markup=False, soft_wrap=not console.is_terminal
        )


def print_outcome(outcome: GridOutcome) -> None:
    """One line: what this worker ran, and what it left to other workers."""
    parts = [f"{len(outcome.ran)} ran", f"{len(outcome.failed)} failed", f"{len(outcome.existing)} already finished"]
    if outcome.skipped:
        parts.append(f"{len(outcome.skipped)} taken by other workers")
    if outcome.running_elsewhere:
        parts.append(f"{len(outcome.running_elsewhere)} still running in other workers")
    console.print("this worker: " + ", ".join(parts), highlight=False)
