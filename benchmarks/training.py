"""Training samples/s: the published notebooks' pipeline against ours, same model, batch, steps and step.

The notebooks tokenise each sentence on its own, pad every batch to ``max_len``, train in fp32 from a
plain shuffled DataLoader. Ours tokenises in batches through the token cache, pads per batch, buckets
by length and, on a GPU, uses bf16 autocast, TF32, fused AdamW and workers. Both take the same training
step (batch to device, forward, loss, backward, clipping, AdamW), one step each in turn, so a changing
load slows both alike; warmup steps are not measured.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.context import SEED, Context, Settings
from benchmarks.flops import EncoderShape, peak_tflops
from benchmarks.report import Part, ratio_row

if TYPE_CHECKING:
    import torch
    from torch.utils.data import DataLoader

    from bench.data.types import Example, SplitDataset
    from bench.training.module import EmotionClassifier
    from encoders import TextTokenizer

NAME = "training"
TARGET = 2.5


@dataclass
class StepRecord:
    """One training step: wall seconds, samples, tokens computed (padding included), real tokens, model FLOPs."""

    seconds: float
    samples: int
    tokens: int
    real_tokens: int
    flops: float


@dataclass
class TrainingMeasure:
    """Training throughput of one pipeline over the measured (post-warmup) steps."""

    name: str
    precision: str
    prepare_seconds: float
    steps: list[StepRecord]
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

    @property
    def tflops(self) -> float:
        """Achieved model TFLOP/s (:mod:`benchmarks.flops`, padding computed counts)."""
        return sum(step.flops for step in self.steps) / self.seconds / 1e12


class NotebookDataset:
    """The published notebooks' data path: each sentence tokenised on its own and padded to ``max_len``."""

    def __init__(self, examples: Sequence[Example], label_ids: dict[str, int], tokenizer: TextTokenizer, max_len: int):
        import torch

        self.items: list[dict[str, Any]] = []
        for index, example in enumerate(examples):
            ids = tokenizer.encode(example.text, max_len=max_len).ids
            input_ids = torch.full((max_len,), tokenizer.pad_id, dtype=torch.long)
            input_ids[: len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention_mask = torch.zeros(max_len, dtype=torch.long)
            attention_mask[: len(ids)] = 1
            self.items.append(
                {
                    "index": index,
                    "input_ids": input_ids,
                    "attention_mask": attention_mask,
                    "labels": label_ids[example.label],
                }
            )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.items[index]


def build_classifier(
    encoder: str,
    model_dir: Path,
    num_labels: int,
    *,
    compile_encoder: bool,
    overrides: tuple[tuple[str, object], ...] = (),
) -> tuple[EmotionClassifier, EncoderShape]:
    """The benchmark model: the encoder architecture with random weights (seeded) and a linear head."""
    import lightning as L

    from bench.training.module import EmotionClassifier
    from encoders import EncoderRequest, create_encoder
    from heads import create_head

    L.seed_everything(SEED, verbose=False)
    built = create_encoder(EncoderRequest(encoder, path=model_dir, random_init=True, config_overrides=overrides))
    head = create_head("linear", built.encoder.hidden_size, num_labels)
    shape = EncoderShape.from_config(built.encoder.model.config)
    module = EmotionClassifier(built.encoder, head, num_labels=num_labels, lr=5e-5, compile_encoder=compile_encoder)
    return module, shape


@dataclass
class Pipeline:
    """A model, its optimizer and an endless stream of batches, stepped by :func:`train_step`."""

    module: EmotionClassifier
    shape: EncoderShape
    optimizer: torch.optim.Optimizer
    batches: Iterator[dict[str, torch.Tensor]]
    autocast: torch.dtype | None
    tf32: bool
    records: list[StepRecord] = field(default_factory=list)


def endless(loader: DataLoader) -> Iterator[dict[str, torch.Tensor]]:
    """The loader's batches, epoch after epoch."""
    while True:
        yield from loader


def synchronize() -> None:
    """Wait for the GPU, if one is in use."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def train_step(pipeline: Pipeline, device: torch.device) -> None:
    """One step as Lightning runs it (batch to device, forward, loss, backward, clipping, AdamW), timed."""
    import torch
    from torch import nn

    torch.set_float32_matmul_precision("high" if pipeline.tf32 else "highest")
    synchronize()
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
    synchronize()
    mask = batch["attention_mask"]
    samples, length = int(mask.shape[0]), int(mask.shape[1])
    pipeline.records.append(
        StepRecord(
            time.perf_counter() - started,
            samples,
            samples * length,
            int(mask.sum()),
            pipeline.shape.training_flops(samples, length),
        )
    )


def torch_device(device: str) -> torch.device:
    """The torch device ``--device`` resolves to."""
    import torch

    from bench.machine.devices import lightning_devices

    accelerator, devices = lightning_devices(device)
    index = devices[0] if isinstance(devices, list) else 0
    return torch.device("cpu") if accelerator == "cpu" else torch.device("cuda", index)


def our_pipeline(
    dataset: SplitDataset,
    settings: Settings,
    work_dir: Path,
    device: torch.device,
    overrides: tuple[tuple[str, object], ...] = (),
) -> tuple[Pipeline, float, list[str], str]:
    """Our data path and training setup: the pipeline, its preparation seconds, notes, precision."""
    import torch

    from bench.machine.devices import resolve_precision
    from bench.training.datamodule import EmotionDataModule
    from bench.training.features import autocast_dtype
    from encoders import EncoderRequest, create_tokenizer

    tokenizer = create_tokenizer(EncoderRequest(settings.encoder, path=settings.model_dir))

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
    data = datamodule()
    data.setup("fit")
    prepare = time.perf_counter() - started
    notes = [f"tokenisation of all {len(data.tokens or ()):,} sentences (cold cache): {prepare:.2f} s"]
    if settings.token_cache:
        started = time.perf_counter()
        datamodule().setup("fit")
        notes.append(f"token-cache hit: {time.perf_counter() - started:.3f} s")
    precision = resolve_precision("auto", "cpu" if device.type == "cpu" else "gpu")
    module, shape = build_classifier(
        settings.encoder,
        settings.model_dir,
        len(dataset.labels),
        compile_encoder=settings.compile,
        overrides=overrides,
    )
    module = module.to(device).train()
    cuda = device.type == "cuda"
    pipeline = Pipeline(
        module,
        shape,
        torch.optim.AdamW(module.parameter_groups(), fused=cuda or None),
        endless(data.train_dataloader()),
        autocast=autocast_dtype(precision),
        tf32=cuda,
    )
    return pipeline, prepare, notes, precision


def estimate_seconds(settings: Settings) -> float:
    """Rough wall time on a quiet 2-core machine."""
    return 25 + 1.6 * (settings.warmup + settings.steps)


def measure(context: Context) -> Part:
    """Training throughput of the notebooks' pipeline and of ours."""
    import torch
    from torch.utils.data import DataLoader

    from encoders import EncoderRequest, create_tokenizer

    settings, dataset, work_dir = context.settings, context.dataset, context.work_dir
    device = torch_device(settings.device)
    tokenizer = create_tokenizer(EncoderRequest(settings.encoder, path=settings.model_dir))
    label_ids = {label: index for index, label in enumerate(dataset.labels)}
    started = time.perf_counter()
    notebook_data = NotebookDataset(dataset.train, label_ids, tokenizer, settings.max_len)
    notebook_prepare = time.perf_counter() - started
    loader = DataLoader(
        notebook_data, batch_size=settings.batch_size, shuffle=True, generator=torch.Generator().manual_seed(SEED)
    )
    module, shape = build_classifier(settings.encoder, settings.model_dir, len(dataset.labels), compile_encoder=False)
    module = module.to(device).train()
    notebook = Pipeline(
        module, shape, torch.optim.AdamW(module.parameters(), lr=5e-5), endless(loader), autocast=None, tf32=False
    )
    ours, ours_prepare, notes, precision = our_pipeline(dataset, settings, work_dir, device)
    for _ in range(settings.warmup + settings.steps):
        train_step(notebook, device)
        train_step(ours, device)
    torch.set_float32_matmul_precision("highest")
    measures = (
        TrainingMeasure("notebooks", "32-true", notebook_prepare, notebook.records[settings.warmup :]),
        TrainingMeasure("ours", precision, ours_prepare, ours.records[settings.warmup :], notes),
    )
    for measure_ in measures:
        context.say(
            f"training {measure_.name} ({measure_.precision}): {measure_.samples_per_second:,.1f} samples/s, "
            f"mean padded length {measure_.mean_padded_length:.1f}, {measure_.tflops:.3f} TFLOP/s"
        )
    notebook_measure, ours_measure = measures
    part = Part(NAME)
    part.rows.append(
        ratio_row(
            f"training samples/s ({settings.encoder}, batch {settings.batch_size})",
            (notebook_measure.samples_per_second, "notebooks"),
            (ours_measure.samples_per_second, ""),
            target=TARGET,
        )
    )
    part.figures = {
        "notebooks_samples_per_second": notebook_measure.samples_per_second,
        "ours_samples_per_second": ours_measure.samples_per_second,
    }
    part.details = details(measures, settings, torch.cuda.get_device_name(device) if device.type == "cuda" else None)
    return part


def details(measures: Sequence[TrainingMeasure], settings: Settings, gpu: str | None) -> list[str]:
    """The training table: preparation, samples/s, padding, TFLOP/s and MFU."""
    peak = peak_tflops(gpu, settings.peak_tflops)
    lines = [
        f"{settings.steps} measured steps after {settings.warmup} warmup steps each; model FLOPs as "
        "`benchmarks/flops.py` counts them (6 × matmul parameters × tokens + attention):",
        "",
        "| pipeline | precision | data preparation s | samples/s | mean padded length | padding share "
        "| model TFLOP/s | MFU |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for measure_ in measures:
        mfu = f"{measure_.tflops / peak:.1%}" if peak else "–"
        lines.append(
            f"| {measure_.name} | {measure_.precision} | {measure_.prepare_seconds:.2f} "
            f"| {measure_.samples_per_second:,.1f} | {measure_.mean_padded_length:.1f} "
            f"| {measure_.padding_share:.0%} | {measure_.tflops:.3f} | {mfu} |"
        )
    notes = measures[-1].notes
    if notes:
        lines += ["", f"Ours: {'; '.join(notes)}."]
    return lines
