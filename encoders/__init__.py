"""Encoders: one file per family, each registered with :func:`register_encoder`."""

from encoders.base import BuiltEncoder, EncoderOutput, EncoderRequest, Encoding, TextEncoder, TextTokenizer
from encoders.registry import (
    check_encoder_name,
    create_encoder,
    create_tokenizer,
    default_learning_rate,
    list_encoders,
    load_tokenizer,
    register_encoder,
)

# Importing a family module registers its encoders.
from encoders import hf, kobert, koelectra, scratch  # noqa: E402,F401  isort: skip

__all__ = [
    "BuiltEncoder",
    "EncoderOutput",
    "EncoderRequest",
    "Encoding",
    "TextEncoder",
    "TextTokenizer",
    "check_encoder_name",
    "create_encoder",
    "create_tokenizer",
    "default_learning_rate",
    "list_encoders",
    "load_tokenizer",
    "register_encoder",
]
