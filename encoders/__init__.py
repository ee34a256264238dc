"""Encoders: one file per family, each registered with :func:`register_encoder`.

Every module in this folder is imported, so a new family file registers itself
with no other edit; encoders from outside the package come as plugins (``--plugin``).
"""

from bench.plugins import import_package_modules
from encoders.base import BuiltEncoder, EncoderOutput, EncoderRequest, Encoding, TextEncoder, TextTokenizer
from encoders.registry import (
    EncoderEntry,
    LearningRates,
    check_encoder_name,
    create_encoder,
    create_tokenizer,
    default_learning_rate,
    encoder_entry,
    find_encoder,
    list_encoders,
    load_tokenizer,
    pattern_argument,
    register_encoder,
    register_tokenizer_loader,
    write_tokenizer_marker,
)

import_package_modules(__name__, __path__)

__all__ = [
    "BuiltEncoder",
    "EncoderEntry",
    "EncoderOutput",
    "EncoderRequest",
    "Encoding",
    "LearningRates",
    "TextEncoder",
    "TextTokenizer",
    "check_encoder_name",
    "create_encoder",
    "create_tokenizer",
    "default_learning_rate",
    "encoder_entry",
    "find_encoder",
    "list_encoders",
    "load_tokenizer",
    "pattern_argument",
    "register_encoder",
    "register_tokenizer_loader",
    "write_tokenizer_marker",
]
