"""``scratch``: a small randomly initialised BERT with a sentencepiece tokenizer trained on the run's data.

Needs no download, so it is the offline default. The trained tokenizer is cached
under ``cache_dir/scratch-tokenizer/<sha256>`` so later runs on the same texts reuse it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import replace

import sentencepiece
from transformers import AutoConfig

from bench.errors import UsageError
from encoders.base import BuiltEncoder, EncoderRequest, TextTokenizer
from encoders.hf import (
    HFEncoder,
    apply_config_overrides,
    build_hf_encoder,
    build_model,
    count_parameters,
    model_folder,
    rebuild_hf_encoder,
)
from encoders.registry import TOKENIZER_MARKER, LearningRates, load_tokenizer, register_encoder
from encoders.spm import SentencePieceTokenizer

ARCHITECTURE: dict[str, object] = {
    "hidden_size": 256,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "intermediate_size": 1024,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
}
VOCAB_SIZE = 8000
# Special pieces at BERT-like ids: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4. The vocabulary
# limit is soft so that a few hundred sentences train a smaller vocabulary instead of failing.
# One thread: the trained model depends on the thread count, and must not depend on the machine.
TRAINER_SETTINGS: dict[str, object] = {
    "model_type": "unigram",
    "num_threads": 1,
    "vocab_size": VOCAB_SIZE,
    "hard_vocab_limit": False,
    "character_coverage": 0.9995,
    "max_sentence_length": 1 << 16,
    "pad_id": 0,
    "unk_id": 1,
    "bos_id": 2,
    "eos_id": 3,
    "pad_piece": "[PAD]",
    "unk_piece": "[UNK]",
    "bos_piece": "[CLS]",
    "eos_piece": "[SEP]",
    "control_symbols": "[MASK]",
}
MODEL_FILE = "spiece.model"


def texts_digest(texts: Sequence[str]) -> str:
    """SHA-256 of the trainer settings and ``texts`` (the tokenizer cache key)."""
    digest = hashlib.sha256(json.dumps(TRAINER_SETTINGS, sort_keys=True).encode("utf-8"))
    for text in texts:
        encoded = text.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.hexdigest()


def train_scratch_tokenizer(texts: Sequence[str]) -> SentencePieceTokenizer:
    """Train a sentencepiece Unigram model on ``texts``, silently."""
    sentences = [cleaned for cleaned in (" ".join(text.split()) for text in texts) if cleaned]
    if not sentences:
        raise UsageError("encoder 'scratch' cannot train its tokenizer: the training texts are all empty")
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        minloglevel=2,
        **TRAINER_SETTINGS,
    )
    return SentencePieceTokenizer(model.getvalue(), model_file=MODEL_FILE, vocab=None, preprocessing="whitespace")


def create_scratch_tokenizer(request: EncoderRequest) -> TextTokenizer:
    """The tokenizer saved in ``--encoder-path``, else one trained on ``request.train_texts`` (cached)."""
    folder = model_folder(request)
    if folder is not None:
        return load_tokenizer(folder)
    if not request.train_texts:
        raise UsageError(
            "encoder 'scratch' trains its tokenizer on each run's training split, so it has none on its own; "
            "use it inside a run on a dataset, or pass --encoder-path DIR of a saved scratch model"
        )
    cached = request.cache_dir / "scratch-tokenizer" / texts_digest(request.train_texts)
    if (cached / TOKENIZER_MARKER).is_file():
        return load_tokenizer(cached)
    tokenizer = train_scratch_tokenizer(request.train_texts)
    staging = cached.with_name(f"{cached.name}.tmp-{os.getpid()}")
    tokenizer.save(staging)
    try:
        staging.rename(cached)
    except OSError:  # another run stored the same tokenizer first
        shutil.rmtree(staging, ignore_errors=True)
    return tokenizer


@register_encoder(
    "scratch",
    hub_id=None,
    description="Small BERT (4 layers, 256 hidden) with random weights; sentencepiece trained on the training split",
    parameter_count=lambda: count_parameters("bert", {**ARCHITECTURE, "vocab_size": VOCAB_SIZE, "pad_token_id": 0}),
    tokenizer=create_scratch_tokenizer,
    rebuild=rebuild_hf_encoder,
    pretrained=False,
    learning_rates=LearningRates(scratch=5e-4),
)
def create_scratch(request: EncoderRequest) -> BuiltEncoder:
    """A random small BERT sized to its freshly trained tokenizer (or a saved one from ``--encoder-path``)."""
    tokenizer = create_scratch_tokenizer(request)
    folder = model_folder(request)
    if folder is not None:
        return build_hf_encoder(request, str(folder), "bert", tokenizer)
    config = AutoConfig.for_model(
        "bert", **ARCHITECTURE, vocab_size=tokenizer.vocab_size, pad_token_id=tokenizer.pad_id
    )
    apply_config_overrides(config, request.config_overrides, request.name)
    model = build_model(replace(request, random_init=True), "scratch", config)
    return BuiltEncoder(
        HFEncoder(model), tokenizer, f"scratch (random init, tokenizer of {tokenizer.vocab_size} pieces)"
    )
