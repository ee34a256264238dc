"""Five heads on the frozen pretrained encoder: one ``bench grid`` against five Trainer runs.

The pretrained job's file and sizes (:mod:`benchmarks.pretrained`): ``bench grid --heads all
--freeze-encoder`` encodes every sentence once (the feature cache) and trains the five heads on the cached
features; the Trainer has one model per run, so comparing five heads means five runs of
``benchmarks/peers/hf_trainer.py --pretrained --freeze-encoder --head NAME`` — the project's head module on
``AutoModel`` with the encoder's weights frozen, the same epochs, so the encoder runs forward over every
training batch of every epoch and every validation and test pass. Each side is whole processes.
"""

from __future__ import annotations

import json

from benchmarks.context import SEED, Context, Settings, plural, timed_process
from benchmarks.pretrained import _shown, check_same_tokens, encoder_sizes, job_args, on_cpu_only, peer_command
from benchmarks.report import Part, ratio_row
from benchmarks.trainer import FROZEN_LR, write_job_data

NAME = "frozen-heads"
TARGET = 5.0  # bench grid ≥ 5× faster than the five Trainer runs


def estimate_seconds(settings: Settings) -> float:
    """Rough wall time on a quiet 2-core machine (the frozen encoder runs forward at about 150 sentences/s)."""
    if settings.tiny:
        return 60
    passes = settings.pretrained_sentences * (0.9 * settings.pretrained_epochs + 0.1)
    return 60 + settings.pretrained_sentences / 150 + 5 * (25 + passes / 150)


def measure(context: Context) -> Part:
    """The grid, then the five Trainer runs."""
    from bench.leaderboard.store import Leaderboard
    from heads import list_heads

    settings, work = context.settings, context.work_dir
    data = write_job_data(context, settings.pretrained_sentences)
    heads = list(list_heads())
    results = work / "frozen-heads-grid"
    grid_args = [
        "grid",
        "--encoders",
        context.pretrained_encoder,
        "--heads",
        "all",
        "--seeds",
        str(SEED),
        "--freeze-encoder",
        "--lr",
        str(FROZEN_LR),
        *job_args(context, data, results),
    ]
    grid_wall = context.bench(grid_args)
    with Leaderboard.for_results_dir(results) as board:
        finished = board.runs(status="finished")
    if sorted(record.head for record in finished) != sorted(heads):
        raise RuntimeError(f"bench grid finished {len(finished)} runs, expected one per head ({', '.join(heads)})")
    context.say(f"bench grid, {len(heads)} heads, frozen encoder: {grid_wall:.1f} s")

    walls, peers = {}, {}
    for head in heads:
        output = work / f"frozen-heads-{head}.json"
        walls[head] = timed_process(peer_command(context, data, output, lr=FROZEN_LR, head=head, frozen=True))
        peers[head] = json.loads(output.read_text(encoding="utf-8"))
        context.say(f"Trainer run, head {head}, frozen encoder: {walls[head]:.1f} s")
    tokens = check_same_tokens(context, data, int(peers[heads[0]]["tokens"]))
    five = sum(walls.values())

    peer = peers[heads[0]]
    sentences = int(peer["train_examples"]) + int(peer["validation_examples"]) + int(peer["test_examples"])
    trainer_passes = (
        (int(peer["train_examples"]) + int(peer["validation_examples"])) * settings.pretrained_epochs
        + int(peer["test_examples"])
    ) * len(heads)
    part = Part(NAME)
    part.rows.append(
        ratio_row(
            f"{len(heads)} heads, frozen {context.pretrained_encoder}, "
            f"{plural(settings.pretrained_epochs, 'epoch')}, wall s "
            "(whole processes)",
            (five, f"{len(heads)} Trainer runs"),
            (grid_wall, "bench grid, feature cache"),
            target=TARGET,
            higher_is_better=False,
        )
    )
    part.rows = on_cpu_only(context, part.rows)
    part.figures = {
        "bench_grid_seconds": grid_wall,
        "five_trainer_seconds": five,
        "tokens_per_sentence": tokens / sentences,
        "bench_encoded_sentences": sentences,
        "trainer_encoded_sentences": trainer_passes,
        "matmul_parameters": encoder_sizes(context.pretrained_folder)["matmul_parameters"],
    }
    scores = {record.head: record.macro_f1 for record in finished}
    part.details = [
        f"- bench grid: `{_shown(['bench', *grid_args])}` — encodes the {sentences:,} sentences once",
        (
            "- Trainer: `"
            f"{_shown(peer_command(context, data, work / 'figures.json', lr=FROZEN_LR, head='HEAD', frozen=True))}`"
            f" for each head — the frozen encoder runs forward over {trainer_passes:,} sentences in the five runs"
        ),
        "",
        "| head | Trainer run, s | test macro-F1, Trainer | test macro-F1, bench grid |",
        "|---|---|---|---|",
        *(
            f"| {head} | {walls[head]:.1f} | {peers[head]['test_macro_f1']:.4f} | "
            f"{scores[head] if scores.get(head) is not None else float('nan'):.4f} |"
            for head in heads
        ),
        f"| **all** | **{five:.1f}** | | bench grid **{grid_wall:.1f}** |",
    ]
    return part
