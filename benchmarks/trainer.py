"""The Hugging Face Trainer as a measured peer, and the fixed costs of ``bench run`` as a process.

One job for both sides: ``job_sentences`` sentences spread evenly over the single-turn set (80/10/10:
1,000 train, 125 validation, 125 test for 1,250), the KoELECTRA-small architecture with random
weights, batch 32, one epoch, max length 64, AdamW with linear warmup (10 %) and decay, weight decay
0.01, clipping 1.0. Each side runs as a whole process (read, split, tokenise, train, validate, test):

- ``bench run`` against ``benchmarks/peers/hf_trainer.py`` (Trainer, the folder's fast tokenizer through
  ``AutoTokenizer``, ``DataCollatorWithPadding``, ``train_sampling_strategy="group_by_length"``); both
  sides must tokenise the file to the same number of tokens (within 1 %), else the job differs;
- a bare PyTorch loop, no framework, over the batches ``bench run`` trains on (same model, fused AdamW,
  clipping, schedule), in this process: the training samples/s a framework's steps cannot beat;
- five heads: one ``bench grid --heads all --freeze-encoder`` (feature cache) against five Trainer runs
  with the encoder frozen (the Trainer has one head, so comparing five means five runs).

The fixed-cost breakdown of ``bench run`` comes from the timings its leaderboard row records, with the
import time measured in a separate process.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from benchmarks.context import SEED, Context, Settings, bench_command, timed_process
from benchmarks.report import Part, Row, ratio_row

NAME = "trainer"
PEER = Path(__file__).resolve().parent / "peers" / "hf_trainer.py"
FROZEN_LR = 1e-3  # head-only training, both sides
END_TO_END_TARGET = 0.8  # bench run wall ≤ 0.8 × the Trainer script's
SAMPLES_TARGET = 1.2
FIVE_HEADS_TARGET = 5.0
NOTEBOOKS_TARGET = 2.0  # bench run end-to-end throughput against the notebooks' training-only throughput
SAME_TOKENS_TOLERANCE = 0.01  # the two sides' token counts of the job file may differ this much (special tokens)
# ``<phase>_seconds`` timings of a run's row that follow one another, in order; the others happen within one.
SEQUENTIAL_PHASES = (
    "data_load",
    "leaderboard_start",
    "model_build",
    "tokenize",
    "fit",
    "test",
    "artefacts_wait",
    "latency",
)
LEGACY_PHASES = ("train", "eval")  # a runner that records only training steps and the test pass
PEER_PHASES = ("imports", "read", "split", "tokenize", "setup", "train_and_validation", "test")  # the Trainer script's
NESTED_PHASES = {
    "first_step": "within fit",
    "train": "training steps, within fit",
    "validation": "within fit",
    "eval": "the test pass",
    "artefacts": "written in the background",
}


def write_job_data(context: Context, count: int | None = None) -> Path:
    """``count`` sentences (default: the job's; evenly spread over the single-turn set, by label) as a
    text,label csv."""
    import pandas as pd

    count = context.settings.job_sentences if count is None else count
    path = context.work_dir / f"job-{count}.csv"
    if not path.is_file():
        data = context.full_dataset
        examples = sorted(data.train + data.validation + data.test, key=lambda example: (example.label, example.uid))
        chosen = examples[:: max(1, len(examples) // count)][:count]
        frame = pd.DataFrame({"text": [e.text for e in chosen], "label": [e.label for e in chosen]})
        frame.to_csv(path, index=False)
    return path


def tiny_overrides(settings: Settings) -> list[str]:
    """KEY=VALUE encoder config overrides of a tiny dry run (none otherwise)."""
    if not settings.tiny:
        return []
    return ["num_hidden_layers=2", "hidden_size=32", "num_attention_heads=2", "intermediate_size=64"]


def bench_args(settings: Settings, data: Path, results: Path) -> list[str]:
    """The options both ``bench run`` and ``bench grid`` take for the job."""
    args = [
        "--data",
        str(data),
        "--encoder-path",
        str(settings.model_dir),
        "--random-init",
        "--epochs",
        str(settings.job_epochs),
        "--batch-size",
        str(settings.batch_size),
        "--max-len",
        str(settings.max_len),
        "--results",
        str(results),
        "--device",
        settings.device,
    ]
    for pair in tiny_overrides(settings):
        args += ["--encoder-config", pair]
    return args


def peer_command(settings: Settings, data: Path, output: Path, *, frozen: bool) -> list[str]:
    """The Trainer script's command line for the job."""
    command = [
        sys.executable,
        str(PEER),
        "--data",
        str(data),
        "--model-dir",
        str(settings.model_dir),
        "--output",
        str(output),
        "--batch-size",
        str(settings.batch_size),
        "--epochs",
        str(settings.job_epochs),
        "--max-len",
        str(settings.max_len),
        "--lr",
        str(FROZEN_LR if frozen else settings.job_lr),
        "--seed",
        str(SEED),
    ]
    for pair in tiny_overrides(settings):
        command += ["--config", pair]
    return command + (["--freeze-encoder"] if frozen else [])


def import_seconds(modules: str = "bench.cli, bench.cli.run, bench.training.runner") -> float:
    """Seconds a fresh interpreter takes to import ``modules`` (by default what ``bench run`` uses), beyond
    starting up."""
    baseline = timed_process([sys.executable, "-c", "pass"])
    return max(0.0, timed_process([sys.executable, "-c", f"import {modules}"]) - baseline)


def bench_token_count(settings: Settings, data: Path, encoder: str | None = None, folder: Path | None = None) -> int:
    """Tokens (special tokens included) of every sentence of ``data`` as ``bench run`` tokenises them.

    The encoder is ``encoder`` from ``folder`` (default: the settings' encoder and its folder).
    """
    from bench.data import load_dataset
    from bench.data.types import DataOptions
    from encoders import EncoderRequest, create_tokenizer

    dataset = load_dataset(DataOptions(source=str(data)))
    texts = [example.text for example in dataset.train + dataset.validation + dataset.test]
    request = EncoderRequest(name=encoder or settings.encoder, path=folder or settings.model_dir)
    tokenizer = create_tokenizer(request)
    return sum(len(ids) for ids in tokenizer.encode_batch(texts, settings.max_len))


def bare_loop_samples_per_second(settings: Settings, data: Path, work: Path) -> float:
    """Training samples/s of a plain PyTorch loop over the epoch of batches ``bench run`` trains on.

    The same encoder and linear head, fused AdamW, clipping 1.0 and warmup/decay schedule as
    ``bench run`` and the Trainer, and nothing else: no framework, logging or metrics.
    """
    import torch
    from torch.optim.lr_scheduler import LambdaLR

    from bench.config import RunConfig, parse_pairs, sort_params
    from bench.data import load_dataset
    from bench.data.types import DataOptions
    from bench.machine.devices import torch_device
    from bench.training.fitting import prepare_run
    from bench.training.module import linear_warmup_decay

    config = RunConfig(
        encoder=settings.encoder,
        head="linear",
        encoder_path=str(settings.model_dir),
        random_init=True,
        lr=settings.job_lr,
        seed=SEED,
        epochs=1,
        batch_size=settings.batch_size,
        max_len=settings.max_len,
        results_dir=str(work / "bare-loop"),
        device=settings.device,
        encoder_config=sort_params(parse_pairs(tiny_overrides(settings), "--encoder-config")),
    )
    prepared = prepare_run(config, load_dataset(DataOptions(source=str(data))))
    prepared.datamodule.tokenize()
    batches = list(prepared.datamodule.train_dataloader())
    device = torch_device(settings.device)
    module = prepared.module.to(device).train()
    optimizer = torch.optim.AdamW(module.parameter_groups(), fused=True)
    scheduler = LambdaLR(optimizer, linear_warmup_decay(int(module.warmup_ratio * len(batches)), len(batches)))
    parameters = [parameter for parameter in module.parameters() if parameter.requires_grad]
    started, samples = time.perf_counter(), 0
    for batch in batches:
        logits = module(batch["input_ids"].to(device), batch["attention_mask"].to(device))
        loss = torch.nn.functional.cross_entropy(logits, batch["labels"].to(device))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        samples += int(batch["labels"].shape[0])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return samples / (time.perf_counter() - started)


def estimate_seconds(settings: Settings) -> float:
    """Rough wall time on a quiet 2-core machine."""
    scale = settings.job_sentences / 1250 * settings.job_epochs
    return 20 + 45 * scale + 40 * scale + 40 + 5 * (15 + 10 * scale)


def measure(context: Context) -> Part:
    """One job by ``bench run`` and by the Trainer script; five heads by ``bench grid`` and five Trainer runs."""
    from bench.leaderboard.store import Leaderboard

    settings, work = context.settings, context.work_dir
    data = write_job_data(context)
    imports = import_seconds()
    lightning_imports = import_seconds("lightning")
    context.say(
        f"imports of bench run (fresh interpreter): {imports:.1f} s, of which Lightning {lightning_imports:.1f} s"
    )

    results = work / "trainer-bench-run"
    run_command = [
        *bench_command(),
        "run",
        "--encoder",
        settings.encoder,
        "--head",
        "linear",
        "--lr",
        str(settings.job_lr),
        "--seed",
        str(SEED),
        "--no-progress",
        *bench_args(settings, data, results),
    ]
    bench_wall = timed_process(run_command)
    board = Leaderboard.for_results_dir(results)
    (record,) = board.runs(status="finished")
    board.close()
    assert record.metrics is not None
    timings = record.metrics.timings
    context.say(f"bench run: {bench_wall:.1f} s end to end, {timings['train_samples_per_second']:.1f} samples/s")

    peer_json = work / "trainer-peer.json"
    command = peer_command(settings, data, peer_json, frozen=False)
    peer_wall = timed_process(command)
    peer = json.loads(peer_json.read_text(encoding="utf-8"))
    context.say(f"Trainer script: {peer_wall:.1f} s end to end, {peer['train_samples_per_second']:.1f} samples/s")
    our_tokens = bench_token_count(settings, data)
    if abs(our_tokens - peer["tokens"]) > SAME_TOKENS_TOLERANCE * peer["tokens"]:
        raise RuntimeError(
            f"bench tokenises the job into {our_tokens:,} tokens, the Trainer script into {peer['tokens']:,}: "
            "the two sides would not train on the same job"
        )
    bare = bare_loop_samples_per_second(settings, data, work)
    context.say(f"bare PyTorch loop over bench run's batches: {bare:.1f} samples/s")

    grid_results = work / "trainer-bench-grid"
    grid_command = [
        *bench_command(),
        "grid",
        "--encoders",
        settings.encoder,
        "--heads",
        "all",
        "--seeds",
        str(SEED),
        "--freeze-encoder",
        "--lr",
        str(FROZEN_LR),
        "--no-progress",
        *bench_args(settings, data, grid_results),
    ]
    grid_wall = timed_process(grid_command)
    context.say(f"bench grid, five heads, frozen encoder: {grid_wall:.1f} s")
    frozen_walls = []
    for index in range(5):
        frozen_walls.append(
            timed_process(peer_command(settings, data, work / f"trainer-frozen-{index}.json", frozen=True))
        )
        context.say(f"Trainer run {index + 1}/5, frozen encoder: {frozen_walls[-1]:.1f} s")
    five_trainer = sum(frozen_walls)

    train_examples = int(peer["train_examples"])
    end_to_end_throughput = train_examples * settings.job_epochs / bench_wall
    part = Part(NAME)
    job = f"{train_examples:,} train, {settings.job_epochs} epoch, whole process"
    share = bench_wall / peer_wall
    part.rows += [
        Row(
            f"one run end to end, wall s ({job})",
            f"{peer_wall:,.1f} (Trainer script)",
            f"{bench_wall:,.1f} (bench run)",
            f"{share:.2f}×",
            f"≤ {END_TO_END_TARGET:g}× Trainer",
            share <= END_TO_END_TARGET,
        ),
        ratio_row(
            "training samples/s (same job)",
            (peer["train_samples_per_second"], "Trainer"),
            (timings["train_samples_per_second"], "bench run"),
            target=SAMPLES_TARGET,
        ),
        ratio_row(
            "training samples/s: a bare PyTorch loop over bench run's batches (no framework; the ceiling)",
            (peer["train_samples_per_second"], "Trainer"),
            (bare, "bare loop"),
            target=None,
        ),
        ratio_row(
            "five heads, frozen encoder, wall s (whole processes)",
            (five_trainer, "5 Trainer runs"),
            (grid_wall, "bench grid, feature cache"),
            target=FIVE_HEADS_TARGET,
            higher_is_better=False,
        ),
    ]
    notebooks = context.parts.get("training")
    if notebooks is not None:
        part.rows.append(
            ratio_row(
                "bench run end-to-end samples/s against the notebooks' training-only samples/s",
                (notebooks.figures["notebooks_samples_per_second"], "notebooks, training only"),
                (end_to_end_throughput, "bench run, whole process"),
                target=NOTEBOOKS_TARGET,
            )
        )
    else:
        part.rows.append(
            Row(
                "bench run end-to-end samples/s against the notebooks' training-only samples/s",
                "– (run with the training part)",
                f"{end_to_end_throughput:,.1f}",
                target=f"≥ {NOTEBOOKS_TARGET:g}×",
            )
        )
    part.figures = {
        "bench_run_seconds": bench_wall,
        "trainer_seconds": peer_wall,
        "bench_grid_seconds": grid_wall,
        "five_trainer_seconds": five_trainer,
        "bench_train_samples_per_second": timings["train_samples_per_second"],
        "trainer_train_samples_per_second": peer["train_samples_per_second"],
        "bare_loop_train_samples_per_second": bare,
        "lightning_import_seconds": lightning_imports,
        "bench_tokens": our_tokens,
        "trainer_tokens": peer["tokens"],
    }
    part.details = details(
        settings, bench_wall, imports, timings, peer_wall, peer, run_command, command, grid_command, frozen_walls
    )
    part.details[2:2] = [
        f"Same work: the job file is {our_tokens:,} tokens as bench tokenises it and {int(peer['tokens']):,} as the "
        f"Trainer script does ({peer['unknown_share']:.1%} unknown tokens); test macro-F1 after the epoch "
        f"{record.metrics.macro_f1:.4f} (bench run) and {peer['test_macro_f1']:.4f} (Trainer) — one epoch from "
        "random weights learns little on either side.",
        "",
        f"Floors on this machine: importing Lightning alone (it loads torch, torchmetrics — which loads "
        f"transformers, scipy and matplotlib — and torch._dynamo) takes {lightning_imports:.1f} s of bench run's "
        f"{imports:.1f} s of imports; a bare PyTorch loop over bench run's batches trains at {bare:.1f} samples/s, "
        f"{bare / peer['train_samples_per_second']:.2f}× the Trainer's — no framework's training steps go faster.",
        "",
    ]
    return part


def details(
    settings: Settings,
    bench_wall: float,
    imports: float,
    timings: dict[str, float],
    peer_wall: float,
    peer: dict[str, float],
    run_command: list[str],
    peer_line: list[str],
    grid_command: list[str],
    frozen_walls: list[float],
) -> list[str]:
    """Commands, the Trainer's exact settings and both fixed-cost breakdowns."""
    recorded = {key.removesuffix("_seconds"): value for key, value in timings.items() if key.endswith("_seconds")}
    top = [phase for phase in SEQUENTIAL_PHASES if phase in recorded] or [
        phase for phase in LEGACY_PHASES if phase in recorded
    ]
    rest = bench_wall - imports - sum(recorded[phase] for phase in top)
    peer_prepare = peer["read_seconds"] + peer["split_seconds"] + peer["tokenize_seconds"]
    peer_rest = peer_wall - sum(peer[f"{phase}_seconds"] for phase in PEER_PHASES)
    lines = [
        f"Job: {settings.job_sentences:,} sentences of the single-turn set, evenly spread by label, split 80/10/10 "
        f"({int(peer['train_examples']):,} / {int(peer['validation_examples'])} / {int(peer['test_examples'])}); "
        f"batch {settings.batch_size}, {settings.job_epochs} epoch, max length {settings.max_len}, lr "
        f"{settings.job_lr:g} (head-only runs {FROZEN_LR:g}), 10 % linear warmup then linear decay, weight decay "
        "0.01, clipping 1.0, seed 1.",
        "",
        f"- bench run: `{_shown(run_command)}`",
        f"- Trainer script: `{_shown(peer_line)}` — `Trainer` with `TrainingArguments(per_device_train_batch_size="
        f"{settings.batch_size}, per_device_eval_batch_size=64, num_train_epochs={settings.job_epochs}, learning_rate="
        f'{settings.job_lr:g}, weight_decay=0.01, lr_scheduler_type="linear", warmup_steps=0.1, max_grad_norm=1.0, '
        'train_sampling_strategy="group_by_length", eval_strategy="epoch", save_strategy="no", '
        'logging_strategy="no", bf16=<on a GPU>, use_cpu=<without a GPU>, dataloader_num_workers=0, seed=1)`, '
        "`AutoTokenizer.from_pretrained(folder)` (fast), `DataCollatorWithPadding`, "
        "`ElectraForSequenceClassification` from config.json (random weights; its own classification head)",
        f"- five heads: `{_shown(grid_command)}` against five Trainer runs with `--freeze-encoder` "
        f"({', '.join(f'{wall:.1f}' for wall in frozen_walls)} s)",
        "",
        "Where the time of one run goes (s):",
        "",
        "| phase | bench run | Trainer script |",
        "|---|---|---|",
        f"| imports (fresh interpreter) | {imports:.1f} | {peer['imports_seconds']:.1f} |",
        f"| read + split + tokenise | – | {peer_prepare:.1f} |",
        *(f"| {phase.replace('_', ' ')} | {recorded[phase]:.1f} | – |" for phase in top),
        *(
            f"| ({phase.replace('_', ' ')}: {NESTED_PHASES.get(phase, 'recorded')}) | {recorded[phase]:.1f} | – |"
            for phase in sorted(recorded)
            if phase not in top
        ),
        f"| model + Trainer set-up | – | {peer['setup_seconds']:.1f} |",
        f"| train + validation | – | {peer['train_and_validation_seconds']:.1f} |",
        f"| (training steps only, step callback) | – | {peer['train_seconds']:.1f} |",
        f"| test | – | {peer['test_seconds']:.1f} |",
        f"| rest (process − imports − the phases above) | {rest:.1f} | {peer_rest:.1f} |",
        f"| **whole process** | **{bench_wall:.1f}** | **{peer_wall:.1f}** |",
        "",
        "The phases of `bench run` are the `*_seconds` timings its leaderboard row records, one after the other; "
        "the ones in parentheses happen within another. The rest is interpreter start-up and whatever the "
        "recorded phases do not cover (with only training and test recorded: data loading, tokenisation, model "
        "building, validation, latency measurement, artefacts and the leaderboard).",
    ]
    return lines


def _shown(command: list[str]) -> str:
    """A command line with this machine's folders shortened to their last part."""
    shown = []
    for arg in command:
        shown.append(Path(arg).name if "/" in arg else arg)
    return " ".join(shown)
