"""Tokenizer sentences/s, KoBERT and KoELECTRA: native batch encoding, one by one, and token-cache reads."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.context import MODEL_FOLDERS, Context, Settings
from benchmarks.report import Part, Row

NAME = "tokenizers"
TOKENIZERS = (("KoBERT", "kobert"), ("KoELECTRA", "koelectra-small"))
KOBERT_TARGET = 200_000


@dataclass
class TokenizerMeasure:
    """Sentences per second of one tokenizer."""

    name: str
    batch: float
    one_by_one: float
    cached: float


def best_seconds(action: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` timed calls."""
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return min(timings)


def estimate_seconds(settings: Settings) -> float:
    """Rough wall time on a quiet 2-core machine."""
    return 15 if settings.quick else 45


def measure(context: Context) -> Part:
    """Native batch encoding, one-by-one encoding and token-cache reads of every sentence, in sentences/s."""
    from bench.training.tokencache import cached_encode
    from encoders import EncoderRequest, create_tokenizer

    settings = context.settings
    data = context.full_dataset
    texts = [example.text for split in (data.train, data.validation, data.test) for example in split]
    part = Part(NAME)
    for label, name in TOKENIZERS:
        tokenizer = create_tokenizer(EncoderRequest(name, path=settings.models / MODEL_FOLDERS[name]))
        tokenizer.encode_batch(texts[:1000], settings.max_len)
        batch = best_seconds(
            lambda tokenizer=tokenizer: tokenizer.encode_batch(texts, settings.max_len), settings.repeats
        )
        subset = texts[: settings.one_by_one] if settings.one_by_one else texts
        single = best_seconds(
            lambda tokenizer=tokenizer, subset=subset: [
                tokenizer.encode(text, max_len=settings.max_len) for text in subset
            ],
            max(1, settings.repeats // 2),
        )
        cache = context.work_dir / "tokenizer-cache"
        cached_encode(tokenizer, texts, settings.max_len, cache)
        hit = best_seconds(
            lambda tokenizer=tokenizer, cache=cache: cached_encode(tokenizer, texts, settings.max_len, cache),
            settings.repeats,
        )
        result = TokenizerMeasure(label, len(texts) / batch, len(subset) / single, len(texts) / hit)
        context.say(
            f"tokenizer {label}: batch {result.batch:,.0f}/s · one by one {result.one_by_one:,.0f}/s "
            f"· token-cache read {result.cached:,.0f}/s"
        )
        kobert = name == "kobert"
        part.rows.append(
            Row(
                f"{label} tokenizer sentences/s ({len(texts):,} sentences)",
                f"{result.one_by_one:,.0f} (one by one)",
                f"{result.batch:,.0f} (batch); {result.cached:,.0f} (token cache)",
                f"{result.batch / result.one_by_one:.2f}×",
                f"≥ {KOBERT_TARGET:,}/s" if kobert else "–",
                result.batch >= KOBERT_TARGET if kobert else None,
            )
        )
        part.figures[f"{name}_batch_per_second"] = result.batch
    return part
