"""``bench tune``: an Optuna study over one encoder and head, resumable, shared by local and remote workers."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import optuna
import typer

from bench.cli import options as opt
from bench.cli.app import app, console
from bench.cli.config_file import ConfigFile
from bench.cli.leaderboard import IncludeFlagged
from bench.cli.parallel import (
    explicit,
    f1_text,
    from_config_file,
    number_list,
    quiet_optuna,
    run_callbacks,
    worker_pool,
)
from bench.cli.tables import Column, FitTable, flag_legend, print_table
from bench.config import RunConfig
from bench.data.folds import fold_of
from bench.errors import UsageError
from bench.escaping import markup, terminal
from bench.leaderboard.flags import FLAG_MARKER
from bench.leaderboard.records import RunRecord
from bench.preparation.datasets import RunDatasets
from bench.preparation.service import prepare
from bench.tuning.spaces import HEAD_PREFIX, RUN_PARAMS, SearchSpace, load_space_file, shown_name
from bench.tuning.storage import open_storage, study_storage_url
from bench.tuning.study import (
    PrunerName,
    TuneObjective,
    best_trial,
    confirm_seeds,
    counted_trials,
    open_tune_study,
    run_trials,
    tune_study_name,
)
from bench.urls import redact_url
from encoders import check_encoder_name
from heads import resolve_head_params

WorkerIndex = Annotated[int, typer.Option("--worker-index", hidden=True)]


@app.command()
@opt.with_options(
    opt.DATA_OPTIONS,
    opt.FOLD_OPTIONS,
    opt.RUN_OPTIONS,
    opt.PLUGIN_OPTIONS,
    opt.RESULTS_OPTIONS,
    opt.STUDY_OPTIONS,
)
def tune(
    ctx: typer.Context,
    config: ConfigFile = None,
    trials: Annotated[
        int,
        typer.Option(
            "--trials",
            min=1,
            help="Run until this many trials have completed or been pruned in the study "
            "(in total, over every run of the command).",
        ),
    ] = 20,
    space: Annotated[
        Path | None,
        typer.Option(
            "--space",
            help="YAML/JSON file overriding the search space (name: {low, high, log} | [choices] | value | null).",
        ),
    ] = None,
    pruner: Annotated[
        PrunerName,
        typer.Option(
            "--pruner",
            help="Prune unpromising trials by validation macro-F1 per epoch "
            "(off with --folds: a trial's value is its mean over folds).",
        ),
    ] = "median",
    study: Annotated[
        str | None, typer.Option("--study", help="Study name (default tune-<encoder>-<head>-<dataset fingerprint>).")
    ] = None,
    sampler_seed: Annotated[int, typer.Option("--sampler-seed", help="Seed of the TPE sampler.")] = 0,
    confirm_seeds_: Annotated[
        str | None, typer.Option("--confirm-seeds", help="Re-run the best trial with these seeds (comma-separated).")
    ] = None,
    include_flagged: IncludeFlagged = False,
    worker_index: WorkerIndex = 0,
    **options: Any,
) -> None:
    """Search ENCODER + HEAD hyperparameters with Optuna (seeded TPE, pruning); every trial is a leaderboard run.

    Options of `bench run` given explicitly (--epochs 1, --max-len 64, --dropout 0.1,
    --head-param k=v, ...) fix that parameter. The study resumes: --trials N runs
    until N trials have completed or been pruned in total. With --folds K each trial
    runs K folds and scores the mean validation macro-F1 over them (no pruning).
    """
    quiet_optuna()
    opt.reject_renamed_leaderboard(options["leaderboard"])
    seeds = number_list(confirm_seeds_, "--confirm-seeds", int) or ()
    base = opt.run_config(options)
    encoder, head = base.encoder, base.head
    check_encoder_name(encoder)
    resolve_head_params(head, base.head_kwargs)
    if base.devices > 1 and pruner != "none":
        raise UsageError(f"--devices {base.devices} runs ranks the pruning callback cannot stop; add --pruner none")
    if base.data.folds is not None:
        if explicit(ctx, "pruner") and pruner != "none":
            raise UsageError(
                f"--pruner {pruner} with --folds {base.data.folds}: a trial's value is its mean over folds, "
                "so trials are not pruned; leave out --pruner"
            )
        pruner = "none"
    overrides = load_space_file(space) if space else {}
    fixed, from_file = explicit_space_values(ctx, base)
    search = SearchSpace.build(encoder, head, overrides, fixed, random_init=base.random_init, from_file=from_file)
    workers = worker_pool(options, base.devices)
    base = base.with_updates(threads=workers.threads)
    results = base.results_path
    storage_url = study_storage_url(options["study_storage"], options["storage"], results)
    prepared = prepare(
        base, options["storage"], plugin_specs=options["plugin"], check_names=False, open_board=not options["dry_run"]
    )
    dataset, board = prepared.datasets, prepared.leaderboard
    study_name = study or tune_study_name(encoder, head, dataset.fingerprint)
    if board is None:
        print_space(search, study_name, storage_url, dataset)
        return
    optuna_storage = open_storage(storage_url)
    study_ = open_tune_study(
        optuna_storage, study_name, base, dataset, pruner=pruner, sampler_seed=sampler_seed, worker=worker_index
    )
    console.print(
        terminal(
            f"study {study_name}: {counted_trials(study_)}/{trials} trials done · dataset {dataset.name} "
            f"({dataset.fingerprint[:12]}) · {workers.threads} threads · study storage {redact_url(storage_url)}"
        )
    )
    progress = options["progress"]
    if workers.spawn:
        codes = workers.run(
            ctx,
            results,
            study_name,
            pass_index=True,
            on_poll=lambda: (counted_trials(study_), study_name),
            total=trials,
        )
        if any(codes):
            raise SystemExit(1)
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


def explicit_space_values(ctx: typer.Context, base: RunConfig) -> tuple[dict[str, Any], set[str]]:
    """Search-space names fixed by options given on the command line or in the ``--config`` file, with their
    values, and the names the file fixed."""
    options = {name: name for name in RUN_PARAMS}
    options[HEAD_PREFIX + "dropout"] = "dropout"
    fixed = {name: getattr(base, name) for name in RUN_PARAMS if explicit(ctx, name)}
    if explicit(ctx, "dropout"):
        fixed[HEAD_PREFIX + "dropout"] = base.head_kwargs["dropout"]
    if explicit(ctx, "head_param"):
        for name in opt.head_param_values(ctx.params["head_param"]):
            fixed[HEAD_PREFIX + name] = base.head_kwargs[name]
            options[HEAD_PREFIX + name] = "head_param"
    from_file = {name for name in fixed if from_config_file(ctx, options[name])}
    return fixed, from_file


def format_params(study: optuna.Study, number: int) -> str:
    """The sampled parameters of trial ``number``, as ``name=value`` pairs."""
    trial = next(trial for trial in study.get_trials(deepcopy=False) if trial.number == number)
    return " ".join(
        f"{shown_name(name)}={value:.3g}" if isinstance(value, float) else f"{shown_name(name)}={value}"
        for name, value in trial.params.items()
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


def print_space(search: SearchSpace, study_name: str, storage_url: str, dataset: RunDatasets) -> None:
    """The search space of a study and where it is stored."""
    table = FitTable(
        f"search space of {study_name}",
        [Column("parameter"), Column("range / value", free_text=True, min_width=20), Column("from")],
    )
    for row in search.describe():
        table.add_row(*row)
    print_table(console, table)
    console.print(
        terminal(f"dataset {dataset.name} ({dataset.fingerprint[:12]}) · study storage {redact_url(storage_url)}")
    )


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
            + flag_legend(flag for trial in trials for flag in trial.user_attrs.get("flags", [])),
            highlight=False,
            markup=False,
            soft_wrap=not console.is_terminal,
        )
    if best is None:
        return
    title = (
        f"best trial {best.number}: val macro-F1 {f1_text(best.value)} "
        f"· test {f1_text(best.user_attrs.get('test_macro_f1'))}"
    )
    table = FitTable(title, [Column("parameter"), Column("value")])
    for name, value in best.params.items():
        table.add_row(shown_name(name), f"{value:.4g}" if isinstance(value, float) else str(value))
    print_table(console, table)


def print_confirmation(records: Sequence[RunRecord]) -> None:
    """The best configuration over several seeds: one row per seed, then mean ± standard deviation."""
    table = FitTable(
        "best trial, re-run over seeds",
        [
            Column("seed"),
            Column("status"),
            Column("val macro-F1", "right", priority=1),
            Column("test macro-F1", "right"),
            Column("run"),
        ],
    )
    for record in records:
        fold = fold_of(record.fingerprint)
        seed = f"{record.seed} · fold {fold[0]}/{fold[1]}" if fold is not None else str(record.seed)
        table.add_row(seed, record.status, f1_text(record.val_macro_f1), f1_text(record.macro_f1), record.run_id)
    scores = [record.macro_f1 for record in records if record.status == "finished" and record.macro_f1 is not None]
    if len(scores) >= 2:
        table.add_row("mean ± sd", "", "", f"{statistics.mean(scores):.4f} ± {statistics.stdev(scores):.4f}", "")
    print_table(console, table)
    if any(record.status != "finished" for record in records):
        raise SystemExit(1)
