"""Inference speed and start-up time.

- ``bench predict``'s path (:class:`bench.inference.predictor.Predictor` on an exported model):
  sentences/s at batch 64 and the latency of one sentence at batch 1, against a plain transformers
  loop on the same architecture (``AutoTokenizer`` on the folder + ``ElectraForSequenceClassification``,
  batches in input order, padded per batch, ``torch.inference_mode``), on the same test sentences.
- Start-up: wall time of ``bench --help``, ``bench leaderboard`` and ``bench predict --model`` (one
  sentence) as whole processes, median of 3 (``--quick``: one), against ``python -c pass``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks.context import SEED, Context, Settings, bench_command, timed_process
from benchmarks.report import Part, Row, ratio_row

NAME = "inference"
BATCH = 64
LATENCY_SENTENCES = 40
STARTUP_TARGET = 1.0  # seconds, bench --help and bench leaderboard


def estimate_seconds(settings: Settings) -> float:
    """Rough wall time on a quiet 2-core machine (start-up figures depend on the CLI's imports)."""
    return 40 + (3 if settings.quick else 9) * 6


def exported_model(context: Context) -> tuple[Path, Path]:
    """A results folder holding one finished run and that run exported as a model folder.

    Reuses the ``trainer`` part's ``bench run`` when it ran; otherwise trains a small run in-process
    (weights do not change the speed).
    """
    from bench.config import RunConfig
    from bench.data.types import DataOptions
    from bench.inference.model_files import export_model
    from bench.leaderboard.store import Leaderboard
    from bench.machine.results_folder import run_directory
    from bench.training.runner import run_experiment
    from benchmarks.trainer import tiny_overrides, write_job_data

    settings = context.settings
    results = context.work_dir / "trainer-bench-run"
    if not (results / "runs").is_dir():
        results = context.work_dir / "inference-run"
        overrides = tuple((key, int(value)) for key, value in (pair.split("=") for pair in tiny_overrides(settings)))
        config = RunConfig(
            encoder=settings.encoder,
            encoder_path=str(settings.model_dir),
            random_init=True,
            encoder_config=overrides,
            data=DataOptions(source=str(write_job_data(context))),
            train_limit=64,
            epochs=1,
            max_len=settings.max_len,
            batch_size=settings.batch_size,
            seed=SEED,
            device=settings.device,
            results_dir=str(results),
        )
        record = run_experiment(config, Leaderboard.for_results_dir(results))
        if record.status != "finished":
            raise RuntimeError(f"the inference model's run ended {record.status}: {record.error}")
    board = Leaderboard.for_results_dir(results)
    record = board.runs(status="finished")[0]
    board.close()
    target = context.work_dir / "inference-model"
    if not target.is_dir():
        export_model(run_directory(results, record.run_id), target)
    return results, target


def seconds_of(action: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def plain_loop(model_dir: Path, num_labels: int, max_len: int, overrides: Sequence[str]) -> Callable[[list[str]], None]:
    """A plain transformers forward loop: tokenise a batch, forward, softmax."""
    import torch
    from transformers import AutoTokenizer, ElectraConfig, ElectraForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    config = ElectraConfig.from_pretrained(model_dir, num_labels=num_labels)
    for pair in overrides:
        key, value = pair.split("=", 1)
        setattr(config, key, int(value))
    model = ElectraForSequenceClassification(config).eval()

    @torch.inference_mode()
    def classify(texts: list[str]) -> None:
        encoded = tokenizer(texts, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
        torch.softmax(model(**encoded).logits, dim=-1)

    return classify


def measure(context: Context) -> Part:
    """Predictor against a plain loop; then the CLI's start-up times."""
    from bench.inference.predictor import Predictor
    from benchmarks.trainer import tiny_overrides

    settings = context.settings
    if not (settings.model_dir / "vocab.txt").is_file():
        raise RuntimeError(f"the inference part needs a WordPiece encoder; {settings.model_dir} has no vocab.txt")
    results, model = exported_model(context)
    texts = [example.text for example in context.dataset.test][: 640 if settings.quick else 2560]
    predictor = Predictor.load(model, "cpu" if settings.device == "auto" else settings.device)
    loop = plain_loop(settings.model_dir, len(predictor.labels), settings.max_len, tiny_overrides(settings))

    def loop_batches() -> None:
        for start in range(0, len(texts), BATCH):
            loop(texts[start : start + BATCH])

    predictor.predict(texts[:BATCH], BATCH)
    loop(texts[:BATCH])
    ours_seconds = plain_seconds = 0.0
    for _ in range(2):  # alternate, so a changing load slows both alike
        ours_seconds += seconds_of(lambda: predictor.predict(texts, BATCH))
        plain_seconds += seconds_of(loop_batches)
    ours_rate, plain_rate = 2 * len(texts) / ours_seconds, 2 * len(texts) / plain_seconds
    singles = texts[:LATENCY_SENTENCES]
    ours_latency = statistics.median(seconds_of(lambda text=text: predictor.predict([text], 1)) for text in singles)
    plain_latency = statistics.median(seconds_of(lambda text=text: loop([text])) for text in singles)
    context.say(
        f"inference: bench predict {ours_rate:,.0f} sentences/s (batch {BATCH}), {ours_latency * 1000:.1f} ms at "
        f"batch 1; plain loop {plain_rate:,.0f}/s, {plain_latency * 1000:.1f} ms"
    )
    repeats = 1 if settings.quick else 3
    timed = "once" if repeats == 1 else f"median of {repeats}"
    bench = bench_command()
    sentence = "오늘 정말 기분이 좋다"
    startup = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "bench --help": [*bench, "--help"],
        "bench leaderboard": [*bench, "leaderboard", "--results", str(results)],
        "bench predict --model (one sentence)": [*bench, "predict", "--model", str(model), sentence],
    }
    startup_seconds = {
        name: statistics.median(timed_process(command) for _ in range(repeats)) for name, command in startup.items()
    }
    for name, seconds in startup_seconds.items():
        context.say(f"start-up {name}: {seconds:.2f} s")
    part = Part(NAME)
    part.rows += [
        ratio_row(
            f"inference sentences/s at batch {BATCH} ({len(texts):,} test sentences)",
            (plain_rate, "plain transformers loop"),
            (ours_rate, "bench predict"),
            target=None,
        ),
        Row(
            "inference latency at batch 1, ms (median)",
            f"{plain_latency * 1000:.1f} (plain transformers loop)",
            f"{ours_latency * 1000:.1f} (bench predict)",
            f"{plain_latency / ours_latency:.2f}×",
        ),
    ]
    for name in ("bench --help", "bench leaderboard"):
        seconds = startup_seconds[name]
        part.rows.append(
            Row(
                f"start-up: `{name}`, s ({timed})",
                "–",
                f"{seconds:.2f}",
                target=f"≤ {STARTUP_TARGET:g} s",
                reached=seconds <= STARTUP_TARGET,
            )
        )
    part.rows.append(
        Row(
            f"start-up: `bench predict --model`, one sentence, s ({timed})",
            "–",
            f"{startup_seconds['bench predict --model (one sentence)']:.2f}",
        )
    )
    part.figures = {
        "predict_per_second": ours_rate,
        "plain_per_second": plain_rate,
        **{f"startup {name}": seconds for name, seconds in startup_seconds.items()},
    }
    part.details = [
        f"Batch {BATCH}: the same {len(texts):,} test sentences, two passes each, alternating; `bench predict` sorts "
        "by length before batching, the plain loop keeps input order. Batch 1: median over "
        f"{LATENCY_SENTENCES} sentences, tokenisation included. Start-up, whole processes, {timed}, s: "
        + ", ".join(f"`{name}` {seconds:.2f}" for name, seconds in startup_seconds.items())
        + ".",
    ]
    return part
