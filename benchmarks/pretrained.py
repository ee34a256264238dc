"""Fine-tuning a pretrained encoder (e5-small): ``bench run`` against the Trainer script, and predict start-up.

The job (issue 23): ``pretrained_sentences`` sentences (5,000) spread evenly over the single-turn set by
label, split 80/10/10 (4,000 train, 500 validation, 500 test), the folder's pretrained weights, a linear
head, max length 64, batch 32, two epochs, lr 5e-5, fp32 on a CPU (bf16 on a GPU). Each side is one whole
process: ``bench run --encoder e5-small --encoder-path DIR`` against ``benchmarks/peers/hf_trainer.py
--pretrained`` (``AutoModelForSequenceClassification`` on the same folder). Both sides must tokenise the job
file to the same number of tokens (within 1 %). Figures: wall time end to end, training samples/s (training
steps only, as each side records them), validation and test seconds.

Then ``bench predict --model`` start-up for the run exported as a PyTorch (safetensors) folder: one
sentence, a whole process, the fastest of three, beside its floor — a fresh interpreter that only imports
torch and transformers' model code (``transformers.modeling_utils``), which building any transformers
encoder needs.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from benchmarks.context import SEED, Context, Settings, bench_command, plural, timed_process
from benchmarks.report import Part, Row, ratio_row
from benchmarks.trainer import PEER, SAME_TOKENS_TOLERANCE, bench_token_count, write_job_data

NAME = "pretrained"
END_TO_END_TARGET = 0.9  # bench run wall ≤ 0.9 × the Trainer script's
SAMPLES_TARGET = 1.1
STARTUP_TARGET = 2.5  # seconds, bench predict --model, one sentence
STARTUP_SENTENCE = "오늘은 정말 기쁜 하루였다."
FLOOR_IMPORTS = "import torch, transformers.modeling_utils"


def estimate_seconds(settings: Settings) -> float:
    """Rough wall time on a quiet 2-core machine (e5-small trains at about 35 samples/s there)."""
    if settings.tiny:
        return 60
    samples = settings.pretrained_sentences * 0.8 * settings.pretrained_epochs
    return 2 * (30 + samples / 35 + settings.pretrained_sentences * 0.2 * settings.pretrained_epochs / 150) + 40


def job_args(context: Context, data: Path, results: Path) -> list[str]:
    """The options ``bench run`` and ``bench grid`` take for the pretrained job."""
    settings = context.settings
    return [
        "--data",
        str(data),
        "--encoder-path",
        str(context.pretrained_folder),
        "--epochs",
        str(settings.pretrained_epochs),
        "--batch-size",
        str(settings.batch_size),
        "--max-len",
        str(settings.max_len),
        "--results",
        str(results),
        "--device",
        settings.device,
        "--no-progress",
    ]


@dataclass(frozen=True)
class SameJob:
    """What the Trainer script must copy from bench's encoder to train on the same job."""

    text_prefix: str  # put before every text by bench's tokenizer (e5-small: ``query: ``)
    fixed_word_embeddings: bool  # bench keeps the word embedding matrix fixed in fine-tuning


@cache
def same_job(encoder: str, folder: Path) -> SameJob:
    """bench's tokenizer prefix and whether its encoder trains the word embeddings (its architecture built once,
    with random weights: nothing is loaded)."""
    from encoders import EncoderRequest, create_encoder

    built = create_encoder(EncoderRequest(name=encoder, path=folder, random_init=True))
    embeddings = built.encoder.model.get_input_embeddings() if hasattr(built.encoder, "model") else None
    fixed = embeddings is not None and not embeddings.weight.requires_grad
    return SameJob(getattr(built.tokenizer, "prefix", ""), fixed)


def peer_command(
    context: Context, data: Path, output: Path, *, lr: float, head: str | None = None, frozen: bool = False
) -> list[str]:
    """The Trainer script on the pretrained folder (``head``: the project's head on AutoModel), with bench's text
    prefix and, when bench keeps them fixed, fixed word embeddings."""
    settings = context.settings
    same_job = _same_job(context)
    command = [
        sys.executable,
        str(PEER),
        "--data",
        str(data),
        "--model-dir",
        str(context.pretrained_folder),
        "--output",
        str(output),
        "--batch-size",
        str(settings.batch_size),
        "--epochs",
        str(settings.pretrained_epochs),
        "--max-len",
        str(settings.max_len),
        "--lr",
        str(lr),
        "--seed",
        str(SEED),
        "--pretrained",
    ]
    command += ["--text-prefix", same_job.text_prefix] if same_job.text_prefix else []
    command += ["--freeze-word-embeddings"] if same_job.fixed_word_embeddings and not frozen else []
    return command + (["--head", head] if head else []) + (["--freeze-encoder"] if frozen else [])


def _same_job(context: Context) -> SameJob:
    return same_job(context.pretrained_encoder, Path(context.pretrained_folder))


def check_same_tokens(context: Context, data: Path, peer_tokens: int) -> int:
    """bench's token count of ``data``; raises when the Trainer script's differs by more than 1 %."""
    ours = bench_token_count(context.settings, data, context.pretrained_encoder, context.pretrained_folder)
    if abs(ours - peer_tokens) > SAME_TOKENS_TOLERANCE * peer_tokens:
        raise RuntimeError(
            f"bench tokenises the job into {ours:,} tokens, the Trainer script into {peer_tokens:,}: "
            "the two sides would not train on the same job"
        )
    return ours


def encoder_sizes(folder: Path) -> dict[str, int]:
    """The encoder's parameters in matrix multiplications (N of the FLOPs formula), all its parameters and shape."""
    import torch
    from transformers import AutoConfig, AutoModel

    from benchmarks.flops import EncoderShape

    config = AutoConfig.from_pretrained(folder)
    shape = EncoderShape.from_config(config)
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        model = AutoModel.from_config(config)
    return {
        "matmul_parameters": shape.matmul_parameters,
        "parameters": sum(parameter.numel() for parameter in model.parameters()),
        "word_embedding_parameters": model.get_input_embeddings().weight.numel(),
        "hidden_size": shape.hidden,
        "intermediate_size": shape.intermediate,
    }


def on_cpu_only(context: Context, rows: list[Row]) -> list[Row]:
    """``rows`` as they are on a CPU; on a GPU without issue 23's targets, which are set for a CPU."""
    from bench.machine.devices import torch_device

    if torch_device(context.settings.device).type == "cpu":
        return rows
    return [
        replace(row, target="– (targets are for a CPU)", reached=None) if row.target != "–" else row for row in rows
    ]


def fastest_process(command: list[str], repeats: int) -> float:
    """The shortest wall time of ``repeats`` runs of ``command``."""
    return min(timed_process(command) for _ in range(repeats))


def measure(context: Context) -> Part:
    """The fine-tuning job on both sides, then bench predict's start-up on the exported run."""
    from bench.leaderboard.store import Leaderboard

    settings, work = context.settings, context.work_dir
    folder, encoder = context.pretrained_folder, context.pretrained_encoder
    data = write_job_data(context, settings.pretrained_sentences)
    sentences = sum(1 for _ in data.open(encoding="utf-8")) - 1

    results = work / "pretrained-bench-run"
    run_args = [
        "run",
        "--encoder",
        encoder,
        "--head",
        "linear",
        "--lr",
        str(settings.job_lr),
        "--seed",
        str(SEED),
        *job_args(context, data, results),
    ]
    bench_wall = context.bench(run_args)
    with Leaderboard.for_results_dir(results) as board:
        (record,) = board.runs(status="finished")
    assert record.metrics is not None
    timings = record.metrics.timings
    context.say(f"bench run: {bench_wall:.1f} s end to end, {timings['train_samples_per_second']:.1f} samples/s")

    peer_json = work / "pretrained-peer.json"
    peer_line = peer_command(context, data, peer_json, lr=settings.job_lr)
    peer_wall = timed_process(peer_line)
    peer = json.loads(peer_json.read_text(encoding="utf-8"))
    context.say(f"Trainer script: {peer_wall:.1f} s end to end, {peer['train_samples_per_second']:.1f} samples/s")
    tokens = check_same_tokens(context, data, int(peer["tokens"]))

    exported = work / "pretrained-model"
    context.bench(["export-model", "--results", str(results), "--run", record.run_id, str(exported)])
    repeats = 1 if settings.quick else 3
    startup = fastest_process([*bench_command(), "predict", "--model", str(exported), STARTUP_SENTENCE], repeats)
    floor = fastest_process([sys.executable, "-c", FLOOR_IMPORTS], repeats)
    context.say(f"bench predict --model, one sentence: {startup:.2f} s (floor {floor:.2f} s)")

    sizes = encoder_sizes(folder)
    n_matmul, n_total = sizes["matmul_parameters"], sizes["parameters"]
    train_examples = int(peer["train_examples"])
    job = f"{encoder}, {train_examples:,} train, {plural(settings.pretrained_epochs, 'epoch')}, whole process"
    share = bench_wall / peer_wall
    part = Part(NAME)
    part.rows += [
        Row(
            f"fine-tuning end to end, wall s ({job})",
            f"{peer_wall:,.1f} (Trainer script)",
            f"{bench_wall:,.1f} (bench run)",
            f"{share:.2f}×",
            f"≤ {END_TO_END_TARGET:g}× Trainer",
            share <= END_TO_END_TARGET,
        ),
        ratio_row(
            "fine-tuning training samples/s (training steps)",
            (peer["train_samples_per_second"], "Trainer"),
            (timings["train_samples_per_second"], "bench run"),
            target=SAMPLES_TARGET,
        ),
        ratio_row(
            "validation s (one pass per epoch)",
            (peer["validation_seconds"], "Trainer"),
            (timings.get("validation_seconds", float("nan")), "bench run"),
            target=None,
            higher_is_better=False,
            digits=2,
        ),
        ratio_row(
            "test s (one pass)",
            (peer["test_seconds"], "Trainer"),
            (timings.get("test_seconds", timings.get("eval_seconds", float("nan"))), "bench run"),
            target=None,
            higher_is_better=False,
            digits=2,
        ),
        Row(
            "`bench predict --model` start-up, PyTorch folder, one sentence, s",
            f"{floor:.2f} (floor: {FLOOR_IMPORTS})",
            f"{startup:.2f}",
            f"{startup / floor:.2f}× floor",
            f"≤ {STARTUP_TARGET:g} s",
            startup <= STARTUP_TARGET,
        ),
    ]
    part.rows = on_cpu_only(context, part.rows)
    part.figures = {
        "bench_run_seconds": bench_wall,
        "trainer_seconds": peer_wall,
        "bench_train_samples_per_second": timings["train_samples_per_second"],
        "trainer_train_samples_per_second": peer["train_samples_per_second"],
        "bench_tokens": tokens,
        "trainer_tokens": peer["tokens"],
        "tokens_per_sentence": tokens / sentences,
        **sizes,
        # what AdamW updates each step on both sides (bench keeps e5-small's word embeddings fixed; so does the peer)
        "trained_parameters": n_total
        - (sizes["word_embedding_parameters"] if _same_job(context).fixed_word_embeddings else 0),
        "startup_seconds": startup,
        "startup_floor_seconds": floor,
    }
    part.details = [
        (
            f"Job: {sentences:,} sentences of {settings.data.name}, evenly spread by label, split 80/10/10 "
            f"({train_examples:,} / {int(peer['validation_examples'])} / {int(peer['test_examples'])} on the Trainer "
            f"side); {encoder} from `{folder.name}` with its pretrained weights ({n_total / 1e6:.1f} M parameters, "
            f"{n_matmul / 1e6:.1f} M of them in matrix multiplications), linear head, batch {settings.batch_size}, "
            f"{plural(settings.pretrained_epochs, 'epoch')}, max length {settings.max_len}, lr {settings.job_lr:g}, "
            "10 % warmup then linear decay, weight decay 0.01, clipping 1.0, seed 1."
        ),
        "",
        f"- bench run: `{_shown(bench_command() + run_args)}`",
        (
            f"- Trainer script: `{_shown(peer_line)}` (`AutoModelForSequenceClassification.from_pretrained`, "
            "`AutoTokenizer`, `DataCollatorWithPadding`, `group_by_length`, eval each epoch, fp32 on a CPU, "
            "bf16 on a GPU)"
        ),
        (
            f'- predict: `bench predict --model <exported run> "{STARTUP_SENTENCE}"`, fastest of {repeats}; floor: '
            f'`python -c "{FLOOR_IMPORTS}"` — the predictor imports no Lightning, optuna, scikit-learn or pandas '
            "(tests/test_cli_startup.py), so what is left above the floor is bench's own modules, reading the "
            "weights and tokenizer, and one forward pass."
        ),
        "",
        (
            f"Same work: the job file is {tokens:,} tokens as bench tokenises it and {int(peer['tokens']):,} as the "
            f"Trainer script does ({peer['unknown_share']:.1%} unknown tokens), {tokens / sentences:.1f} per sentence; "
            f"test macro-F1 {record.metrics.macro_f1:.4f} (bench run) and {peer['test_macro_f1']:.4f} (Trainer); "
            f"the splits differ (each side's own stratified 80/10/10), the sizes do not. torch threads: "
            f"{record.environment.get('threads', '?')} (bench run, `--threads`, default every core this process may "
            f"use) and {peer.get('threads', '?')} (Trainer script, torch's default, which follows OMP_NUM_THREADS)."
        ),
        "",
        "| phase (s) | bench run | Trainer script |",
        "|---|---|---|",
        f"| imports | – | {peer['imports_seconds']:.1f} |",
        *(
            f"| {key.removesuffix('_seconds').replace('_', ' ')} | {value:.1f} | – |"
            for key, value in timings.items()
            if key.endswith("_seconds")
        ),
        *(
            f"| {key.removesuffix('_seconds').replace('_', ' ')} | – | {peer[key]:.1f} |"
            for key in (
                "read_seconds",
                "split_seconds",
                "tokenize_seconds",
                "setup_seconds",
                "train_and_validation_seconds",
                "train_seconds",
                "validation_seconds",
                "test_seconds",
            )
        ),
        f"| **whole process** | **{bench_wall:.1f}** | **{peer_wall:.1f}** |",
    ]
    return part


def _shown(command: list[str]) -> str:
    """A command line with this machine's folders shortened to their last part."""
    return " ".join(Path(arg).name if "/" in arg else arg for arg in command)
