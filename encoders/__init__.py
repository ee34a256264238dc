"""Encoders: one file per family, each registered with :func:`register_encoder`.

Every module in this folder registers itself on the first registry look-up, so a new family file needs no
other edit; encoders from outside the package come as plugins (``--plugin``). The torch-side names
(:class:`TextEncoder`, :class:`EncoderOutput`, ...) are imported when first asked for, so the sentencepiece
tokenizers (:mod:`encoders.tokenization`, :mod:`encoders.spm`) work without torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from encoders.registry import (
    EncoderEntry,
    LearningRates,
    check_encoder_name,
    create_encoder,
    create_tokenizer,
    encoder_entry,
    find_encoder,
    list_encoders,
    load_tokenizer,
    pattern_argument,
    register_encoder,
    register_tokenizer_loader,
    run_defaults,
    write_tokenizer_marker,
)
from encoders.tokenization import Encoding, TextTokenizer

if TYPE_CHECKING:
    from encoders.base import BuiltEncoder, EncoderOutput, EncoderRequest, TextEncoder

_TORCH_SIDE = {"BuiltEncoder", "EncoderOutput", "EncoderRequest", "TextEncoder"}


def __getattr__(name: str) -> Any:
    """The torch-side classes, imported on first access."""
    if name in _TORCH_SIDE:
        return getattr(import_module("encoders.base"), name)
    raise AttributeError(f"module 'encoders' has no attribute {name!r}")


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
    "encoder_entry",
    "find_encoder",
    "list_encoders",
    "load_tokenizer",
    "pattern_argument",
    "register_encoder",
    "register_tokenizer_loader",
    "run_defaults",
    "write_tokenizer_marker",
]
