"""ONNX Runtime against PyTorch on CPU: ``python -m benchmarks.onnx_runtime`` (``--quick`` for fewer repeats).

On the KoBERT-base architecture (``../shared/models/kobert``: real config and sentencepiece tokenizer,
random weights) with a linear head, both exactly as ``bench predict --model`` runs them
(:class:`~bench.inference.predictor.Predictor` on the safetensors folder,
:class:`~bench.inference.onnx_runtime.OnnxPredictor` on the ``export-model --format onnx`` folder, fp32
and int8), on the bundled sample data's test sentences, with the same number of threads, it measures

- latency at batch 1: median seconds for one sentence;
- throughput at batch 64: sentences/s over whole batches, best of the repeats;
- start-up: wall time of ``bench predict --model DIR "문장"`` as a whole process, median of three.

:func:`measure` returns the figures; ``__main__`` prints them with the machine's load and appends a
section to ``results/BENCHMARKS.md`` (``--no-write`` to skip).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KOBERT_FOLDER = ROOT.parent / "shared" / "models" / "kobert"
DEFAULT_OUTPUT = ROOT / "results" / "BENCHMARKS.md"
BATCH = 64
TARGET_LATENCY_SPEEDUP = 1.5


@dataclass
class BackendFigures:
    """One backend's figures."""

    name: str
    latency_batch1_ms: float
    throughput_batch64: float
    startup_s: float


@dataclass
class OnnxBenchmark:
    """What :func:`measure` found, and where."""

    backends: list[BackendFigures]
    threads: int
    sentences: int
    load_before: str
    load_after: str
    cpu: str

    def speedup(self, backend: str, figure: str) -> float:
        """How many times better ``backend`` is than PyTorch at ``figure`` (latency: lower is better)."""
        chosen = {row.name: row for row in self.backends}
        if figure == "latency":
            return chosen["pytorch"].latency_batch1_ms / chosen[backend].latency_batch1_ms
        return chosen[backend].throughput_batch64 / chosen["pytorch"].throughput_batch64


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "unknown"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def build_model_folders(work: Path, test_texts: Sequence[str], test_labels: Sequence[int], labels: Sequence[str]) -> dict[str, Path]:
    """The KoBERT-base + linear model as a safetensors folder and as fp32 and int8 ONNX folders."""
    import torch

    from bench.inference.model_files import ModelCard, architecture_fields, save_model_folder
    from bench.inference.onnx_export import export_onnx
    from bench.inference.predictor import SavedClassifier
    from encoders import EncoderRequest, create_encoder
    from heads import create_head, resolve_head_params

    torch.manual_seed(0)
    built = create_encoder(EncoderRequest("kobert", path=KOBERT_FOLDER, random_init=True))
    params = resolve_head_params("linear", {})
    model = SavedClassifier(built.encoder, create_head("linear", built.encoder.hidden_size, len(labels), params))
    card = ModelCard(run_id="benchmark", encoder="kobert", **architecture_fields(built.encoder),
                     head="linear", head_params=params, labels=list(labels), max_len=64, dataset="sample",
                     fingerprint="benchmark")
    folders = {"pytorch": work / "safetensors", "onnx-fp32": work / "onnx-fp32", "onnx-int8": work / "onnx-int8"}
    save_model_folder(folders["pytorch"], model.eval(), built.tokenizer, card)
    export_onnx(folders["pytorch"], folders["onnx-fp32"])
    export_onnx(folders["pytorch"], folders["onnx-int8"], quantize=True, test_split=(test_texts, test_labels))
    return folders


def median_seconds(action: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``action`` over ``repeats`` calls, after one warm-up call."""
    action()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def startup_seconds(folder: Path, repeats: int = 3) -> float:
    """Median wall time of ``bench predict --model folder`` on one sentence, as a whole process."""
    command = [sys.executable, "-c", "from bench.cli import main; main()", "predict", "--model", str(folder), "좋아"]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=environment)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(*, repeats: int = 20, batches: int = 2, work_dir: Path | None = None) -> OnnxBenchmark:
    """Latency at batch 1 (median of ``repeats`` sentences), throughput at batch 64 (best of ``batches`` batches),
    start-up of ``bench predict --model``, for PyTorch and ONNX Runtime (fp32 and int8) on all this process's cores."""
    import torch

    from bench.data import load_dataset
    from bench.data.types import DataOptions
    from bench.inference.onnx_runtime import OnnxPredictor
    from bench.inference.predictor import Predictor

    load_before = _load()
    dataset = load_dataset(DataOptions())
    texts = [example.text for example in dataset.test]
    gold = [dataset.labels.index(example.label) for example in dataset.test]
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(threads)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folders = build_model_folders(work_dir or Path(scratch), texts, gold, dataset.labels)
        predictors = {
            "pytorch": Predictor.load(folders["pytorch"]),
            "onnx-fp32": OnnxPredictor.load(folders["onnx-fp32"], threads=threads),
            "onnx-int8": OnnxPredictor.load(folders["onnx-int8"], threads=threads),
        }
        batch = (texts * (BATCH // len(texts) + 1))[:BATCH]
        for name, predictor in predictors.items():
            singles = iter(texts * (repeats // len(texts) + 2))
            latency = median_seconds(lambda: predictor.probabilities([next(singles)], batch_size=1), repeats)
            throughput = BATCH / min(
                median_seconds(lambda: predictor.probabilities(batch, batch_size=BATCH), 1) for _ in range(batches)
            )
            rows.append(BackendFigures(name, latency * 1000, throughput, startup_seconds(folders[name])))
    return OnnxBenchmark(rows, threads, len(texts), load_before, _load(), _cpu())


def markdown(result: OnnxBenchmark) -> list[str]:
    """The result as a Markdown section."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## ONNX Runtime vs PyTorch on CPU ({stamp})",
        "",
        f"KoBERT-base architecture (random weights) + linear head; {result.cpu}, {result.threads} threads; "
        f"load average {result.load_before} before, {result.load_after} after.",
        "",
        "| backend | latency, batch 1 (ms) | throughput, batch 64 (sentences/s) | `bench predict --model` start-up (s) |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {row.name} | {row.latency_batch1_ms:.1f} | {row.throughput_batch64:.1f} | {row.startup_s:.2f} |"
        for row in result.backends
    ]
    lines += [
        "",
        f"Latency speed-up at batch 1: fp32 {result.speedup('onnx-fp32', 'latency'):.2f}×, "
        f"int8 {result.speedup('onnx-int8', 'latency'):.2f}× (target ≥ {TARGET_LATENCY_SPEEDUP}×); throughput at "
        f"batch 64: fp32 {result.speedup('onnx-fp32', 'throughput'):.2f}×, "
        f"int8 {result.speedup('onnx-int8', 'throughput'):.2f}×.",
        "",
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print it, and append it to the Markdown file unless ``--no-write``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.onnx_runtime", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 latency repeats and 1 batch instead of 20 and 2")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="Markdown file to append to")
    parser.add_argument("--no-write", action="store_true", help="print only")
    options = parser.parse_args(argv)
    if not KOBERT_FOLDER.is_dir():
        print(f"error: {KOBERT_FOLDER} is missing (KoBERT config and tokenizer)", file=sys.stderr)
        return 2
    result = measure(repeats=5 if options.quick else 20, batches=1 if options.quick else 2)
    lines = markdown(result)
    print("\n".join(lines))
    if not options.no_write:
        options.output.parent.mkdir(parents=True, exist_ok=True)
        with options.output.open("a", encoding="utf-8") as handle:
            handle.write("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
