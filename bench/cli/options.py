"""Command-line options shared by the commands, each declared once, and their conversion to a RunConfig.

This module stays light (no torch, no model registries): commands that train nothing import it too.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable
from dataclasses import MISSING, fields
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, Optional, TypeVar

import typer

from bench import plugins
from bench.config import RunConfig, sort_params
from bench.data.types import DataOptions
from bench.errors import ResultsError, UsageError
from bench.leaderboard.store import Leaderboard, check_storage_url, database_exists, database_path, sqlite_file, sqlite_url

DATA = "Data"
MODEL = "Model"
TRAIN = "Training"
STORAGE = "Results and storage"
PARALLEL = "Workers"

Encoder = Annotated[str, typer.Option("--encoder", "-e", help="Encoder name or hf:<model-id> (`bench encoders` lists them).", rich_help_panel=MODEL)]
Head = Annotated[str, typer.Option("--head", "-h", help="Head name (`bench heads` lists them with their hyperparameters).", rich_help_panel=MODEL)]
Data = Annotated[str, typer.Option("--data", help="sample, a .csv/.tsv/.jsonl/.xlsx file, or aihub:PATH, single-turn:FILE, multi-turn:FILE, kote:DIR.", rich_help_panel=DATA)]
TextCol = Annotated[Optional[str], typer.Option("--text-col", help="Text column (auto-detected if omitted).", rich_help_panel=DATA)]
LabelCol = Annotated[Optional[str], typer.Option("--label-col", help="Label column (auto-detected if omitted).", rich_help_panel=DATA)]
Task = Annotated[str, typer.Option("--task", help="single, multilabel (a label cell lists labels) or auto (multilabel for kote: and for label lists).", rich_help_panel=DATA)]
LabelSep = Annotated[str, typer.Option("--label-sep", help="Separator of the labels in a multi-label cell.", rich_help_panel=DATA)]
NoHeader = Annotated[bool, typer.Option("--no-header", help="The file has no header row: --text-col/--label-col are column numbers from 1.", rich_help_panel=DATA)]
Sheet = Annotated[Optional[str], typer.Option("--sheet", help="Sheet of a multi-sheet xlsx file.", rich_help_panel=DATA)]
TextField = Annotated[str, typer.Option("--text", "--text-field", help="AI Hub text: first-human, all-human or dialogue.", rich_help_panel=DATA)]
Labels = Annotated[str, typer.Option("--labels", help="AI Hub labels: major6, merged5 or minor.", rich_help_panel=DATA)]
LabelMap = Annotated[Optional[Path], typer.Option("--label-map", help="YAML/JSON file: source label → target label (null drops).", rich_help_panel=DATA)]
SplitSeed = Annotated[int, typer.Option("--split-seed", help="Seed of the train/validation/test split.", rich_help_panel=DATA)]
Dedupe = Annotated[bool, typer.Option("--dedupe", help="Remove duplicate texts from train.", rich_help_panel=DATA)]
DropUnknown = Annotated[bool, typer.Option("--drop-unknown", help="Drop (and count) labels outside the scheme.", rich_help_panel=DATA)]
Folds = Annotated[Optional[int], typer.Option("--folds", help="k-fold cross-validation: train each configuration on K stratified folds (one leaderboard row each; validation rotates, the test split stays fixed).", rich_help_panel=DATA)]
FoldsTest = Annotated[bool, typer.Option("--folds-test", help="With --folds: rotate the test split over the K folds instead (validation 10 % of the rest).", rich_help_panel=DATA)]
EncoderPath = Annotated[Optional[Path], typer.Option("--encoder-path", help="Local HF-style folder instead of the hub.", rich_help_panel=MODEL)]
EncoderConfig = Annotated[Optional[list[str]], typer.Option("--encoder-config", help="KEY=VALUE override of the encoder's config (repeatable).", rich_help_panel=MODEL)]
RandomInit = Annotated[bool, typer.Option("--random-init", help="Random weights from the config (tokenizer still real).", rich_help_panel=MODEL)]
FreezeEncoder = Annotated[bool, typer.Option("--freeze-encoder", help="Train the head only.", rich_help_panel=MODEL)]
TrustRemoteCode = Annotated[bool, typer.Option("--trust-remote-code", help="Allow hub code for hf: encoders (off by default).", rich_help_panel=MODEL)]
HeadParam = Annotated[Optional[list[str]], typer.Option("--head-param", help="KEY=VALUE head hyperparameter (repeatable).", rich_help_panel=MODEL)]
Dropout = Annotated[Optional[float], typer.Option("--dropout", help="Head dropout.", rich_help_panel=MODEL)]
Epochs = Annotated[int, typer.Option("--epochs", help="Training epochs.", rich_help_panel=TRAIN)]
TrainLimit = Annotated[Optional[int], typer.Option("--train-limit", help="Train on a stratified subset of N examples.", rich_help_panel=TRAIN)]
MaxLen = Annotated[int, typer.Option("--max-len", help="Maximum tokens per text.", rich_help_panel=TRAIN)]
BatchSize = Annotated[int, typer.Option("--batch-size", help="Training batch size.", rich_help_panel=TRAIN)]
Lr = Annotated[Optional[float], typer.Option("--lr", help="Encoder learning rate (default: the encoder's own for its weights: pretrained, --random-init or from scratch; `bench encoders` lists them).", rich_help_panel=TRAIN)]
HeadLr = Annotated[Optional[float], typer.Option("--head-lr", help="Head learning rate (default: --lr).", rich_help_panel=TRAIN)]
WeightDecay = Annotated[float, typer.Option("--weight-decay", help="AdamW weight decay (not on biases/norms).", rich_help_panel=TRAIN)]
Warmup = Annotated[float, typer.Option("--warmup-ratio", help="Share of steps with linear warmup.", rich_help_panel=TRAIN)]
GradClip = Annotated[float, typer.Option("--grad-clip", help="Gradient norm clipping (0 = off).", rich_help_panel=TRAIN)]
ClassWeighted = Annotated[bool, typer.Option("--class-weighted", help="Inverse-frequency class weights in the loss (multi-label: BCE pos_weight).", rich_help_panel=TRAIN)]
PerLabelThreshold = Annotated[bool, typer.Option("--per-label-threshold", help="Multi-label: tune one decision threshold per label on validation (default: one for all).", rich_help_panel=TRAIN)]
Patience = Annotated[Optional[int], typer.Option("--patience", help="Early stopping after N epochs without improvement.", rich_help_panel=TRAIN)]
Seed = Annotated[int, typer.Option("--seed", help="Training seed.", rich_help_panel=TRAIN)]
Results = Annotated[Path, typer.Option("--results", help="Results directory: leaderboard.db, runs, cache, logs.", rich_help_panel=STORAGE)]
Storage = Annotated[Optional[str], typer.Option("--storage", help="Leaderboard database URL (sqlite:///FILE or postgresql://…); default <results>/leaderboard.db.", rich_help_panel=STORAGE)]
StudyStorage = Annotated[Optional[str], typer.Option("--study-storage", help="Optuna database URL shared by the workers of a grid or study (default: the --storage database when it is a server, else optuna.db beside the leaderboard).", rich_help_panel=STORAGE)]
RenamedLeaderboard = Annotated[Optional[str], typer.Option("--leaderboard", hidden=True)]
Gpus = Annotated[Optional[str], typer.Option("--gpus", help="Run one worker process per GPU, e.g. 0,1,2,3 (per --devices GPUs with --devices).", rich_help_panel=PARALLEL)]
Workers = Annotated[Optional[int], typer.Option("--workers", min=1, help="Worker processes sharing the work (default: one per --gpus group, else 1; with --ray, as many runs as the cluster holds at once).", rich_help_panel=PARALLEL)]
RayAddress = Annotated[Optional[str], typer.Option("--ray", metavar="ADDRESS", help="Run the workers as tasks on the Ray cluster at ADDRESS (HOST:PORT, ray://HOST:PORT, or auto for the one this machine is part of); needs a PostgreSQL --storage.", rich_help_panel=PARALLEL)]
GpusPerRun = Annotated[Optional[float], typer.Option("--gpus-per-run", min=0, help="With --ray: GPUs each worker reserves (default: --devices where the cluster has GPUs, else 0; a fraction shares a GPU).", rich_help_panel=PARALLEL)]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the plan and exit.")]
Progress = Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bars (within a run only on a terminal).")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu or cuda[:N].", rich_help_panel=TRAIN)]
Devices = Annotated[int, typer.Option("--devices", help="Data-parallel devices (DDP) for each run; --batch-size is the global batch, split over them.", rich_help_panel=TRAIN)]
Precision = Annotated[str, typer.Option("--precision", help="auto (bf16-mixed on a capable GPU, else 32), 32, bf16-mixed, 16-mixed.", rich_help_panel=TRAIN)]
NumWorkers = Annotated[Optional[int], typer.Option("--num-workers", help="DataLoader worker processes (default: none on CPU, a few on a GPU).", rich_help_panel=TRAIN)]
SPEED = "Speed"
Bucketing = Annotated[bool, typer.Option("--bucketing/--no-bucketing", help="Batch texts of similar length (less padding; changes batch composition, so it is part of the run's identity).", rich_help_panel=SPEED)]
TokenCache = Annotated[bool, typer.Option("--token-cache/--no-token-cache", help="Reuse token ids cached under <results>/cache/tokens.", rich_help_panel=SPEED)]
FeatureCache = Annotated[bool, typer.Option("--feature-cache/--no-feature-cache", help="With --freeze-encoder: run the encoder once and train the head from its cached outputs (<results>/cache/features).", rich_help_panel=SPEED)]
Compile = Annotated[bool, typer.Option("--compile", help="torch.compile the encoder (pays off on GPUs for long runs).", rich_help_panel=SPEED)]
Threads = Annotated[Optional[int], typer.Option("--threads", min=1, help="CPU threads of each training process (default: the cores available divided by the local worker processes).", rich_help_panel=SPEED)]
OomRetry = Annotated[bool, typer.Option("--oom-retry", help="On GPU out-of-memory, retry with half the batch and twice the gradient accumulation (same effective batch).", rich_help_panel=TRAIN)]
TRACKING = "Experiment tracking"
Loggers = Annotated[Optional[list[str]], typer.Option("--logger", help="Also report each run to tensorboard, mlflow, wandb or csv (repeatable).", rich_help_panel=TRACKING)]
LoggerDir = Annotated[Optional[Path], typer.Option("--logger-dir", help="Folder for TensorBoard/CSV/W&B files and the default MLflow store (default: <results>/trackers).", rich_help_panel=TRACKING)]
MlflowUri = Annotated[Optional[str], typer.Option("--mlflow-uri", help="MLflow tracking server or store (default: MLFLOW_TRACKING_URI, else sqlite:///<logger-dir>/mlflow.db).", rich_help_panel=TRACKING)]



def _load_plugins(specs: Optional[list[str]]) -> Optional[list[str]]:
    """Import the ``--plugin`` modules while the command line is parsed, before any head or encoder is looked up."""
    plugins.load(specs or [])
    return specs


Plugins = Annotated[Optional[list[str]], typer.Option("--plugin", help="Python file or module registering heads or encoders (repeatable; also BENCH_PLUGINS).", callback=_load_plugins, is_eager=True, rich_help_panel=MODEL)]

# RunConfig's field defaults, read without building a RunConfig (which would load the encoder registry).
DEFAULTS = SimpleNamespace(
    **{field.name: field.default_factory() if field.default is MISSING else field.default for field in fields(RunConfig)}  # type: ignore[misc]
)
D = DEFAULTS
DEFAULT_RESULTS = Path(D.results_dir)


def _options(*specs: tuple[str, Any, Any]) -> tuple[inspect.Parameter, ...]:
    return tuple(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=default) for name, kind, default in specs)


# Option groups shared by commands; see :func:`with_options`.
DATA_OPTIONS = _options(
    ("data", Data, D.data.source), ("text_col", TextCol, None), ("label_col", LabelCol, None),
    ("no_header", NoHeader, False), ("sheet", Sheet, None), ("task", Task, D.data.task),
    ("label_sep", LabelSep, D.data.label_sep),
    ("text", TextField, D.data.text_field), ("labels", Labels, D.data.label_scheme), ("label_map", LabelMap, None),
    ("split_seed", SplitSeed, D.data.split_seed), ("dedupe", Dedupe, False), ("drop_unknown", DropUnknown, False),
    ("train_limit", TrainLimit, None),
)
# Cross-validation (``run``, ``grid``, ``tune``).
FOLD_OPTIONS = _options(("folds", Folds, None), ("folds_test", FoldsTest, False))
ENCODER_OPTIONS = _options(
    ("encoder_config", EncoderConfig, None), ("random_init", RandomInit, False),
    ("freeze_encoder", FreezeEncoder, False), ("trust_remote_code", TrustRemoteCode, False), ("plugin", Plugins, None),
)
# One value each (``bench grid`` takes lists of these instead).
HYPERPARAMETER_OPTIONS = _options(
    ("encoder_path", EncoderPath, None), ("head_param", HeadParam, None), ("dropout", Dropout, None),
    ("epochs", Epochs, D.epochs), ("max_len", MaxLen, D.max_len), ("batch_size", BatchSize, D.batch_size),
    ("lr", Lr, None), ("head_lr", HeadLr, None), ("weight_decay", WeightDecay, D.weight_decay),
    ("warmup_ratio", Warmup, D.warmup_ratio), ("seed", Seed, D.seed),
)
THREAD_OPTIONS = _options(("threads", Threads, None))
TRAINING_OPTIONS = _options(
    ("grad_clip", GradClip, D.grad_clip), ("class_weighted", ClassWeighted, False),
    ("per_label_threshold", PerLabelThreshold, False), ("patience", Patience, None),
    ("device", Device, D.device), ("devices", Devices, D.devices), ("precision", Precision, D.precision),
    ("num_workers", NumWorkers, D.num_workers), ("bucketing", Bucketing, D.bucketing),
    ("token_cache", TokenCache, D.token_cache), ("feature_cache", FeatureCache, D.feature_cache),
    ("compile", Compile, D.compile), ("oom_retry", OomRetry, False),
    ("loggers", Loggers, None), ("logger_dir", LoggerDir, None), ("mlflow_uri", MlflowUri, None),
) + THREAD_OPTIONS
RESULTS_OPTIONS = _options(("results", Results, DEFAULT_RESULTS), ("storage", Storage, None))
# Commands with worker processes sharing an Optuna study (``grid``, ``tune``).
STUDY_OPTIONS = _options(
    ("study_storage", StudyStorage, None), ("leaderboard", RenamedLeaderboard, None), ("gpus", Gpus, None),
    ("workers", Workers, None), ("ray", RayAddress, None), ("gpus_per_run", GpusPerRun, None), ("dry_run", DryRun, False),
    ("progress", Progress, True),
)

Command = TypeVar("Command", bound=Callable[..., Any])


def with_options(*groups: tuple[inspect.Parameter, ...]) -> Callable[[Command], Command]:
    """Give a Typer command the options of ``groups`` after its own; it receives them as ``**options``."""

    def decorate(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)
        own = [parameter for parameter in signature.parameters.values() if parameter.kind is not parameter.VAR_KEYWORD]
        command.__signature__ = signature.replace(parameters=[*own, *(option for group in groups for option in group)])  # type: ignore[attr-defined]
        return command

    return decorate


def parse_pairs(pairs: list[str] | None, option: str) -> dict[str, Any]:
    """``["k=v", ...]`` → dict; values parsed as JSON where they are JSON (numbers, lists), else strings."""
    parsed: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} expects KEY=VALUE, got {pair!r}")
        try:
            parsed[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            parsed[key.strip()] = raw
    return parsed


def data_options(values: dict[str, Any]) -> DataOptions:
    """The data options of a command's keyword arguments (the names of the options above)."""
    label_map = values["label_map"]
    return DataOptions(
        source=values["data"], text_col=values["text_col"], label_col=values["label_col"],
        no_header=values.get("no_header", False), sheet=values["sheet"],
        task=values.get("task", DataOptions.task), label_sep=values.get("label_sep", DataOptions.label_sep),
        text_field=values["text"], label_scheme=values["labels"], label_map=str(label_map) if label_map else None,
        split_seed=values["split_seed"], dedupe=values["dedupe"], drop_unknown=values["drop_unknown"],
        folds=values.get("folds"), folds_test=values.get("folds_test", False),
    )


def run_config(values: dict[str, Any]) -> RunConfig:
    """A :class:`RunConfig` from a command's keyword arguments (the names of the options above)."""
    head_params = parse_pairs(values.get("head_param"), "--head-param")
    if values.get("dropout") is not None:
        head_params["dropout"] = values["dropout"]
    return RunConfig(
        encoder=values["encoder"],
        head=values["head"],
        head_params=sort_params(head_params),
        data=data_options(values),
        encoder_path=str(values["encoder_path"]) if values["encoder_path"] else None,
        random_init=values["random_init"],
        freeze_encoder=values["freeze_encoder"],
        trust_remote_code=values["trust_remote_code"],
        encoder_config=sort_params(parse_pairs(values.get("encoder_config"), "--encoder-config")),
        epochs=values["epochs"],
        train_limit=values["train_limit"],
        max_len=values["max_len"],
        batch_size=values["batch_size"],
        lr=values["lr"],
        head_lr=values["head_lr"],
        weight_decay=values["weight_decay"],
        warmup_ratio=values["warmup_ratio"],
        grad_clip=values["grad_clip"],
        class_weighted=values["class_weighted"],
        per_label_threshold=values.get("per_label_threshold", False),
        patience=values["patience"],
        seed=values["seed"],
        precision=values["precision"],
        device=values["device"],
        devices=values.get("devices", 1),
        num_workers=values["num_workers"],
        bucketing=values.get("bucketing", True),
        token_cache=values.get("token_cache", True),
        feature_cache=values.get("feature_cache", True),
        compile=values.get("compile", False),
        oom_retry=values.get("oom_retry", False),
        threads=values.get("threads"),
        results_dir=str(values["results"]),
        loggers=tracker_names(values.get("loggers")),
        logger_dir=str(values["logger_dir"]) if values.get("logger_dir") else None,
        mlflow_uri=values.get("mlflow_uri"),
    )


def default_threads(local_processes: int = 1) -> int:
    """The CPU cores this process may use, divided by the training processes sharing them on this host; at least 1."""
    return max(1, len(os.sched_getaffinity(0)) // max(1, local_processes))


def open_leaderboard(storage: str | None, results: Path) -> Leaderboard:
    """The leaderboard a training command writes: ``--storage``, else ``<results>/leaderboard.db`` (created, with the
    folder of a SQLite file)."""
    if storage:
        check_storage_url(storage, "--storage")
        database_file = sqlite_file(storage)
        if database_file is not None:
            database_file.parent.mkdir(parents=True, exist_ok=True)
        return Leaderboard(storage)
    return Leaderboard.for_results_dir(results)


def find_leaderboard(storage: str | None, results: Path) -> Leaderboard | None:
    """The leaderboard a reading command reads: ``--storage``, else ``<results>/leaderboard.db``; ``None`` if absent."""
    if storage:
        check_storage_url(storage, "--storage")
        return Leaderboard(storage)
    if results.exists() and not results.is_dir():
        raise UsageError(f"--results {results} is not a directory")
    path = database_path(results)
    return Leaderboard(sqlite_url(path)) if database_exists(path) else None


def require_leaderboard(storage: str | None, results: Path) -> Leaderboard:
    """Like :func:`find_leaderboard`, but a missing leaderboard is an error."""
    board = find_leaderboard(storage, results)
    if board is None:
        raise ResultsError(f"no leaderboard in {results} ({database_path(results)} not found); record a run first")
    return board


def reject_renamed_leaderboard(value: str | None) -> None:
    """``--leaderboard`` was renamed: say so in one line."""
    if value is not None:
        raise UsageError("--leaderboard is now --storage (the leaderboard database); the Optuna database is --study-storage")


def tracker_names(names: list[str] | None) -> tuple[str, ...]:
    """The ``--logger`` values, each once, checked (known tracker, its package installed)."""
    from bench.tracking import check_trackers

    unique = tuple(dict.fromkeys(names or ()))
    check_trackers(unique)
    return unique
