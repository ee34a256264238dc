"""``bench grid`` (a cross product of configurations) and ``bench tune`` (an Optuna study), both resumable."""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Optional

import lightning as L
import optuna
import typer
from lightning.pytorch.callbacks import RichProgressBar
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from bench.cli import options as opt
from bench.cli.app import add_row, app, console
from bench.config import RunConfig
from bench.data.types import SplitDataset
from bench.errors import UsageError
from bench.escaping import markup, terminal
from bench.leaderboard.flags import FLAG_MARKER, legend
from bench.leaderboard.records import RunRecord
from bench.leaderboard.stats import best_run_id
from bench.leaderboard.store import Leaderboard
from bench.runs.dataset import prepare_dataset
from bench.tuning import grid as grids
from bench.tuning.grid_worker import GridEvent, GridOutcome, GridWorker, finished_points, open_grid_study
from bench.tuning.spaces import RUN_PARAMS, SearchSpace, load_space_file
from bench.tuning.storage import check_storage_url, default_storage_url, open_leaderboard, open_storage
from bench.tuning.study import (
    best_trial,
    PrunerName,
    TuneObjective,
    confirm_seeds,
    counted_trials,
    open_tune_study,
    run_trials,
    tune_study_name,
)
from bench.tuning.workers import gpu_groups, log_directory, parse_gpus, run_workers, worker_specs
from bench.urls import redact_url
from encoders import check_encoder_name
from heads import head_class, resolve_head_params

D = opt.DEFAULTS
GRID = "Grid"
PARALLEL = "Workers and storage"

Encoders = Annotated[
    str,
    typer.Option("--encoders", help="Comma-separated encoders, or all (every registered one).", rich_help_panel=GRID),
]
Heads = Annotated[str, typer.Option("--heads", help="Comma-separated heads, or all.", rich_help_panel=GRID)]
Seeds = Annotated[str, typer.Option("--seeds", help="Comma-separated training seeds.", rich_help_panel=GRID)]
LrList = Annotated[
    Optional[str], typer.Option("--lr", help="Encoder learning rates, comma-separated.", rich_help_panel=GRID)
]
HeadLrList = Annotated[Optional[str], typer.Option("--head-lr", help="Head learning rates.", rich_help_panel=GRID)]
DropoutList = Annotated[Optional[str], typer.Option("--dropout", help="Head dropouts.", rich_help_panel=GRID)]
BatchSizeList = Annotated[Optional[str], typer.Option("--batch-size", help="Batch sizes.", rich_help_panel=GRID)]
EpochsList = Annotated[Optional[str], typer.Option("--epochs", help="Epoch counts.", rich_help_panel=GRID)]
MaxLenList = Annotated[Optional[str], typer.Option("--max-len", help="Maximum token counts.", rich_help_panel=GRID)]
WeightDecayList = Annotated[Optional[str], typer.Option("--weight-decay", help="Weight decays.", rich_help_panel=GRID)]
WarmupList = Annotated[Optional[str], typer.Option("--warmup-ratio", help="Warmup ratios.", rich_help_panel=GRID)]
HeadParamList = Annotated[
    Optional[list[str]],
    typer.Option(
        "--head-param",
        help='KEY=V1,V2 head hyperparameter values, for the heads that have KEY (repeatable); KEY=["2,3","3,4"] for values with commas.',
        rich_help_panel=GRID,
    ),
]
EncoderPaths = Annotated[
    Optional[list[str]],
    typer.Option(
        "--encoder-path",
        help="Local folder of an encoder: ENCODER=PATH (or PATH with one encoder; repeatable).",
        rich_help_panel=opt.MODEL,
    ),
]
StorageUrl = Annotated[
    Optional[str],
    typer.Option(
        "--storage",
        help="Optuna storage URL shared by all workers (default sqlite:///<results>/optuna.db; postgresql://… for many machines).",
        rich_help_panel=PARALLEL,
    ),
]
LeaderboardUrl = Annotated[
    Optional[str],
    typer.Option(
        "--leaderboard",
        help="Leaderboard database URL (default: the --storage database when it is a server, else <results>/leaderboard.db).",
        rich_help_panel=PARALLEL,
    ),
]
Gpus = Annotated[
    Optional[str],
    typer.Option("--gpus", help="Run one worker process per GPU, e.g. 0,1,2,3 (per --devices GPUs with --devices).", rich_help_panel=PARALLEL),
]
WorkerIndex = Annotated[int, typer.Option("--worker-index", hidden=True)]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the plan and exit.")]
Progress_ = Annotated[
    bool, typer.Option("--progress/--no-progress", help="Progress bars (within a run only on a terminal).")
]


def split_list(text: str, option: str) -> list[str]:
    """``"a, b,c"`` → ``["a", "b", "c"]``; an empty item is a :class:`UsageError`."""
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise UsageError(f"{option} expects a comma-separated list, got {text!r}")
    return items


def number_list(text: str | None, option: str, kind: type[int | float]) -> tuple[Any, ...] | None:
    """A comma list of ints or floats, ``None`` when the option was not given."""
    if text is None:
        return None
    values = []
    for item in split_list(text, option):
        try:
            values.append(kind(item))
        except ValueError:
            raise UsageError(f"{option}: {item!r} is not {'an integer' if kind is int else 'a number'}") from None
    return tuple(values)


def head_param_lists(pairs: Sequence[str] | None) -> dict[str, tuple[Any, ...]]:
    """``["k=v1,v2", 'k2=["a,b","c"]']`` → ``{"k": (v1, v2), "k2": ("a,b", "c")}``; values parsed as JSON where they are."""
    parsed: dict[str, tuple[Any, ...]] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip() or not raw.strip():
            raise UsageError(f"--head-param expects KEY=V1,V2,..., got {pair!r}")
        try:
            whole = json.loads(raw)
        except json.JSONDecodeError:
            whole = None
        items = (
            whole
            if isinstance(whole, list)
            else [_json_or_text(item) for item in split_list(raw, f"--head-param {key}")]
        )
        parsed[key.strip()] = tuple(items)
    return parsed


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


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


def command_args(ctx: typer.Context, drop: set[str], extra: Sequence[str] = ()) -> list[str]:
    """The command line that invoked ``ctx``'s command (options given explicitly), minus ``drop``, plus ``extra``."""
    args = [ctx.info_name or ctx.command.name or ""]
    for param in ctx.command.params:
        if (
            param.param_type_name != "option"
            or param.name in drop
            or param.name is None
            or not explicit(ctx, param.name)
        ):
            continue
        value = ctx.params[param.name]
        if getattr(param, "is_flag", False):
            if value or param.secondary_opts:
                args.append(param.opts[0] if value else param.secondary_opts[0])
        elif param.multiple:
            for item in value or ():
                args.extend([param.opts[0], str(item)])
        elif value is not None:
            args.extend([param.opts[0], str(value)])
    return [*args, *extra]


def explicit(ctx: typer.Context, name: str) -> bool:
    """Whether option ``name`` was given on the command line (or in the environment), per click's parameter source."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT", "PROMPT")


def run_callbacks(progress: bool) -> Callable[[], list[L.Callback]]:
    """Fresh Lightning callbacks for each run: Rich's progress bar on a terminal."""
    return lambda: [RichProgressBar(leave=False)] if progress and console.is_terminal else []


def describe_config(config: RunConfig, fields: Sequence[str]) -> str:
    """``encoder + head · seed N · name=value …`` for the fields that vary."""
    values = " ".join(f"{name}={grids.field_value(config, name)}" for name in fields)
    return f"{config.encoder} + {config.head} · seed {config.seed}" + (f" · {values}" if values else "")


def progress_line(done: int, total: int, label: str) -> Table:
    """A static progress bar with ``done/total`` and a label (printed between runs)."""
    line = Table.grid(padding=(0, 1))
    line.add_row(ProgressBar(total=total, completed=done, width=30), Text(f"{done}/{total}", style="bold"), terminal(label))
    return line


def f1_text(value: float | None) -> str:
    """A macro-F1 with 4 decimals, or a dash."""
    return "–" if value is None else f"{value:.4f}"


# The options of `bench run` that a grid lists several values for, at their `bench run` defaults (the
# grid's axes then set them per point).
SINGLE_RUN_DEFAULTS: dict[str, Any] = {
    "encoder_path": None,
    "head_param": None,
    "dropout": None,
    "head_lr": None,
    "seed": D.seed,
    "epochs": D.epochs,
    "max_len": D.max_len,
    "batch_size": D.batch_size,
    "lr": None,
    "weight_decay": D.weight_decay,
    "warmup_ratio": D.warmup_ratio,
}


def grid_axes(values: dict[str, Any]) -> grids.GridAxes:
    """The axes of a grid from the ``bench grid`` options (comma lists)."""
    encoders = grids.resolve_encoders(split_list(values["encoders"], "--encoders"))
    lists = {
        # Without --lr each encoder trains with its own default learning rate (None).
        "lr": number_list(values["lr"], "--lr", float) or (None,),
        "head_lr": number_list(values["head_lr"], "--head-lr", float),
        "batch_size": number_list(values["batch_size"], "--batch-size", int),
        "epochs": number_list(values["epochs"], "--epochs", int),
        "max_len": number_list(values["max_len"], "--max-len", int),
        "weight_decay": number_list(values["weight_decay"], "--weight-decay", float),
        "warmup_ratio": number_list(values["warmup_ratio"], "--warmup-ratio", float),
    }
    head_params = head_param_lists(values["head_param"])
    dropouts = number_list(values["dropout"], "--dropout", float)
    if dropouts is not None:
        head_params["dropout"] = dropouts
    return grids.GridAxes(
        encoders=encoders,
        heads=grids.resolve_heads(split_list(values["heads"], "--heads")),
        seeds=number_list(values["seeds"], "--seeds", int) or (),
        hyperparameters={name: choices for name, choices in lists.items() if choices is not None},
        head_params=head_params,
        encoder_paths=encoder_path_map(values["encoder_path"], encoders),
    )


def quiet_optuna() -> None:
    """Optuna's own log lines (trial ended, tracebacks of failed runs) off: this module reports trials itself."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)


# ---------------------------------------------------------------------------------------------- grid


@app.command()
@opt.with_options(opt.DATA_OPTIONS, opt.ENCODER_OPTIONS, opt.TRAINING_OPTIONS, opt.RESULTS_OPTIONS)
def grid(
    ctx: typer.Context,
    encoders: Encoders = "scratch",
    heads: Heads = "all",
    seeds: Seeds = str(D.seed),
    lr: LrList = None,
    head_lr: HeadLrList = None,
    dropout: DropoutList = None,
    batch_size: BatchSizeList = None,
    epochs: EpochsList = None,
    max_len: MaxLenList = None,
    weight_decay: WeightDecayList = None,
    warmup_ratio: WarmupList = None,
    head_param: HeadParamList = None,
    encoder_path: EncoderPaths = None,
    storage: StorageUrl = None,
    leaderboard: LeaderboardUrl = None,
    gpus: Gpus = None,
    dry_run: DryRun = False,
    progress: Progress_ = True,
    **options: Any,
) -> None:
    """Run every combination of ENCODERS × HEADS × SEEDS × hyperparameter lists into the leaderboard.

    Resumable: finished runs are skipped, failed or interrupted ones retried. Many
    workers (--gpus, or several machines with one --storage) share the grid.
    """
    quiet_optuna()
    values = {**locals(), **options}
    axes = grid_axes(values)
    base = opt.run_config({**values, **SINGLE_RUN_DEFAULTS, "encoder": axes.encoders[0], "head": axes.heads[0]})
    points = grids.expand_grid(base, axes)
    results = base.results_path
    storage_url = storage or default_storage_url(results)
    check_storage_url(storage_url)
    gpu_list = gpu_groups(parse_gpus(gpus), base.devices)
    dataset = prepare_dataset(base)
    study_name = grids.grid_study_name(points, dataset.fingerprint)
    board = open_leaderboard(leaderboard, storage, results)
    fields = grids.varying_fields(points)
    if dry_run:
        print_grid_plan(points, fields, dataset, board, study_name, storage_url)
        return
    if gpu_list:
        codes = run_grid_workers(ctx, gpu_list, points, dataset, board, study_name, storage_url, results)
        print_grid_summary(points, fields, dataset, board)
        if any(codes):
            raise SystemExit(1)
        return
    study = open_grid_study(open_storage(storage_url, retry_dead_workers=True), study_name, points, dataset)
    display = GridDisplay(points, fields, finished_points(points, board, dataset.fingerprint), progress)
    console.print(
        terminal(f"grid {study_name}: {len(points)} runs on {dataset.name} ({dataset.fingerprint[:12]}), "
                 f"{len(display.done)} already finished · storage {redact_url(storage_url)}"),
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
            message = f"  [green]✓[/] {markup(label)}: val macro-F1 {f1_text(record.val_macro_f1)} · test {f1_text(record.macro_f1)} · {seconds:.1f} s"
        elif event.kind == "failed" and record is not None:
            message = f"  [red]✗[/] {markup(label)}: {record.status}: {markup(record.error)}"
        elif event.kind == "existing":
            message = f"  [dim]= {markup(label)}: already finished (run {record.run_id if record else '?'})[/]"
        else:
            message = f"  [dim]· {markup(label)}: {markup(event.reason)}[/]"
        console.print(message, highlight=False)


def run_grid_workers(
    ctx: typer.Context,
    gpus: list[str],
    points: Sequence[RunConfig],
    dataset: SplitDataset,
    board: Leaderboard,
    study_name: str,
    storage_url: str,
    results: Path,
) -> list[int]:
    """One ``bench grid`` worker per GPU; a live progress bar from the leaderboard until all exit."""
    args = command_args(ctx, drop={"gpus", "dry_run", "progress"}, extra=["--no-progress"])
    specs = worker_specs(gpus, args, log_directory(results, study_name), os.environ, pass_index=False)
    console.print(
        terminal(f"grid {study_name}: {len(points)} runs, {len(specs)} workers (GPUs {', '.join(gpus)}); "
                 f"logs in {specs[0].log_path.parent}"),
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not console.is_terminal) as bar:
        task = bar.add_task("grid", total=len(points))

        def update(codes: list[int | None]) -> None:
            done = len(finished_points(points, board, dataset.fingerprint))
            running = sum(code is None for code in codes)
            bar.update(task, completed=done, description=f"grid · {running} workers running")

        codes = run_workers(specs, on_poll=update)
    for spec, code in zip(specs, codes):
        if code:
            console.print(
                f"[red]worker {spec.index} (GPU {markup(spec.gpu)}) exited with {code}[/]; see {markup(spec.log_path)}",
                highlight=False,
            )
    return codes


def point_status(points: Sequence[RunConfig], board: Leaderboard, fingerprint: str) -> list[RunRecord | None]:
    """The leaderboard row of each point, if any."""
    rows = {record.config_hash: record for record in board.runs(fingerprint=fingerprint)}
    return [rows.get(point.config_hash()) for point in points]


def print_grid_plan(
    points: Sequence[RunConfig],
    fields: Sequence[str],
    dataset: SplitDataset,
    board: Leaderboard,
    study: str,
    storage_url: str,
) -> None:
    """The grid's runs, in the order workers take them, with their leaderboard status."""
    records = point_status(points, board, dataset.fingerprint)
    pending = sum(record is None or record.status != "finished" for record in records)
    table = Table(title=terminal(f"grid {study}: {len(points)} runs, {pending} to run"))
    for column in ("#", "encoder", "head", "seed", *fields, "config", "status"):
        table.add_column(column, justify="right" if column in ("#", "seed") else "left")
    for index, (point, record) in enumerate(zip(points, records)):
        values = [str(grids.field_value(point, name)) for name in fields]
        status = (
            "to run"
            if record is None
            else ("to retry: " + record.status if record.status != "finished" else "finished")
        )
        add_row(table, str(index), point.encoder, point.head, str(point.seed), *values, point.config_hash(), status)
    console.print(table)
    console.print(
        terminal(f"dataset {dataset.name} ({dataset.fingerprint[:12]}) · leaderboard {board.url} · "
                 f"storage {redact_url(storage_url)}"),
    )


def print_grid_summary(
    points: Sequence[RunConfig], fields: Sequence[str], dataset: SplitDataset, board: Leaderboard
) -> None:
    """Each point's status and scores from the leaderboard."""
    records = point_status(points, board, dataset.fingerprint)
    table = Table(title=terminal(f"grid results on {dataset.name}"))
    for column in ("", "encoder", "head", "seed", *fields, "status", "val macro-F1", "test macro-F1", "run"):
        table.add_column(column)
    best = best_run_id([record for record in records if record is not None])
    for point, record in zip(points, records):
        values = [str(grids.field_value(point, name)) for name in fields]
        if record is None:
            add_row(table, "", point.encoder, point.head, str(point.seed), *values, "not run", "–", "–", "–")
            continue
        style = {"finished": "green", "running": "yellow"}.get(record.status, "red")
        status = terminal(record.status, style=style)
        if record.flags:
            status.append(f" {FLAG_MARKER} {', '.join(record.flags)}", style="bold red")
        add_row(
            table,
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
    console.print(table)
    text = legend(flag for record in records if record is not None for flag in record.flags)
    if text:
        console.print(f"★ best unflagged run. {text}.", highlight=False, markup=False)


def print_outcome(outcome: GridOutcome) -> None:
    """One line: what this worker ran, and what it left to other workers."""
    parts = [f"{len(outcome.ran)} ran", f"{len(outcome.failed)} failed", f"{len(outcome.existing)} already finished"]
    if outcome.skipped:
        parts.append(f"{len(outcome.skipped)} taken by other workers")
    if outcome.running_elsewhere:
        parts.append(f"{len(outcome.running_elsewhere)} still running in other workers")
    console.print("this worker: " + ", ".join(parts), highlight=False)


# ---------------------------------------------------------------------------------------------- tune


@app.command()
@opt.with_options(
    opt.DATA_OPTIONS, opt.ENCODER_OPTIONS, opt.HYPERPARAMETER_OPTIONS, opt.TRAINING_OPTIONS, opt.RESULTS_OPTIONS
)
def tune(
    ctx: typer.Context,
    encoder: opt.Encoder = D.encoder,
    head: opt.Head = D.head,
    trials: Annotated[
        int,
        typer.Option(
            "--trials",
            min=1,
            help="Run until this many trials have completed or been pruned in the study (in total, over every run of the command).",
        ),
    ] = 20,
    space: Annotated[
        Optional[Path],
        typer.Option(
            "--space",
            help="YAML/JSON file overriding the search space (name: {low, high, log} | [choices] | value | null).",
        ),
    ] = None,
    pruner: Annotated[
        PrunerName, typer.Option("--pruner", help="Prune unpromising trials by validation macro-F1 per epoch.")
    ] = "median",
    study: Annotated[
        Optional[str], typer.Option("--study", help="Study name (default tune-<encoder>-<head>-<dataset fingerprint>).")
    ] = None,
    sampler_seed: Annotated[int, typer.Option("--sampler-seed", help="Seed of the TPE sampler.")] = 0,
    confirm_seeds_: Annotated[
        Optional[str], typer.Option("--confirm-seeds", help="Re-run the best trial with these seeds (comma-separated).")
    ] = None,
    include_flagged: Annotated[
        bool, typer.Option("--include-flagged", help="Let flagged trials (collapsed, below the majority row) be best.")
    ] = False,
    storage: StorageUrl = None,
    leaderboard: LeaderboardUrl = None,
    gpus: Gpus = None,
    worker_index: WorkerIndex = 0,
    dry_run: DryRun = False,
    progress: Progress_ = True,
    **options: Any,
) -> None:
    """Search ENCODER + HEAD hyperparameters with Optuna (seeded TPE, pruning); every trial is a leaderboard run.

    Options of `bench run` given explicitly (--epochs 1, --max-len 64, --dropout 0.1,
    --head-param k=v, ...) fix that parameter. The study resumes: --trials N runs
    until N trials have completed or been pruned in total.
    """
    quiet_optuna()
    seeds = number_list(confirm_seeds_, "--confirm-seeds", int) or ()
    base = opt.run_config({"encoder": encoder, "head": head, **options})
    check_encoder_name(base.encoder)
    resolve_head_params(base.head, base.head_kwargs)
    if base.devices > 1 and pruner != "none":
        raise UsageError(f"--devices {base.devices} runs ranks the pruning callback cannot stop; add --pruner none")
    overrides = load_space_file(space) if space else {}
    search = SearchSpace.build(encoder, head, overrides, explicit_space_values(ctx, base), random_init=base.random_init)
    results = base.results_path
    storage_url = storage or default_storage_url(results)
    check_storage_url(storage_url)
    gpu_list = gpu_groups(parse_gpus(gpus), base.devices)
    dataset = prepare_dataset(base)
    study_name = study or tune_study_name(encoder, head, dataset.fingerprint)
    if dry_run:
        print_space(search, study_name, storage_url, dataset)
        return
    board = open_leaderboard(leaderboard, storage, results)
    optuna_storage = open_storage(storage_url)
    study_ = open_tune_study(
        optuna_storage, study_name, base, dataset, pruner=pruner, sampler_seed=sampler_seed, worker=worker_index
    )
    console.print(
        terminal(f"study {study_name}: {counted_trials(study_)}/{trials} trials done · dataset {dataset.name} "
                 f"({dataset.fingerprint[:12]}) · storage {redact_url(storage_url)}"),
    )
    if gpu_list:
        run_tune_workers(ctx, gpu_list, study_, trials, results)
    else:

        def announce(number: int, config: RunConfig) -> None:
            console.print(terminal(f"trial {number}: {format_params(study_, number)}"))

        objective = TuneObjective(
            base,
            search,
            dataset,
            board,
            study_name,
            prune=pruner != "none",
            callbacks=run_callbacks(progress),
            on_start=announce,
        )
        run_trials(study_, objective, trials, after_trial=print_trial)
    print_best(study_, include_flagged)
    if seeds:
        records = confirm_seeds(
            study_,
            base,
            seeds,
            dataset,
            board,
            include_flagged=include_flagged,
            callbacks=run_callbacks(progress),
            on_start=lambda config: console.print(
                f"confirming the best trial with seed {config.seed}", highlight=False
            ),
        )
        print_confirmation(records)


def explicit_space_values(ctx: typer.Context, base: RunConfig) -> dict[str, Any]:
    """Search-space names fixed by options given on the command line, with their values."""
    fixed = {name: getattr(base, name) for name in RUN_PARAMS if explicit(ctx, name)}
    head = head_class(base.head)
    if explicit(ctx, "dropout"):
        fixed[head.trial_param("dropout")] = base.head_kwargs["dropout"]
    if explicit(ctx, "head_param"):
        for name in opt.parse_pairs(ctx.params["head_param"], "--head-param"):
            fixed[head.trial_param(name)] = base.head_kwargs[name]
    return fixed


def format_params(study: optuna.Study, number: int) -> str:
    """The sampled parameters of trial ``number``, as ``name=value`` pairs."""
    trial = next(trial for trial in study.get_trials(deepcopy=False) if trial.number == number)
    return " ".join(
        f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}" for name, value in trial.params.items()
    )


def print_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """One line per ended trial."""
    state = trial.state.name.lower()
    if trial.state == optuna.trial.TrialState.COMPLETE:
        detail = f"val macro-F1 {f1_text(trial.value)} · test {f1_text(trial.user_attrs.get('test_macro_f1'))}"
    elif trial.state == optuna.trial.TrialState.PRUNED:
        epochs = trial.intermediate_values
        detail = f"after {len(epochs)} epoch(s)" + (f" (val macro-F1 {f1_text(epochs[max(epochs)])})" if epochs else "")
    else:
        detail = str(trial.user_attrs.get("error", ""))
    style = {"complete": "green", "pruned": "yellow"}.get(state, "red")
    console.print(
        f"  [{style}]{state}[/] trial {trial.number}: {markup(detail)} · {counted_trials(study)} done", highlight=False
    )


def run_tune_workers(ctx: typer.Context, gpus: list[str], study: optuna.Study, total: int, results: Path) -> None:
    """One ``bench tune`` worker per GPU; a live progress bar from the study until all exit."""
    args = command_args(
        ctx, drop={"gpus", "dry_run", "progress", "confirm_seeds_", "worker_index"}, extra=["--no-progress"]
    )
    specs = worker_specs(gpus, args, log_directory(results, study.study_name), os.environ, pass_index=True)
    console.print(terminal(f"{len(specs)} workers (GPUs {', '.join(gpus)}); logs in {specs[0].log_path.parent}"))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not console.is_terminal) as bar:
        task = bar.add_task(study.study_name, total=total)
        codes = run_workers(specs, on_poll=lambda codes: bar.update(task, completed=min(counted_trials(study), total)))
    failed = [spec for spec, code in zip(specs, codes) if code]
    for spec in failed:
        console.print(f"[red]worker {spec.index} (GPU {markup(spec.gpu)}) failed[/]; see {markup(spec.log_path)}",
                      highlight=False)
    if failed:
        raise SystemExit(1)


def print_space(search: SearchSpace, study_name: str, storage_url: str, dataset: SplitDataset) -> None:
    """The search space of a study and where it is stored."""
    table = Table(title=terminal(f"search space of {study_name}"))
    for column in ("parameter", "range / value", "from"):
        table.add_column(column)
    for row in search.describe():
        add_row(table, *row)
    console.print(table)
    console.print(terminal(f"dataset {dataset.name} ({dataset.fingerprint[:12]}) · storage {redact_url(storage_url)}"))


def print_best(study: optuna.Study, include_flagged: bool = False) -> None:
    """The best trial's value and parameters (flagged trials skipped unless ``include_flagged``), trial counts."""
    trials = study.get_trials(deepcopy=False)
    counts = {state.name.lower(): sum(trial.state == state for trial in trials) for state in optuna.trial.TrialState}
    console.print(
        "trials: " + ", ".join(f"{count} {state}" for state, count in counts.items() if count), highlight=False
    )
    best = best_trial(study, include_flagged)
    flagged = [trial.number for trial in trials if trial.user_attrs.get("flags")]
    if flagged:
        console.print(
            f"{FLAG_MARKER} flagged trials: {', '.join(map(str, flagged))}. "
            + legend(flag for trial in trials for flag in trial.user_attrs.get("flags", [])),
            highlight=False, markup=False,
        )
    if best is None:
        return
    table = Table(
        title=f"best trial {best.number}: val macro-F1 {f1_text(best.value)} · test {f1_text(best.user_attrs.get('test_macro_f1'))}"
    )
    table.add_column("parameter")
    table.add_column("value")
    for name, value in best.params.items():
        table.add_row(name, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)


def print_confirmation(records: Sequence[RunRecord]) -> None:
    """The best configuration over several seeds: one row per seed, then mean ± standard deviation."""
    table = Table(title="best trial, re-run over seeds")
    for column in ("seed", "status", "val macro-F1", "test macro-F1", "run"):
        table.add_column(column)
    for record in records:
        add_row(
            table, str(record.seed), record.status, f1_text(record.val_macro_f1), f1_text(record.macro_f1), record.run_id
        )
    scores = [record.macro_f1 for record in records if record.status == "finished" and record.macro_f1 is not None]
    if len(scores) >= 2:
        table.add_row("mean ± sd", "", "", f"{statistics.mean(scores):.4f} ± {statistics.stdev(scores):.4f}", "")
    console.print(table)
    if any(record.status != "finished" for record in records):
        raise SystemExit(1)
