"""The tokenizer side of an encoder family, importable without torch (ONNX Runtime prediction uses it alone)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Encoding:
    """Ids of one text (or text pair) with special tokens, not padded."""

    ids: list[int]
    token_type_ids: list[int]
    pieces: list[str]


class TextTokenizer(ABC):
    """A tokenizer with BERT-style special tokens and right padding."""

    pad_id: int
    vocab_size: int

    @abstractmethod
    def tokenize(self, text: str) -> list[str]:
        """Pieces of ``text`` without special tokens."""

    @abstractmethod
    def encode(self, text: str, pair: str | None = None, max_len: int | None = None) -> Encoding:
        """Ids of ``[CLS] text [SEP]`` (or ``[CLS] text [SEP] pair [SEP]``), truncated to ``max_len``."""

    @abstractmethod
    def encode_batch(self, texts: Sequence[str], max_len: int) -> list[list[int]]:
        """Ids of many single texts at once with the tokenizer's native batch path."""

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write the files :func:`encoders.load_tokenizer` needs to rebuild this tokenizer."""
