"""Five-head frozen-encoder comparison through ``run_experiment``: with the feature cache and without.

The modes alternate head by head (a changing load slows both alike); the cache starts cold, so the
first cached run includes the one encoder pass. The test macro-F1 of both modes agrees up to
floating-point noise (features are rounded to float16 in both, but computed in different batches).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from benchmarks.context import SEED, Context, Settings
from benchmarks.report import Part, ratio_row

NAME = "heads"
TARGET = 4.0


@dataclass
class HeadRun:
    """One head's run in one mode."""

    head: str
    seconds: float
    macro_f1: float | None


def estimate_seconds(settings: Settings) -> float:
    """Rough wall time on a quiet 2-core machine."""
    return 40 + 5 * (12 + 0.02 * settings.heads_train_limit * settings.heads_epochs)


def measure(context: Context) -> Part:
    """Every registered head on the frozen encoder, with the feature cache and without."""
    from bench.config import RunConfig
    from bench.data import limit_train
    from bench.data.types import DataOptions
    from bench.leaderboard.store import Leaderboard
    from bench.training.runner import run_experiment
    from heads import list_heads

    settings = context.settings
    options = DataOptions(source=str(settings.data))
    limited = limit_train(context.dataset, settings.heads_train_limit, options.split_seed)
    base = RunConfig(
        encoder=settings.encoder,
        encoder_path=str(settings.model_dir),
        random_init=True,
        freeze_encoder=True,
        data=options,
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
            results = context.work_dir / ("heads-cached" if feature_cache else "heads-live")
            config = base.with_updates(head=head, feature_cache=feature_cache, results_dir=str(results))
            started = time.perf_counter()
            record = run_experiment(config, Leaderboard.for_results_dir(results), dataset=limited)
            if record.status != "finished":
                raise RuntimeError(f"head {head} ({mode}) ended {record.status}: {record.error}")
            run = HeadRun(head, time.perf_counter() - started, record.macro_f1)
            context.say(f"head {head} ({mode}): {run.seconds:.1f} s, macro-F1 {_f1(run.macro_f1)}")
            runs[mode].append(run)
    cached, live = runs["feature cache"], runs["no feature cache"]
    cached_seconds, live_seconds = sum(run.seconds for run in cached), sum(run.seconds for run in live)
    part = Part(NAME)
    part.rows.append(
        ratio_row(
            f"five-head frozen-encoder comparison in one process, wall s ({len(limited.train):,} train, "
            f"{settings.heads_epochs} epoch{'s' if settings.heads_epochs > 1 else ''})",
            (live_seconds, "no feature cache"),
            (cached_seconds, "feature cache"),
            target=TARGET,
            higher_is_better=False,
        )
    )
    part.figures = {"cached_seconds": cached_seconds, "live_seconds": live_seconds}
    part.details = [
        "Wall s per `run_experiment` (the first cached run includes the encoder pass); test macro-F1 of both "
        "modes, equal up to floating-point noise:",
        "",
        "| head | feature cache s | no feature cache s | macro-F1 cache / no cache |",
        "|---|---|---|---|",
        *(
            f"| {c.head} | {c.seconds:.1f} | {n.seconds:.1f} | {_f1(c.macro_f1)} / {_f1(n.macro_f1)} |"
            for c, n in zip(cached, live, strict=True)
        ),
    ]
    return part


def _f1(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"
