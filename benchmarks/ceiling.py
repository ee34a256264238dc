"""The CPU's own ceiling: the measured fp32 matmul peak, and each side's model FLOP/s as a share of it.

The peak is one large square GEMM through torch (``torch.mm``, 2048³, fp32, torch's default threads),
the fastest of ten after a warm-up: ``2 × 2048³ / seconds``. Model FLOP/s count the encoder's matrix
multiplications only (N: its non-embedding matmul parameters, :mod:`benchmarks.flops`) over the real
(unpadded) tokens, attention's score products, the head, the optimizer and padding left out:

- training: ``6 × N × tokens/s`` (forward and backward), with tokens/s = training samples/s × the job
  file's mean tokens per sentence;
- inference (the frozen encoder's forward passes): ``2 × N × tokens/s`` over the wall time of the whole
  processes, with the sentences each side encodes (bench grid: every sentence once; the Trainer: every
  training and validation sentence each epoch and the test sentences, per run).

Run after the ``pretrained`` and ``frozen-heads`` parts it reads. Also measured, to show what stops
training short of the peak: the same GEMM at the shapes one fine-tuning step multiplies (batch × mean
length rows, hidden × intermediate), the rate a small CPU matmul reaches, and one fused AdamW step over
as many weights as the model has (embeddings included); together they give the samples/s a training
step could reach before attention, norms, activations and data movement.
"""

from __future__ import annotations

import time

from benchmarks.context import Context, Settings
from benchmarks.report import Part, Row

NAME = "ceiling"
GEMM_SIZE = 2048
SHARE_TARGET = 0.6  # bench run's training at ≥ 60 % of the peak (issue 23)


def estimate_seconds(settings: Settings) -> float:
    """Rough wall time on a quiet 2-core machine."""
    return 5 if settings.tiny else 30


def gemm_flops_per_second(rows: int, inner: int, columns: int, repeats: int) -> float:
    """FLOP/s of the fastest of ``repeats`` fp32 ``torch.mm`` of (rows × inner) · (inner × columns), warm."""
    import torch

    generator = torch.Generator().manual_seed(0)
    left = torch.randn(rows, inner, generator=generator)
    right = torch.randn(inner, columns, generator=generator)
    out = torch.empty(rows, columns)
    torch.mm(left, right, out=out)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(left, right, out=out)
        best = min(best, time.perf_counter() - started)
    return 2.0 * rows * inner * columns / best


def optimizer_step_seconds(parameters: int, repeats: int) -> float:
    """Seconds of the fastest of ``repeats`` fused AdamW steps over ``parameters`` fp32 weights (warm)."""
    import torch

    weights = torch.nn.Parameter(torch.zeros(parameters))
    weights.grad = torch.full((parameters,), 1e-3)
    optimizer = torch.optim.AdamW([weights], lr=5e-5, weight_decay=0.01, fused=True)
    optimizer.step()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        optimizer.step()
        best = min(best, time.perf_counter() - started)
    return best


def measure(context: Context) -> Part:
    """The peak, then each measured side against it."""
    import torch

    settings = context.settings
    size = 256 if settings.tiny else GEMM_SIZE
    repeats = 3 if settings.tiny else 10
    peak = gemm_flops_per_second(size, size, size, repeats)
    threads = torch.get_num_threads()
    context.say(f"fp32 matmul peak: {peak / 1e9:.1f} GFLOP/s ({size}³, {threads} threads)")
    part = Part(NAME, figures={"peak_flops": peak})
    part.rows.append(
        Row(
            f"fp32 matmul peak, GFLOP/s (torch.mm {size}³, best of {repeats}, {threads} threads)",
            "–",
            f"{peak / 1e9:,.1f}",
        )
    )
    part.details = [
        (
            f"Peak: `torch.mm` of two {size} × {size} fp32 matrices, fastest of {repeats} after a warm-up, "
            f"{threads} torch threads: {peak / 1e9:,.1f} GFLOP/s."
        )
    ]

    pretrained = context.parts.get("pretrained")
    figures = pretrained.figures if pretrained is not None else {}
    if "matmul_parameters" in figures:
        n, per_sentence = figures["matmul_parameters"], figures["tokens_per_sentence"]
        per_sample = 6 * n * per_sentence
        ours, theirs = (
            figures[f"{side}_train_samples_per_second"] * per_sample / peak for side in ("bench", "trainer")
        )
        implied = peak / per_sample
        part.rows.append(
            Row(
                "fine-tuning model FLOP/s, share of the matmul peak (6 × N × tokens/s)",
                f"{theirs:.1%} (Trainer)",
                f"{ours:.1%} (bench run)",
                f"{ours / theirs:.2f}×",
                f"≥ {SHARE_TARGET:.0%} of peak",
                ours >= SHARE_TARGET,
            )
        )
        hidden, intermediate = figures.get("hidden_size"), figures.get("intermediate_size")
        rows = round(settings.batch_size * per_sentence)
        step_gemm = gemm_flops_per_second(rows, int(hidden), int(intermediate), repeats) if hidden else None
        part.details += [
            "",
            (
                f"Fine-tuning: N = {n / 1e6:.1f} M matmul parameters, {per_sentence:.1f} tokens per sentence: "
                f"{per_sample / 1e9:.2f} GFLOP per training sample; at the peak that is {implied:,.1f} samples/s, "
                f"{SHARE_TARGET:.0%} of it {SHARE_TARGET * implied:,.1f}; bench run trains at "
                f"{figures['bench_train_samples_per_second']:,.1f} ({ours:.1%}), the Trainer at "
                f"{figures['trainer_train_samples_per_second']:,.1f} ({theirs:.1%})."
            ),
        ]
        if step_gemm is not None:
            trained = int(figures.get("trained_parameters", figures["parameters"]))
            optimizer = optimizer_step_seconds(trained, min(repeats, 3))
            # One sample's share of a step: its matmuls at the step's GEMM rate, its share of the optimizer step.
            floor_rate = 1.0 / (per_sample / step_gemm + optimizer / settings.batch_size)
            part.rows += [
                Row(
                    f"fp32 matmul at a training step's shape ({rows} × {hidden} · {hidden} × {intermediate}), "
                    "share of the peak",
                    "–",
                    f"{step_gemm / 1e9:,.1f} GFLOP/s ({step_gemm / peak:.1%})",
                ),
                Row(
                    f"fused AdamW step over the {trained / 1e6:.1f} M trained parameters, s",
                    "–",
                    f"{optimizer:.3f}",
                ),
                Row(
                    "training samples/s those two allow (forward + backward at the step-shape GEMM rate, plus the "
                    "optimizer step)",
                    f"{figures['trainer_train_samples_per_second']:,.1f} (Trainer)",
                    f"{figures['bench_train_samples_per_second']:,.1f} (bench run)",
                    f"{figures['bench_train_samples_per_second'] / floor_rate:.0%} of {floor_rate:,.1f}",
                ),
            ]
            part.details.append(
                f"What stops it: one step multiplies about {rows} token rows (batch {settings.batch_size} × "
                f"{per_sentence:.1f} tokens) by {hidden} × {intermediate} weights; torch.mm at that shape reaches "
                f"{step_gemm / 1e9:,.1f} GFLOP/s, {step_gemm / peak:.1%} of the large-GEMM peak. AdamW updates every "
                f"trained parameter each step ({trained / 1e6:.1f} M of {figures['parameters'] / 1e6:.1f} M; "
                "a fused step takes "
                f"{optimizer:.3f} s here), work the model FLOPs do not count. At the step-shape rate plus the "
                f"optimizer step a training sample costs {1 / floor_rate * 1000:.1f} ms: {floor_rate:,.1f} samples/s "
                "before attention, layer norms, GELU, dropout and data movement, which add more."
            )
    else:
        part.rows.append(
            Row(
                "fine-tuning model FLOP/s, share of the matmul peak",
                "–",
                "– (run with the pretrained part)",
                target=f"≥ {SHARE_TARGET:.0%} of peak",
            )
        )

    frozen = context.parts.get("frozen-heads")
    if frozen is not None and "bench_grid_seconds" in frozen.figures:
        per_sentence = 2 * frozen.figures["matmul_parameters"] * frozen.figures["tokens_per_sentence"]
        ours = frozen.figures["bench_encoded_sentences"] * per_sentence / frozen.figures["bench_grid_seconds"] / peak
        theirs = (
            frozen.figures["trainer_encoded_sentences"] * per_sentence / frozen.figures["five_trainer_seconds"] / peak
        )
        part.rows.append(
            Row(
                "five frozen heads, encoder model FLOP/s over the whole processes, "
                "share of the peak (2 × N × tokens/s)",
                f"{theirs:.1%} (5 Trainer runs)",
                f"{ours:.1%} (bench grid)",
                f"{ours / theirs:.2f}×",
            )
        )
        part.details += [
            "",
            (
                "Five frozen heads: bench grid encodes each sentence once, so its share is low by design — it does "
                "less work, not slower work; the Trainer runs repeat the encoder's forward pass "
                f"{frozen.figures['trainer_encoded_sentences'] / frozen.figures['bench_encoded_sentences']:.0f}×"
                " as often."
            ),
        ]
    return part
