"""ONNX Runtime against PyTorch on CPU (``python -m benchmarks --only onnx``, or ``python -m benchmarks.onnx_runtime``).

On the KoBERT-base architecture (``<models>/kobert``: real config and sentencepiece tokenizer, random
weights) with a linear head, both exactly as ``bench predict --model`` runs them
(:class:`~bench.inference.predictor.Predictor` on the safetensors folder,
:class:`~bench.inference.onnx_runtime.OnnxPredictor` on the ``export-model --format onnx`` folder, fp32
and int8), on the same test sentences and all of this process's cores, it measures

- latency at batch 1: median seconds for one sentence;
- throughput at batch 64: sentences/s over whole batches, best of the repeats;
- start-up: wall time of ``bench predict --model DIR "문장"`` as a whole process.

:func:`onnx_figures` returns the figures; :func:`measure` is the ``benchmarks`` part.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.context import Context, Settings, bench_command, timed_process
from benchmarks.report import Part, Row, ratio_row

NAME = "onnx"
BATCH = 64
TARGET_LATENCY_SPEEDUP = 1.5
BACKENDS = ("pytorch", "onnx-fp32", "onnx-int8")


@dataclass
class BackendFigures:
    """One backend's figures."""

    name: str
    latency_batch1_ms: float
    throughput_batch64: float
    startup_s: float


def estimate_seconds(settings: Settings) -> float:
    """Rough wall time on a quiet 2-core machine (KoBERT-base on CPU; start-up depends on the CLI's imports)."""
    return 120 + (1 if settings.quick else 3) * 3 * 8


def build_model_folders(
    work: Path, kobert: Path, test_texts: Sequence[str], test_labels: Sequence[int], labels: Sequence[str]
) -> dict[str, Path]:
    """The KoBERT-base + linear model as a safetensors folder and as fp32 and int8 ONNX folders."""
    import torch

    from bench.inference.model_files import ModelCard, architecture_fields, save_model_folder
    from bench.inference.onnx_export import export_onnx
    from bench.inference.predictor import SavedClassifier
    from encoders import EncoderRequest, create_encoder
    from heads import create_head, resolve_head_params

    torch.manual_seed(0)
    built = create_encoder(EncoderRequest("kobert", path=kobert, random_init=True))
    params = resolve_head_params("linear", {})
    model = SavedClassifier(built.encoder, create_head("linear", built.encoder.hidden_size, len(labels), params))
    card = ModelCard(
        run_id="benchmark",
        encoder="kobert",
        **architecture_fields(built.encoder),
        head="linear",
        head_params=params,
        labels=list(labels),
        max_len=64,
        dataset="benchmark",
        fingerprint="benchmark",
    )
    folders = {name: work / name for name in BACKENDS}
    save_model_folder(folders["pytorch"], model.eval(), built.tokenizer, card)
    export_onnx(folders["pytorch"], folders["onnx-fp32"])
    export_onnx(folders["pytorch"], folders["onnx-int8"], quantize=True, test_split=(test_texts, test_labels))
    return folders


def median_seconds(action: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``action`` over ``repeats`` calls, after one warm-up call."""
    action()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def onnx_figures(
    work: Path,
    kobert: Path,
    texts: Sequence[str],
    gold: Sequence[int],
    labels: Sequence[str],
    *,
    repeats: int = 20,
    batches: int = 2,
    startups: int = 3,
) -> list[BackendFigures]:
    """Latency at batch 1 (median of ``repeats`` sentences), throughput at batch 64 (best of ``batches``) and the
    start-up of ``bench predict --model`` (median of ``startups``), for PyTorch and ONNX Runtime fp32 and int8."""
    import torch

    from bench.inference.onnx_runtime import OnnxPredictor
    from bench.inference.predictor import Predictor

    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(threads)
    folders = build_model_folders(work, kobert, texts, gold, labels)
    predictors = {"pytorch": Predictor.load(folders["pytorch"])}
    predictors.update({name: OnnxPredictor.load(folders[name], threads=threads) for name in BACKENDS[1:]})
    batch = (list(texts) * (BATCH // len(texts) + 1))[:BATCH]
    rows = []
    for name, predictor in predictors.items():
        singles = iter(list(texts) * (repeats // len(texts) + 2))
        latency = median_seconds(
            lambda predictor=predictor, singles=singles: predictor.probabilities([next(singles)], batch_size=1),
            repeats,
        )
        best = min(
            median_seconds(lambda predictor=predictor: predictor.probabilities(batch, batch_size=BATCH), 1)
            for _ in range(batches)
        )
        command = [*bench_command(), "predict", "--model", str(folders[name]), "오늘 정말 기분이 좋다"]
        startup = statistics.median(timed_process(command) for _ in range(startups))
        rows.append(BackendFigures(name, latency * 1000, BATCH / best, startup))
    return rows


def measure(context: Context) -> Part:
    """The ``onnx`` part: ONNX Runtime (fp32, int8) against PyTorch for the KoBERT-base architecture."""
    settings = context.settings
    kobert = settings.models / "kobert"
    if not (kobert / "config.json").is_file():
        raise RuntimeError(f"the onnx part needs the KoBERT config and tokenizer in {kobert}")
    dataset = context.dataset
    texts = [example.text for example in dataset.test][: 256 if settings.quick else 1024]
    gold = [dataset.labels.index(example.label) for example in dataset.test][: len(texts)]
    figures = onnx_figures(
        context.work_dir / "onnx",
        kobert,
        texts,
        gold,
        dataset.labels,
        repeats=5 if settings.quick else 20,
        batches=1 if settings.quick else 2,
        startups=1 if settings.quick else 3,
    )
    by_name = {row.name: row for row in figures}
    torch_row = by_name["pytorch"]
    for row in figures:
        context.say(
            f"onnx: {row.name} {row.latency_batch1_ms:.1f} ms at batch 1, {row.throughput_batch64:.1f} "
            f"sentences/s at batch {BATCH}, start-up {row.startup_s:.2f} s"
        )
    part = Part(NAME)
    for name in BACKENDS[1:]:
        row = by_name[name]
        part.rows += [
            ratio_row(
                f"KoBERT-base latency at batch 1, ms: ONNX Runtime {name[5:]} vs PyTorch",
                (torch_row.latency_batch1_ms, "PyTorch"),
                (row.latency_batch1_ms, f"ONNX Runtime {name[5:]}"),
                target=TARGET_LATENCY_SPEEDUP,
                higher_is_better=False,
            ),
            ratio_row(
                f"KoBERT-base sentences/s at batch {BATCH}: ONNX Runtime {name[5:]} vs PyTorch",
                (torch_row.throughput_batch64, "PyTorch"),
                (row.throughput_batch64, f"ONNX Runtime {name[5:]}"),
                target=None,
            ),
        ]
    part.rows += [
        Row(f"start-up: `bench predict --model` ({row.name} folder), s", "–", f"{row.startup_s:.2f}") for row in figures
    ]
    part.figures = {
        f"{row.name} {key}": value
        for row in figures
        for key, value in (
            ("latency_ms", row.latency_batch1_ms),
            ("per_second", row.throughput_batch64),
            ("startup_s", row.startup_s),
        )
    }
    part.details = [
        f"KoBERT-base architecture, random weights, linear head; {len(texts)} test sentences; batch 1: "
        "median over single sentences, tokenisation included; int8 is ONNX Runtime dynamic quantisation."
    ]
    return part


if __name__ == "__main__":
    from benchmarks.cli import main

    sys.exit(main(["--only", NAME, *sys.argv[1:]]))
