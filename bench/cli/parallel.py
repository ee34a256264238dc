"""What ``bench grid`` and ``bench tune`` share: comma lists, the command line a worker repeats, local worker
processes with a progress bar, and per-run callbacks."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import optuna
import typer
from lightning.pytorch.callbacks import RichProgressBar
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.cli import options as opt
from bench.cli.app import console
from bench.errors import UsageError
from bench.escaping import markup, terminal
from bench.tuning import ray_cluster
from bench.tuning.storage import study_storage_url
from bench.tuning.workers import WorkerSpec, describe_worker, log_directory, run_workers, worker_slots, worker_specs

# Options of a command that its worker processes do not repeat: each worker runs the work itself, quietly, with
# the thread count the command chose for it.
WORKER_DROPPED_OPTIONS = frozenset(
    {"gpus", "workers", "ray", "gpus_per_run", "dry_run", "progress", "threads", "confirm_seeds_", "worker_index"}
)


def number_list(text: str | None, option: str, kind: type[int | float]) -> tuple[Any, ...] | None:
    """A comma list of ints or floats, ``None`` when the option was not given."""
    if text is None:
        return None
    values = []
    for item in opt.split_list(text, option):
        try:
            values.append(kind(item))
        except ValueError:
            raise UsageError(f"{option}: {item!r} is not {'an integer' if kind is int else 'a number'}") from None
    return tuple(values)


def command_args(ctx: typer.Context, drop: set[str] | frozenset[str], extra: Sequence[str] = ()) -> list[str]:
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
    """Whether option ``name`` was given on the command line, in the environment or in the ``--config`` file,
    per click's parameter source."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT", "PROMPT", "DEFAULT_MAP")


def from_config_file(ctx: typer.Context, name: str) -> bool:
    """Whether option ``name`` took its value from the ``--config`` file."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "DEFAULT_MAP"


def run_callbacks(progress: bool) -> Callable[[], list[L.Callback]]:
    """Fresh Lightning callbacks for each run: Rich's progress bar on a terminal."""
    return lambda: [RichProgressBar(leave=False)] if progress and console.is_terminal else []


def f1_text(value: float | None) -> str:
    """A macro-F1 with 4 decimals, or a dash."""
    return "–" if value is None else f"{value:.4f}"


def quiet_optuna() -> None:
    """Optuna's own log lines (trial ended, tracebacks of failed runs) off: the commands report trials themselves."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)


class LocalWorkers:
    """The worker processes of ``--gpus``/``--workers`` on this machine, and the CPU threads of each."""

    def __init__(self, values: dict[str, Any], devices: int) -> None:
        self.slots = worker_slots(values["gpus"], values["workers"], devices)
        self.threads: int = values["threads"] or opt.default_threads(len(self.slots) * devices)

    @property
    def spawn(self) -> bool:
        """Whether the work goes to worker processes (more than one slot, or a GPU group)."""
        return len(self.slots) > 1 or self.slots[0] is not None

    def describe(self) -> str:
        """``2 workers (GPUs 0, 1), 4 threads each``."""
        gpus = [slot for slot in self.slots if slot is not None]
        where = f" (GPUs {', '.join(gpus)})" if gpus else ""
        return f"{len(self.slots)} workers{where}, {self.threads} threads each"

    def run(
        self,
        ctx: typer.Context,
        results: Path,
        name: str,
        *,
        pass_index: bool,
        on_poll: Callable[[], tuple[int, str]],
        total: int,
    ) -> list[int]:
        """Start the workers (each repeats this command's explicit options with ``--threads``); a live progress bar
        from ``on_poll`` (done, label) until all exit. Returns their exit codes and reports failed ones."""
        specs = worker_specs(
            self.slots, worker_args(ctx, self.threads), log_directory(results, name), os.environ, pass_index=pass_index
        )
        console.print(terminal(f"{name}: {self.describe()}; logs in {specs[0].log_path.parent}"))
        with worker_progress(name, total, on_poll) as update:
            codes = run_workers(specs, on_poll=update)
        report_failed_workers(specs, codes)
        return codes


class RayWorkers:
    """The workers of ``--ray``: Ray tasks on an existing cluster, each running the worker command a local worker
    runs, with the GPUs and CPU threads of :func:`bench.tuning.ray_cluster.plan_tasks`."""

    spawn = True

    def __init__(self, values: dict[str, Any], devices: int) -> None:
        if values["gpus"]:
            raise UsageError(f"--gpus {values['gpus']} with --ray: Ray assigns the GPUs (see --gpus-per-run)")
        ray_cluster.check_shared_storage(
            values["storage"], study_storage_url(values["study_storage"], values["storage"], values["results"])
        )
        self.address: str = values["ray"]
        self.ray = ray_cluster.import_ray()
        nodes = ray_cluster.connect(self.ray, self.address)
        self.plan = ray_cluster.plan_tasks(
            nodes,
            workers=values["workers"],
            gpus_per_run=values["gpus_per_run"],
            threads=values["threads"],
            devices=devices,
        )
        self.threads = self.plan.threads

    def describe(self) -> str:
        """``2 Ray tasks, 1 GPU and 8 threads each, on the Ray cluster at auto``."""
        return f"{self.plan.describe()}, on the Ray cluster at {self.address}"

    def run(
        self,
        ctx: typer.Context,
        results: Path,
        name: str,
        *,
        pass_index: bool,
        on_poll: Callable[[], tuple[int, str]],
        total: int,
    ) -> list[int]:
        """Run the worker tasks with a live progress bar from ``on_poll``; write each worker's output to its log
        when it ends. Returns their exit codes and reports failed ones."""
        slots: list[str | None] = [None] * self.plan.tasks
        # The environment is each node's own: only this checkout is put first on the workers' PYTHONPATH.
        specs = worker_specs(
            slots, worker_args(ctx, self.threads), log_directory(results, name), {}, pass_index=pass_index
        )
        console.print(terminal(f"{name}: {self.describe()}; logs in {specs[0].log_path.parent} as workers end"))
        try:
            with worker_progress(name, total, on_poll) as update:
                commands = [spec.args for spec in specs]
                outcomes = ray_cluster.run_ray_workers(self.ray, self.plan, commands, on_poll=update)
        finally:
            self.ray.shutdown()
        for spec, outcome in zip(specs, outcomes):
            spec.log_path.parent.mkdir(parents=True, exist_ok=True)
            spec.log_path.write_text(outcome.output, encoding="utf-8")
            if outcome.error is not None:
                console.print(
                    f"[red]{markup(describe_worker(spec))}: Ray gave up on it[/]: {markup(outcome.error)}",
                    highlight=False,
                )
        report_failed_workers(specs, [0 if outcome.error is not None else outcome.code for outcome in outcomes])
        return [outcome.code for outcome in outcomes]


def worker_pool(values: dict[str, Any], devices: int) -> LocalWorkers | RayWorkers:
    """The workers of a ``grid``/``tune`` command: Ray tasks with ``--ray``, else local worker processes."""
    if values["ray"]:
        return RayWorkers(values, devices)
    if values["gpus_per_run"] is not None:
        raise UsageError("--gpus-per-run applies to the workers of --ray; on this machine use --gpus")
    return LocalWorkers(values, devices)


def worker_args(ctx: typer.Context, threads: int) -> list[str]:
    """The worker command: this command's explicit options, less :data:`WORKER_DROPPED_OPTIONS`, quiet, with
    ``--threads``."""
    return command_args(ctx, WORKER_DROPPED_OPTIONS, extra=["--no-progress", "--threads", str(threads)])


@contextmanager
def worker_progress(
    name: str, total: int, on_poll: Callable[[], tuple[int, str]]
) -> Iterator[Callable[[list[int | None]], None]]:
    """A live progress bar of ``total`` items; yields the callback to give the workers' exit codes (``None``
    while running) to, which redraws it from ``on_poll`` (done, label)."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not console.is_terminal) as bar:
        task = bar.add_task(name, total=total)

        def update(codes: list[int | None]) -> None:
            done, label = on_poll()
            running = sum(code is None for code in codes)
            bar.update(task, completed=min(done, total), description=f"{label} · {running} workers running")

        yield update


def report_failed_workers(specs: Sequence[WorkerSpec], codes: Sequence[int]) -> None:
    """One line per worker that exited with an error, naming its log."""
    for spec, code in zip(specs, codes):
        if code:
            console.print(
                f"[red]{markup(describe_worker(spec))} exited with {code}[/]; see {markup(spec.log_path)}",
                highlight=False,
            )
