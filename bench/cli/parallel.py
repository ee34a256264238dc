"""What ``bench grid`` and ``bench tune`` share: comma lists, the command line a worker repeats, local worker
processes with a progress bar, and per-run callbacks."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
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
from bench.tuning.workers import WorkerSpec, describe_worker, log_directory, run_workers, worker_slots, worker_specs

# Options of a command that its worker processes do not repeat: each worker runs the work itself, quietly, with
# the thread count the command chose for it.
WORKER_DROPPED_OPTIONS = frozenset({"gpus", "workers", "dry_run", "progress", "threads", "confirm_seeds_", "worker_index"})


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
    """Whether option ``name`` was given on the command line (or in the environment), per click's parameter source."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT", "PROMPT")


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
        args = command_args(ctx, WORKER_DROPPED_OPTIONS, extra=["--no-progress", "--threads", str(self.threads)])
        specs = worker_specs(self.slots, args, log_directory(results, name), os.environ, pass_index=pass_index)
        console.print(terminal(f"{name}: {self.describe()}; logs in {specs[0].log_path.parent}"))
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, disable=not console.is_terminal) as bar:
            task = bar.add_task(name, total=total)

            def update(codes: list[int | None]) -> None:
                done, label = on_poll()
                running = sum(code is None for code in codes)
                bar.update(task, completed=min(done, total), description=f"{label} · {running} workers running")

            codes = run_workers(specs, on_poll=update)
        report_failed_workers(specs, codes)
        return codes


def report_failed_workers(specs: Sequence[WorkerSpec], codes: Sequence[int]) -> None:
    """One line per worker that exited with an error, naming its log."""
    for spec, code in zip(specs, codes):
        if code:
            console.print(f"[red]{markup(describe_worker(spec))} exited with {code}[/]; see {markup(spec.log_path)}", highlight=False)
