"""Throughput benchmark: ``python -m benchmarks.throughput`` (``--quick`` for a two-minute run).

In one process, on ``../shared/data/single_turn_7emo.xlsx`` and the KoELECTRA-small
architecture with random weights (tokenizer and config from ``../shared/models``), it measures

1. training samples/s of the published notebooks' pipeline (each sentence tokenised on
   its own, every batch padded to 64, fp32, a plain shuffled DataLoader) against ours
   (batch tokenisation through the token cache, dynamic padding, length buckets, bf16,
   TF32 and workers on a GPU), with the same model, batch size and number of steps, warmup excluded;
2. the wall time of a five-head frozen-encoder comparison run through ``run_experiment``
   with the feature cache (one encoder pass) and without it (five);
3. tokenizer sentences/s for KoBERT and KoELECTRA: native batch encoding against one by one.

Each figure is printed with the machine it ran on and the run is appended as a section
to ``results/BENCHMARKS.md`` (``--no-write`` to skip). ``--no-bucketing``,
``--no-token-cache`` and ``--compile`` switch our pipeline's optimisations; on a GPU
(or with ``--peak-tflops``) the training figures include model FLOPs utilisation.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import lightning as L
import torch
from rich.console import Console
from rich.table import Table
from torch import nn
from torch.utils.data import DataLoader, Dataset

from bench.config import RunConfig
from bench.data import limit_train, load_dataset
from bench.data.types import DataOptions, Example, SplitDataset
from bench.errors import BenchError
from bench.leaderboard.store import Leaderboard
from bench.training.datamodule import EmotionDataModule
from bench.training.features import autocast_dtype
from bench.training.module import EmotionClassifier
from bench.runtime.devices import lightning_devices, resolve_precision
from bench.training.runner import run_experiment
from bench.training.tokencache import cached_encode
from encoders import EncoderRequest, TextTokenizer, create_encoder, create_tokenizer
from heads import create_head, list_heads

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DEFAULT_DATA = SHARED / "data" / "single_turn_7emo.xlsx"
DEFAULT_OUTPUT = ROOT / "results" / "BENCHMARKS.md"
MODEL_FOLDERS = {"koelectra-small": "koelectra-small-v3", "koelectra": "koelectra-base-v3", "kobert": "kobert"}
TOKENIZERS = (("KoBERT", "kobert"), ("KoELECTRA", "koelectra-small"))
SECTIONS = ("training", "heads", "tokenizers")
SEED = 1
DISTURBED_CORES = 0.2  # other processes' average CPU use (cores) above which a section's figures are flagged
QUICK_EVAL = 500  # about this many validation and test examples are kept by --quick
TRAINING_TARGET = 2.5
HEADS_TARGET = 4.0
KOBERT_TOKENIZER_TARGET = 200_000
# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) by device-name fragment, most specific first.
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
)
console = Console(highlight=False, soft_wrap=True)


@dataclass(frozen=True)
class Settings:
    """What one benchmark run measures and with which sizes."""

    data: Path
    models: Path
    encoder: str
    device: str
    batch_size: int
    max_len: int
    warmup: int
    steps: int
    heads_train_limit: int
    heads_epochs: int
    one_by_one: int | None
    repeats: int  # timed repetitions of each tokenizer measurement (the fastest counts)
    sections: tuple[str, ...]
    peak_tflops: float | None
    bucketing: bool
    token_cache: bool
    compile: bool
    quick: bool

    @property
    def model_dir(self) -> Path:
        """The encoder's folder (tokenizer and config.json)."""
        return self.models / MODEL_FOLDERS[self.encoder]


# ------------------------------------------------------------------------------------------ machine


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (else what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def available_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def gpu_name() -> str | None:
    """The CUDA device's name, if there is one."""
    return torch.cuda.get_device_name() if torch.cuda.is_available() else None


def peak_tflops(explicit: float | None) -> float | None:
    """Dense bf16 peak of this GPU: ``--peak-tflops``, else the table, else unknown."""
    if explicit is not None:
        return explicit
    name = gpu_name()
    if name is None:
        return None
    return next((peak for fragment, peak in PEAK_BF16_TFLOPS if fragment in name), None)


def load_text() -> str:
    """The 1/5/15-minute load averages."""
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds the whole machine was busy (hypervisor steal included), this process's CPU seconds, wall time."""

    machine_busy: float
    own: float
    wall: float


def cpu_sample() -> CpuSample | None:
    """A :class:`CpuSample` from /proc/stat (``None`` where there is none)."""
    try:
        ticks = [int(value) for value in Path("/proc/stat").read_text(encoding="utf-8").split("\n")[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = ticks[3] + ticks[4]  # idle + iowait
    times = os.times()
    own = times.user + times.system + times.children_user + times.children_system
    return CpuSample((sum(ticks) - idle) / os.sysconf("SC_CLK_TCK"), own, time.monotonic())


def other_cores(before: CpuSample | None, after: CpuSample | None) -> float | None:
    """Average number of cores other processes (and the hypervisor) kept busy between two samples."""
    if before is None or after is None or after.wall <= before.wall:
        return None
    others = (after.machine_busy - before.machine_busy) - (after.own - before.own)
    return max(0.0, others / (after.wall - before.wall))


def machine_description() -> dict[str, str]:
    """CPU, cores, torch and GPU, for the report."""
    return {
        "cpu": f"{cpu_model()}, {available_cores()} cores, {torch.get_num_threads()} torch threads",
        "gpu": gpu_name() or "none",
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


# ----------------------------------------------------------------------------------------- training


@dataclass
class StepRecord:
    """One training step: wall seconds, samples, tokens computed (padding included) and real tokens."""

    seconds: float
    samples: int
    tokens: int
    real_tokens: int


def _synchronize() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


@dataclass
class TrainingMeasure:
    """Training throughput of one pipeline over the measured (post-warmup) steps."""

    name: str
    precision: str
    prepare_seconds: float
    steps: list[StepRecord]
    flops_per_token: float
    notes: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(step.seconds for step in self.steps)

    @property
    def samples_per_second(self) -> float:
        return sum(step.samples for step in self.steps) / self.seconds

    @property
    def padding_share(self) -> float:
        """Share of computed token positions that are padding."""
        return 1 - sum(step.real_tokens for step in self.steps) / sum(step.tokens for step in self.steps)

    @property
    def mean_padded_length(self) -> float:
        return sum(step.tokens for step in self.steps) / sum(step.samples for step in self.steps)

    def tflops(self, real_only: bool = False) -> float:
        """Achieved model TFLOP/s: 6 × non-embedding parameters × tokens (computed, or real only) per second."""
        tokens = sum(step.real_tokens if real_only else step.tokens for step in self.steps)
        return self.flops_per_token * tokens / self.seconds / 1e12


class NotebookDataset(Dataset):
    """The published notebooks' data path: each sentence tokenised on its own and padded to ``max_len``."""

    def __init__(self, examples: Sequence[Example], label_ids: dict[str, int], tokenizer: TextTokenizer, max_len: int):
        self.items: list[dict[str, Any]] = []
        for index, example in enumerate(examples):
            ids = tokenizer.encode(example.text, max_len=max_len).ids
            input_ids = torch.full((max_len,), tokenizer.pad_id, dtype=torch.long)
            input_ids[: len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention_mask = torch.zeros(max_len, dtype=torch.long)
            attention_mask[: len(ids)] = 1
            label = label_ids[example.label]
            self.items.append(
                {"index": index, "input_ids": input_ids, "attention_mask": attention_mask, "labels": label}
            )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.items[index]


def non_embedding_parameters(module: nn.Module) -> int:
    """Parameters outside ``nn.Embedding`` tables (the ones every token multiplies through)."""
    embedding = {id(p) for m in module.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    return sum(p.numel() for p in module.parameters() if id(p) not in embedding)


def build_classifier(settings: Settings, num_labels: int, *, compile_encoder: bool) -> EmotionClassifier:
    """The benchmark model: the encoder architecture with random weights (seeded) and a linear head."""
    L.seed_everything(SEED, verbose=False)
    built = create_encoder(EncoderRequest(settings.encoder, path=settings.model_dir, random_init=True))
    head = create_head("linear", built.encoder.hidden_size, num_labels)
    return EmotionClassifier(built.encoder, head, num_labels=num_labels, lr=5e-5, compile_encoder=compile_encoder)


@dataclass
class Pipeline:
    """A model, its optimizer and an endless stream of batches, stepped by :func:`train_step`."""

    module: EmotionClassifier
    optimizer: torch.optim.Optimizer
    batches: Iterator[dict[str, torch.Tensor]]
    autocast: torch.dtype | None
    tf32: bool
    records: list[StepRecord] = field(default_factory=list)


def endless(loader: DataLoader) -> Iterator[dict[str, torch.Tensor]]:
    """The loader's batches, epoch after epoch."""
    while True:
        yield from loader


def train_step(pipeline: Pipeline, device: torch.device) -> None:
    """One step as Lightning runs it (batch to device, forward, loss, backward, clipping, AdamW), timed."""
    torch.set_float32_matmul_precision("high" if pipeline.tf32 else "highest")
    _synchronize()
    started = time.perf_counter()
    batch = {name: tensor.to(device, non_blocking=True) for name, tensor in next(pipeline.batches).items()}
    autocast = torch.autocast(device.type, dtype=pipeline.autocast) if pipeline.autocast else contextlib.nullcontext()
    with autocast:
        logits = pipeline.module.batch_logits(batch)
    loss = pipeline.module.loss_fn(logits.float(), batch["labels"])
    loss.backward()
    nn.utils.clip_grad_norm_(pipeline.module.parameters(), 1.0)
    pipeline.optimizer.step()
    pipeline.optimizer.zero_grad(set_to_none=True)
    _synchronize()
    mask = batch["attention_mask"]
    pipeline.records.append(
        StepRecord(time.perf_counter() - started, int(mask.shape[0]), int(mask.numel()), int(mask.sum()))
    )


def measure_training(
    dataset: SplitDataset, settings: Settings, work_dir: Path
) -> tuple[TrainingMeasure, TrainingMeasure]:
    """Training throughput of the notebooks' pipeline and of ours: same model, batch size and steps.

    The two pipelines step in turn (one step each, alternately), so a load that
    changes during the run slows both alike.
    """
    tokenizer = create_tokenizer(EncoderRequest(settings.encoder, path=settings.model_dir))
    label_ids = {label: index for index, label in enumerate(dataset.labels)}
    accelerator, devices = lightning_devices(settings.device)
    index = devices[0] if isinstance(devices, list) else 0
    device = torch.device("cpu") if accelerator == "cpu" else torch.device("cuda", index)

    started = time.perf_counter()
    notebook_data = NotebookDataset(dataset.train, label_ids, tokenizer, settings.max_len)
    notebook_prepare = time.perf_counter() - started
    notebook_loader = DataLoader(
        notebook_data, batch_size=settings.batch_size, shuffle=True, generator=torch.Generator().manual_seed(SEED)
    )
    notebook_module = build_classifier(settings, len(dataset.labels), compile_encoder=False).to(device).train()
    notebook = Pipeline(
        notebook_module,
        torch.optim.AdamW(notebook_module.parameters(), lr=5e-5),
        endless(notebook_loader),
        autocast=None,
        tf32=False,
    )

    def datamodule() -> EmotionDataModule:
        return EmotionDataModule(
            dataset,
            tokenizer,
            max_len=settings.max_len,
            batch_size=settings.batch_size,
            seed=SEED,
            num_workers=None,
            bucketing=settings.bucketing,
            cache_dir=work_dir / "cache",
            token_cache=settings.token_cache,
            device_type=device.type,
        )

    started = time.perf_counter()
    ours_data = datamodule()
    ours_data.setup("fit")
    ours_prepare = time.perf_counter() - started
    notes = [f"tokenisation of all {len(ours_data.tokens or ()):,} sentences (cold cache): {ours_prepare:.2f} s"]
    if settings.token_cache:
        started = time.perf_counter()
        datamodule().setup("fit")
        notes.append(f"token-cache hit: {time.perf_counter() - started:.3f} s")
    precision = resolve_precision("auto", accelerator)
    ours_module = build_classifier(settings, len(dataset.labels), compile_encoder=settings.compile).to(device).train()
    fused = device.type == "cuda"
    ours = Pipeline(
        ours_module,
        torch.optim.AdamW(ours_module.parameter_groups(), fused=fused or None),
        endless(ours_data.train_dataloader()),
        autocast=autocast_dtype(precision),
        tf32=device.type == "cuda",
    )
    for _ in range(settings.warmup + settings.steps):
        train_step(notebook, device)
        train_step(ours, device)
    torch.set_float32_matmul_precision("highest")
    flops_per_token = 6.0 * non_embedding_parameters(notebook_module)
    return (
        TrainingMeasure("notebooks", "32-true", notebook_prepare, notebook.records[settings.warmup :], flops_per_token),
        TrainingMeasure("ours", precision, ours_prepare, ours.records[settings.warmup :], flops_per_token, notes),
    )


# -------------------------------------------------------------------------------------------- heads


@dataclass
class HeadRun:
    """One head's run in one mode."""

    head: str
    seconds: float
    macro_f1: float | None
    status: str


@dataclass
class HeadsMeasure:
    """The five-head frozen-encoder comparison with and without the feature cache."""

    cached: list[HeadRun]
    live: list[HeadRun]
    train_size: int
    epochs: int

    @property
    def cached_seconds(self) -> float:
        return sum(run.seconds for run in self.cached)

    @property
    def live_seconds(self) -> float:
        return sum(run.seconds for run in self.live)


def measure_heads(
    dataset: SplitDataset, settings: Settings, work_dir: Path, on_run: Callable[[str, HeadRun], None]
) -> HeadsMeasure:
    """Every registered head on the frozen encoder via ``run_experiment``, with the feature cache and without.

    The modes alternate head by head (so a changing load slows both alike); the
    cache starts cold, so the first cached run includes the one encoder pass.
    """
    limited = limit_train(dataset, settings.heads_train_limit, dataset_split_seed(settings))
    base = RunConfig(
        encoder=settings.encoder,
        encoder_path=str(settings.model_dir),
        random_init=True,
        freeze_encoder=True,
        data=DataOptions(source=str(settings.data)),
        train_limit=settings.heads_train_limit,
        epochs=settings.heads_epochs,
        max_len=settings.max_len,
        batch_size=settings.batch_size,
        lr=1e-3,
        seed=SEED,
        device=settings.device,
        bucketing=settings.bucketing,
        token_cache=settings.token_cache,
        compile=settings.compile,
    )
    modes = {"feature cache": True, "no feature cache": False}
    runs: dict[str, list[HeadRun]] = {mode: [] for mode in modes}
    for head in list_heads():
        for mode, feature_cache in modes.items():
            results = work_dir / ("heads-cached" if feature_cache else "heads-live")
            config = base.with_updates(head=head, feature_cache=feature_cache, results_dir=str(results))
            started = time.perf_counter()
            record = run_experiment(config, Leaderboard.for_results_dir(results), dataset=limited)
            run = HeadRun(head, time.perf_counter() - started, record.macro_f1, record.status)
            if record.status != "finished":
                raise RuntimeError(f"head {head} ({mode}) ended {record.status}: {record.error}")
            on_run(mode, run)
            runs[mode].append(run)
    return HeadsMeasure(runs["feature cache"], runs["no feature cache"], len(limited.train), settings.heads_epochs)


def dataset_split_seed(settings: Settings) -> int:
    """The split seed runs use by default (``--train-limit`` subsets with it)."""
    return DataOptions(source=str(settings.data)).split_seed


# --------------------------------------------------------------------------------------- tokenizers


@dataclass
class TokenizerMeasure:
    """Sentences per second of one tokenizer."""

    name: str
    batch: float
    one_by_one: float
    cached: float
    sentences: int


def best_seconds(action: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` timed calls."""
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return min(timings)


def measure_tokenizers(texts: list[str], settings: Settings, work_dir: Path) -> list[TokenizerMeasure]:
    """Native batch encoding, one-by-one encoding and token-cache reads, in sentences/s."""
    measures = []
    for label, name in TOKENIZERS:
        tokenizer = create_tokenizer(EncoderRequest(name, path=settings.models / MODEL_FOLDERS[name]))
        tokenizer.encode_batch(texts[:1000], settings.max_len)
        batch = best_seconds(lambda: tokenizer.encode_batch(texts, settings.max_len), settings.repeats)
        subset = texts[: settings.one_by_one] if settings.one_by_one else texts
        single = best_seconds(
            lambda: [tokenizer.encode(text, max_len=settings.max_len) for text in subset], max(1, settings.repeats // 2)
        )
        cache = work_dir / "tokenizer-cache"
        cached_encode(tokenizer, texts, settings.max_len, cache)
        hit = best_seconds(lambda: cached_encode(tokenizer, texts, settings.max_len, cache), settings.repeats)
        measures.append(TokenizerMeasure(label, len(texts) / batch, len(subset) / single, len(texts) / hit, len(texts)))
    return measures


# ------------------------------------------------------------------------------------------- report


@dataclass
class Report:
    """Everything one run measured, for the console and BENCHMARKS.md."""

    settings: Settings
    machine: dict[str, str]
    started: dt.datetime
    load_before: str
    load_after: str = ""
    training: tuple[TrainingMeasure, TrainingMeasure] | None = None
    heads: HeadsMeasure | None = None
    tokenizers: list[TokenizerMeasure] | None = None
    other_cores: dict[str, float | None] = field(default_factory=dict)

    @property
    def disturbed(self) -> list[str]:
        """Sections during which other processes kept more than :data:`DISTURBED_CORES` cores busy."""
        return [name for name, cores in self.other_cores.items() if cores is not None and cores > DISTURBED_CORES]

    def contention_text(self) -> str:
        """Other processes' average CPU use per section, in cores."""
        parts = [f"{name} {'?' if cores is None else f'{cores:.2f}'}" for name, cores in self.other_cores.items()]
        return ", ".join(parts)

    def summary_rows(self) -> list[tuple[str, str, str, str, str, str]]:
        """(figure, baseline, ours, ratio, target, reached) rows."""
        rows = []
        if self.training is not None:
            notebook, ours = self.training
            ratio = ours.samples_per_second / notebook.samples_per_second
            rows.append((
                f"training samples/s ({self.settings.encoder}, batch {self.settings.batch_size})",
                f"{notebook.samples_per_second:,.1f} (notebooks)",
                f"{ours.samples_per_second:,.1f}",
                f"{ratio:.2f}×",
                f"≥ {TRAINING_TARGET}×",
                _reached(ratio >= TRAINING_TARGET),
            ))
        if self.heads is not None:
            ratio = self.heads.live_seconds / self.heads.cached_seconds
            rows.append((
                f"five-head frozen-encoder comparison, wall s "
                f"({self.heads.train_size:,} train, {self.heads.epochs} epochs)",
                f"{self.heads.live_seconds:,.1f} (no feature cache)",
                f"{self.heads.cached_seconds:,.1f} (feature cache)",
                f"{ratio:.2f}×",
                f"≥ {HEADS_TARGET}×",
                _reached(ratio >= HEADS_TARGET),
            ))
        for measure in self.tokenizers or []:
            kobert = measure.name == "KoBERT"
            rows.append((
                f"{measure.name} tokenizer sentences/s",
                f"{measure.one_by_one:,.0f} (one by one)",
                f"{measure.batch:,.0f} (batch)",
                f"{measure.batch / measure.one_by_one:.2f}×",
                f"≥ {KOBERT_TOKENIZER_TARGET:,}/s" if kobert else "–",
                _reached(measure.batch >= KOBERT_TOKENIZER_TARGET) if kobert else "–",
            ))
        return rows

    def markdown(self) -> str:
        """This run as a BENCHMARKS.md section."""
        settings = self.settings
        mode = "quick (not for the targets)" if settings.quick else "full"
        lines = [
            f"## {self.started:%Y-%m-%d %H:%M} UTC · {mode} · {self.machine['cpu'].split(',')[0]} · "
            f"GPU: {self.machine['gpu']}",
            "",
            f"- machine: {self.machine['cpu']}; GPU: {self.machine['gpu']}; torch {self.machine['torch']}, "
            f"Python {self.machine['python']}",
            f"- load average (1/5/15 min): {self.load_before} at the start, {self.load_after} at the end; "
            f"cores kept busy by other processes, per section: {self.contention_text()}"
            + (
                f" — **other work disturbed {', '.join(self.disturbed)}: those figures are pessimistic and noisy**"
                if self.disturbed
                else " (a quiet machine)"
            ),
            f"- model: {settings.encoder} architecture, random weights; batch {settings.batch_size}, "
            f"max_len {settings.max_len}; our switches: bucketing {_on(settings.bucketing)}, "
            f"token cache {_on(settings.token_cache)}, compile {_on(settings.compile)}",
            f"- command: `{' '.join(['python -m benchmarks.throughput', *sys.argv[1:]])}`",
            "",
            "| figure | baseline | ours | ratio | target | reached |",
            "|---|---|---|---|---|---|",
            *(
                f"| {' | '.join(row[:-1])} | {'**no**' if row[-1] == 'no' else row[-1]} |"
                for row in self.summary_rows()
            ),
        ]
        if self.training is not None:
            lines += ["", *training_markdown(self.training, settings)]
        if self.heads is not None:
            lines += ["", *heads_markdown(self.heads)]
        if self.machine["gpu"] == "none":
            lines += ["", "No GPU on this machine: MFU and the GPU grid wall time were not measured."]
        return "\n".join(lines) + "\n"


def _reached(ok: bool) -> str:
    return "yes" if ok else "no"


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def training_markdown(training: tuple[TrainingMeasure, TrainingMeasure], settings: Settings) -> list[str]:
    """Details of the training figures."""
    peak = peak_tflops(settings.peak_tflops)
    lines = [
        f"Training, {settings.steps} measured steps after {settings.warmup} warmup steps each:",
        "",
        "| pipeline | precision | data preparation s | samples/s | mean padded length | padding share "
        "| model TFLOP/s | MFU |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for measure in training:
        mfu = "–"
        if peak:
            mfu = f"{measure.tflops() / peak:.1%} ({measure.tflops(real_only=True) / peak:.1%} on real tokens)"
        lines.append(
            f"| {measure.name} | {measure.precision} | {measure.prepare_seconds:.2f} "
            f"| {measure.samples_per_second:,.1f} "
            f"| {measure.mean_padded_length:.1f} | {measure.padding_share:.0%} | {measure.tflops():.3f} | {mfu} |"
        )
    notes = training[1].notes
    if notes:
        lines += ["", f"Ours: {'; '.join(notes)}."]
    return lines


def heads_markdown(heads: HeadsMeasure) -> list[str]:
    """Per-head wall time and macro-F1 in both modes."""
    lines = [
        "Five heads on the frozen encoder, wall s per run (the first cached run includes the encoder pass); "
        "test macro-F1 of both modes, equal up to floating-point noise:",
        "",
        "| head | feature cache s | no feature cache s | macro-F1 cache / no cache |",
        "|---|---|---|---|",
    ]
    for cached, live in zip(heads.cached, heads.live, strict=True):
        lines.append(
            f"| {cached.head} | {cached.seconds:.1f} | {live.seconds:.1f} "
            f"| {_f1(cached.macro_f1)} / {_f1(live.macro_f1)} |"
        )
    return lines


def _f1(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


HEADER = """# Benchmarks

Speed figures of ko-emotion-bench, produced by `python -m benchmarks.throughput` (one command, about ten
minutes on a 2-core CPU; `--quick`, about two, is for trying it out, not for the targets). Each run appends
one section below: the date, the machine (CPU model, cores, torch, GPU), the load average, how many cores
other processes kept busy during each part (from /proc/stat; above 0.2 the part is flagged as disturbed and
should be rerun on a quiet machine), and a table of figures against the targets. Delete outdated sections by
hand. Benchmarks are not tests.

What is measured, in one process, on `../shared/data/single_turn_7emo.xlsx` (38,594 sentences; KoBERT gives
17.2 tokens per sentence on average, p95 33, p99 45) and the KoELECTRA-small architecture with random weights:

1. **Training samples/s**, the published notebooks' pipeline (each sentence tokenised on its own, every batch
   padded to 64, fp32, plain shuffled DataLoader) against ours (batch tokenisation through the token cache,
   dynamic padding, length buckets; on a GPU also bf16 autocast, TF32, fused AdamW, pinned memory and
   workers), same model, batch size and number of steps, warmup excluded. Both take the same training step
   (forward, loss, backward, clipping, AdamW), one step each in turn, so the difference is the data path (and
   precision on a GPU) and both see the same machine. Other work slows our many small steps more than the
   notebooks' large ones: a disturbed run understates the ratio.
2. **Five-head frozen-encoder comparison**, wall time of `run_experiment` for every head with the feature
   cache (cold: the one encoder pass is included) and as five runs without it, the two modes head by head
   in turn. The test macro-F1 of each head is printed for both modes: they agree up to floating-point noise
   (the features are rounded to float16 in both modes, but computed in different batches).
3. **Tokenizer sentences/s**, KoBERT and KoELECTRA: `encode_batch` (native batch path) against `encode` one
   sentence at a time, and reading the same ids back from the token cache.

MFU (model FLOPs utilisation) is 6 × non-embedding parameters × tokens per second against the dense bf16 peak
of the GPU (a small table of known GPUs, or `--peak-tflops`); it is reported on a GPU only.

**GPU targets not measured yet.** No GPU was available to the session that wrote this benchmark, so
KoBERT-base MFU in bf16 (target ≥ 35%) and the wall time of a 2×5×3 grid have not been measured. On a GPU:

```bash
python -m benchmarks.throughput --encoder kobert --sections training --batch-size 256   # MFU
time bench grid --encoders kobert,koelectra --random-init --heads all --seeds 1,2,3 \\
    --data ../shared/data/single_turn_7emo.xlsx --encoder-path kobert=../shared/models/kobert \\
    --encoder-path koelectra=../shared/models/koelectra-base-v3                        # 2×5×3 grid
```
"""


def write_report(report: Report, output: Path) -> None:
    """Append ``report`` as a section of ``output`` (created with its header when absent)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    existing = output.read_text(encoding="utf-8") if output.is_file() else HEADER
    output.write_text(existing.rstrip("\n") + "\n\n" + report.markdown(), encoding="utf-8")


def print_summary(report: Report) -> None:
    """The figures as a console table."""
    table = Table(title="ko-emotion-bench throughput")
    for column in ("figure", "baseline", "ours", "ratio", "target", "reached"):
        table.add_column(column)
    for row in report.summary_rows():
        table.add_row(*row)
    console.print(table)


# --------------------------------------------------------------------------------------------- main


def parse_settings(argv: Sequence[str] | None) -> tuple[Settings, Path | None, Path | None]:
    """Settings, the report file (``None``: do not write) and the work directory from the command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"few steps, about {QUICK_EVAL} validation/test examples, a small head comparison",
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the single-turn dataset (xlsx)")
    parser.add_argument("--models", type=Path, default=SHARED / "models", help="folder of the tokenizer/config folders")
    parser.add_argument("--encoder", choices=sorted(MODEL_FOLDERS), default="koelectra-small")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-len", type=int, default=64)
    parser.add_argument("--steps", type=int, help="measured training steps (default 40, quick 8)")
    parser.add_argument("--warmup", type=int, help="unmeasured warmup steps (default 3, quick 2)")
    parser.add_argument(
        "--heads-train-limit", type=int, help="training examples per head run (default 4000, quick 300)"
    )
    parser.add_argument("--heads-epochs", type=int, help="epochs per head run (default 3, quick 2)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    parser.add_argument("--peak-tflops", type=float, help="dense bf16 peak of the accelerator, for MFU")
    parser.add_argument(
        "--no-bucketing", dest="bucketing", action="store_false", help="our pipeline without length buckets"
    )
    parser.add_argument(
        "--no-token-cache", dest="token_cache", action="store_false", help="our pipeline without the token cache"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the encoder in our pipeline")
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="the Markdown file a section is appended to"
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--work-dir", type=Path, help="keep caches and runs here (default: a temporary folder, removed)"
    )
    args = parser.parse_args(argv)
    sections = tuple(section.strip() for section in args.sections.split(",") if section.strip())
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown or not sections:
        parser.error(f"--sections takes {', '.join(SECTIONS)}; got {args.sections!r}")
    quick = args.quick
    settings = Settings(
        data=args.data,
        models=args.models,
        encoder=args.encoder,
        device=args.device,
        batch_size=args.batch_size,
        max_len=args.max_len,
        warmup=args.warmup if args.warmup is not None else (2 if quick else 3),
        steps=args.steps or (8 if quick else 40),
        heads_train_limit=args.heads_train_limit or (300 if quick else 4000),
        heads_epochs=args.heads_epochs or (2 if quick else 3),
        one_by_one=5000 if quick else None,
        repeats=3 if quick else 7,
        sections=sections,
        peak_tflops=args.peak_tflops,
        bucketing=args.bucketing,
        token_cache=args.token_cache,
        compile=args.compile,
        quick=quick,
    )
    return settings, None if args.no_write else args.output, args.work_dir


def check_inputs(settings: Settings) -> str | None:
    """A one-line reason the benchmark cannot run, or ``None``."""
    if not settings.data.is_file():
        return (
            f"{settings.data} not found: the benchmark needs the 38,594-sentence single-turn dataset "
            "(../shared/data/single_turn_7emo.xlsx in the workplace); pass --data FILE"
        )
    needed = {settings.models / MODEL_FOLDERS[name] for _, name in TOKENIZERS} | {settings.model_dir}
    for folder in sorted(needed):
        if not folder.is_dir():
            return f"{folder} not found: pass --models DIR holding {', '.join(sorted(MODEL_FOLDERS.values()))}"
    if not (settings.model_dir / "config.json").is_file():
        return f"{settings.model_dir} has no config.json (the encoder's architecture)"
    return None


def spread(examples: list[Example], count: int) -> list[Example]:
    """About ``count`` examples taken evenly across ``examples`` (splits are grouped by label)."""
    return examples[:: max(1, len(examples) // count)]


def run(settings: Settings, work_dir: Path) -> Report:
    """Measure the chosen sections, printing each figure as it comes."""
    report = Report(settings, machine_description(), dt.datetime.now(dt.timezone.utc), load_text())
    machine = report.machine
    console.print(f"machine: {machine['cpu']} · GPU: {machine['gpu']} · torch {machine['torch']}")
    console.print(f"load average (1/5/15 min): {report.load_before}")
    dataset = load_dataset(DataOptions(source=str(settings.data)))
    texts = [example.text for split in (dataset.train, dataset.validation, dataset.test) for example in split]
    console.print(f"data: {dataset.name}, {len(texts):,} sentences ({len(dataset.train):,} train)")
    if settings.quick:
        validation, test = spread(dataset.validation, QUICK_EVAL), spread(dataset.test, QUICK_EVAL)
        dataset = replace(dataset, validation=validation, test=test)
    if "tokenizers" in settings.sections:
        with contention(report, "tokenizers"):
            report.tokenizers = measure_tokenizers(texts, settings, work_dir)
        for measure in report.tokenizers:
            console.print(
                f"tokenizer {measure.name}: batch {measure.batch:,.0f}/s · one by one {measure.one_by_one:,.0f}/s "
                f"· token-cache read {measure.cached:,.0f}/s"
            )
    if "training" in settings.sections:
        with contention(report, "training"):
            report.training = measure_training(dataset, settings, work_dir)
        for measure in report.training:
            console.print(
                f"training {measure.name} ({measure.precision}): {measure.samples_per_second:,.1f} samples/s, "
                f"mean padded length {measure.mean_padded_length:.1f}, {measure.tflops():.3f} TFLOP/s"
            )
    if "heads" in settings.sections:

        def announce(mode: str, head_run: HeadRun) -> None:
            console.print(f"head {head_run.head} ({mode}): {head_run.seconds:.1f} s, macro-F1 {_f1(head_run.macro_f1)}")

        with contention(report, "heads"):
            report.heads = measure_heads(dataset, settings, work_dir, announce)
    report.load_after = load_text()
    return report


@contextlib.contextmanager
def contention(report: Report, section: str) -> Iterator[None]:
    """Record (and print) how many cores other processes kept busy while ``section`` ran."""
    before = cpu_sample()
    yield
    cores = report.other_cores[section] = other_cores(before, cpu_sample())
    if cores is not None:
        warning = " — disturbed: rerun on a quiet machine" if cores > DISTURBED_CORES else ""
        console.print(f"{section}: other processes kept {cores:.2f} cores busy on average{warning}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 on success, 2 when its inputs are missing."""
    settings, output, work_dir = parse_settings(argv)
    problem = check_inputs(settings)
    if problem is not None:
        console.print(f"[red]error:[/red] {problem}")
        return 2
    temporary = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="bench-throughput-")) if work_dir is None else work_dir
    work.mkdir(parents=True, exist_ok=True)
    try:
        report = run(settings, work)
    except BenchError as error:
        console.print(f"[red]error:[/red] {error}")
        return 2
    finally:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)
    print_summary(report)
    if output is not None:
        write_report(report, output)
        console.print(f"appended to {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
