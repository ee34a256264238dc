"""GPU measurements, run by ``benchmarks/gpu.sh`` (``--tiny --device cpu`` is its CPU dry run).

1. **MFU** of KoBERT-base and KoELECTRA-base in bf16 (our training step, :mod:`benchmarks.training`) at
   fine-tuning batch sizes, model FLOPs as :mod:`benchmarks.flops` counts them, against the GPU's dense
   bf16 peak (target ≥ 35 %).
2. **Five heads, frozen encoder**: ``bench grid --heads all --freeze-encoder`` with and without the
   feature cache, whole processes.
3. **DDP**: ``bench run --devices N`` over every visible GPU against ``--devices 1``, training samples/s
   as the runs record them.
4. **The 2 × 5 × 3 grid** (KoBERT and KoELECTRA, every head, seeds 1–3, random init) as one
   ``bench grid`` process on the single-turn data (one worker per GPU).

Steps run in this order and each is skipped, marked not measured, once the time budget is spent.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from benchmarks.context import Context, Settings
from benchmarks.flops import peak_tflops
from benchmarks.report import NOT_MEASURED, Part, Row, ratio_row
from benchmarks.trainer import tiny_overrides, write_job_data
from benchmarks.training import TrainingMeasure, torch_device, train_step

NAME = "gpu"
MFU_TARGET = 0.35
MFU_BATCH_SIZES = (32, 128)
MFU_ENCODERS = ("kobert", "koelectra")
BUDGET_SECONDS = 420.0  # the steps after it are skipped: gpu.sh must finish within eight minutes
GRID_TRAIN_LIMIT = 4000  # training sentences per grid run on a GPU (the single-turn set has 30,873)
GRID_BATCH = 64
FIVE_HEADS_TARGET = 4.0


def estimate_seconds(settings: Settings) -> float:
    """Rough wall time (one H100/H200; the tiny dry run on a quiet 2-core CPU)."""
    return 90 if settings.tiny else BUDGET_SECONDS


def measure(context: Context) -> Part:
    """Every GPU figure that fits the time budget."""
    import torch

    started = time.perf_counter()
    part = Part(NAME)
    gpus = torch.cuda.device_count() if context.settings.device != "cpu" else 0
    steps = (("MFU", mfu), ("five heads", five_heads), ("DDP", ddp), ("grid", grid))
    for label, step in steps:
        if time.perf_counter() - started > BUDGET_SECONDS:
            part.rows.append(Row(f"{label} (GPU)", "–", f"{NOT_MEASURED} (time budget spent)"))
            continue
        context.say(f"gpu: {label}")
        step(context, part, gpus)
    if gpus == 0:
        part.rows = [
            replace(row, ours=f"{row.ours} (dry run: tiny encoders on the CPU)", reached=None) for row in part.rows
        ]
        dry_run = f"**No GPU: a dry run with tiny encoders on the CPU; the GPU figures are {NOT_MEASURED}.**"
        part.details[:0] = [dry_run, ""]
    return part


def mfu(context: Context, part: Part, gpus: int) -> None:
    """Training TFLOP/s and MFU of the base encoders at fine-tuning batch sizes."""
    import torch

    settings = context.settings
    device = torch_device(settings.device)
    peak = peak_tflops(torch.cuda.get_device_name(device) if device.type == "cuda" else None, settings.peak_tflops)
    overrides = tuple((key, int(value)) for key, value in (pair.split("=") for pair in tiny_overrides(settings)))
    from benchmarks.training import our_pipeline

    part.details += [
        "MFU: our training step (bucketing, token cache, bf16 autocast, fused AdamW) on the single-turn training "
        "split; model FLOPs per sequence of s padded tokens 6 × N × s + 12 × L × h × s² (N: parameters in matrix "
        "multiplications, L layers, h hidden size; `benchmarks/flops.py`), against the dense bf16 peak.",
        "",
        "| encoder | batch | samples/s | mean padded length | model TFLOP/s | MFU |",
        "|---|---|---|---|---|---|",
    ]
    for encoder in MFU_ENCODERS:
        for batch in MFU_BATCH_SIZES if gpus else MFU_BATCH_SIZES[:1]:
            chosen = replace(settings, encoder=encoder, batch_size=batch)
            pipeline, _, _, precision = our_pipeline(context.dataset, chosen, context.work_dir, device, overrides)
            for _ in range(chosen.warmup + chosen.steps):
                train_step(pipeline, device)
            result = TrainingMeasure(encoder, precision, 0.0, pipeline.records[chosen.warmup :])
            del pipeline
            if device.type == "cuda":
                torch.cuda.empty_cache()
            share = result.tflops / peak if peak else None
            context.say(
                f"{encoder} batch {batch}: {result.samples_per_second:,.0f} samples/s, "
                f"{result.tflops:.1f} TFLOP/s" + (f", MFU {share:.1%}" if share is not None else "")
            )
            part.details.append(
                f"| {encoder} | {batch} | {result.samples_per_second:,.0f} | {result.mean_padded_length:.1f} "
                f"| {result.tflops:.2f} | {'–' if share is None else f'{share:.1%}'} |"
            )
            part.rows.append(
                Row(
                    f"{encoder}-base MFU, bf16, batch {batch}",
                    "–",
                    f"{share:.1%}" if share is not None else f"{NOT_MEASURED} ({result.tflops:.4f} TFLOP/s)",
                    target=f"≥ {MFU_TARGET:.0%}",
                    reached=None if share is None else share >= MFU_TARGET,
                )
            )
    part.details.append("")


def grid_args(context: Context, data: Path, results: Path) -> list[str]:
    """Options of every ``bench grid``/``bench run`` of this part."""
    settings = context.settings
    args = [
        "--data",
        str(data),
        "--random-init",
        "--results",
        str(results),
        "--device",
        settings.device,
        "--epochs",
        "1",
        "--no-progress",
    ]
    for pair in tiny_overrides(settings):
        args += ["--encoder-config", pair]
    return args


def data_file(context: Context) -> Path:
    """The single-turn set on a GPU; the small job file in a dry run."""
    return write_job_data(context) if context.settings.tiny else context.settings.data


def five_heads(context: Context, part: Part, gpus: int) -> None:
    """``bench grid`` over every head on the frozen KoELECTRA-base encoder, feature cache on and off."""
    settings = context.settings
    walls = {}
    for cache in ("--feature-cache", "--no-feature-cache"):
        results = context.work_dir / f"gpu-heads{cache}"
        walls[cache] = context.bench(
            [
                "grid",
                "--encoders",
                "koelectra",
                "--heads",
                "all",
                "--seeds",
                "1",
                "--freeze-encoder",
                cache,
                "--lr",
                "1e-3",
                "--batch-size",
                str(GRID_BATCH),
                "--encoder-path",
                str(settings.models / "koelectra-base-v3"),
                "--train-limit",
                str(train_limit(settings)),
                *grid_args(context, data_file(context), results),
            ]
        )
        context.say(f"five heads {cache}: {walls[cache]:.1f} s")
    part.rows.append(
        ratio_row(
            f"five heads, frozen KoELECTRA-base, one bench grid, wall s ({train_limit(settings):,} train)",
            (walls["--no-feature-cache"], "no feature cache"),
            (walls["--feature-cache"], "feature cache"),
            target=FIVE_HEADS_TARGET,
            higher_is_better=False,
        )
    )


def train_limit(settings: Settings) -> int:
    """Training sentences per run."""
    return 200 if settings.tiny else GRID_TRAIN_LIMIT


def ddp(context: Context, part: Part, gpus: int) -> None:
    """Training samples/s of one run on every visible GPU against one GPU (two gloo ranks in a dry run)."""
    from bench.leaderboard.store import Leaderboard

    settings = context.settings
    devices = gpus if gpus else 2
    if gpus == 1:
        part.rows.append(Row("DDP training samples/s", "–", f"{NOT_MEASURED} (one GPU visible)"))
        return
    rates = {}
    for count in (1, devices):
        results = context.work_dir / f"gpu-ddp-{count}"
        context.bench(
            [
                "run",
                "--encoder",
                "koelectra",
                "--head",
                "linear",
                "--encoder-path",
                str(settings.models / "koelectra-base-v3"),
                "--batch-size",
                str(GRID_BATCH * count),
                "--devices",
                str(count),
                "--train-limit",
                str(train_limit(settings)),
                *grid_args(context, data_file(context), results),
            ]
        )
        board = Leaderboard.for_results_dir(results)
        (record,) = board.runs(status="finished")
        board.close()
        assert record.metrics is not None
        rates[count] = record.metrics.timings["train_samples_per_second"]
        context.say(f"DDP {count} device(s): {rates[count]:,.0f} samples/s")
    where = f"{devices} GPUs" if gpus else f"{devices} CPU ranks (dry run)"
    part.rows.append(
        ratio_row(
            f"DDP training samples/s, KoELECTRA-base, {GRID_BATCH} per device, {where}",
            (rates[1], "1 device"),
            (rates[devices], f"{devices} devices"),
            target=None,
        )
    )


def grid(context: Context, part: Part, gpus: int) -> None:
    """The 2 × 5 × 3 grid as one ``bench grid`` process (one worker per GPU)."""
    settings = context.settings
    seeds = "1" if settings.tiny else "1,2,3"
    command = [
        "grid",
        "--encoders",
        "kobert,koelectra",
        "--heads",
        "all",
        "--seeds",
        seeds,
        "--batch-size",
        str(GRID_BATCH),
        "--train-limit",
        str(train_limit(settings)),
        "--encoder-path",
        f"kobert={settings.models / 'kobert'}",
        "--encoder-path",
        f"koelectra={settings.models / 'koelectra-base-v3'}",
        *grid_args(context, data_file(context), context.work_dir / "gpu-grid"),
    ]
    if gpus > 1:
        command += ["--gpus", ",".join(str(index) for index in range(gpus))]
    wall = context.bench(command)
    runs = 2 * 5 * len(seeds.split(","))
    context.say(f"grid of {runs} runs: {wall:.1f} s")
    part.rows.append(
        Row(
            f"grid 2 encoders × 5 heads × {len(seeds.split(','))} seeds, random init, {train_limit(settings):,} train, "
            f"1 epoch, batch {GRID_BATCH}, wall s",
            "–",
            f"{wall:,.1f}",
        )
    )
