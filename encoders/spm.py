"""A BERT-layout tokenizer on a sentencepiece model (KoBERT and ``scratch``).

Two id spaces are supported: the sentencepiece piece ids themselves (``spiece.model``
of ``skt/kobert-base-v1``, and ``scratch``'s trained models), or the line index of
each piece in a ``vocab.txt`` (``monologg/kobert``). Batches go through
sentencepiece's native multi-threaded encoder.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import sentencepiece

from bench.errors import EncoderUnavailableError
from encoders.registry import register_tokenizer_loader, write_tokenizer_marker
from encoders.tokenization import Encoding, TextTokenizer

SENTENCEPIECE_KIND = "sentencepiece"
Preprocessing = Literal["kobert", "whitespace"]
SPECIAL_PIECES = ("[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]")
_CPU_COUNT = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# Anything but ASCII and Hangul (syllables, compatibility jamo) may carry an accent.
_MAYBE_ACCENTED = re.compile(r"[^\x00-\x7f\u3131-\u318e\uac00-\ud7a3]")


@lru_cache(maxsize=8192)
def _without_accent(character: str) -> str:
    """``character`` minus combining marks after NFKD (``é`` → ``e``); unchanged when it has none."""
    decomposed = unicodedata.normalize("NFKD", character)
    stripped = "".join(part for part in decomposed if not unicodedata.combining(part))
    return character if stripped == decomposed else stripped


def _strip_accents(text: str) -> str:
    return _MAYBE_ACCENTED.sub(lambda match: _without_accent(match.group()), text)


def kobert_preprocess(text: str) -> str:
    """KoBERT's (XLNet-style) text cleaning: collapse whitespace, two backticks or apostrophes to ``"``, strip accents.

    Accents are stripped only from characters that decompose into a base and
    combining marks (``é`` → ``e``); Hangul is left composed, never split into jamo.
    sentencepiece's own NFKC normalisation runs afterwards.
    """
    return _strip_accents(" ".join(text.split()).replace("``", '"').replace("''", '"'))


def _clean_batch(texts: Sequence[str], preprocessing: Preprocessing) -> list[str]:
    """:func:`kobert_preprocess` (or whitespace collapsing) of many texts, done on one joined string."""
    if not texts:
        return []
    joined = "\n".join([" ".join(text.split()) for text in texts])  # no text keeps a newline
    if preprocessing == "kobert":
        joined = _strip_accents(joined.replace("``", '"').replace("''", '"'))
    return joined.split("\n")


def _truncate_pair(first: list[int], second: list[int], budget: int) -> None:
    """Drop tokens from the end of the longer sequence until both fit ``budget``."""
    while len(first) + len(second) > budget:
        (first if len(first) > len(second) else second).pop()


class SentencePieceTokenizer(TextTokenizer):
    """``[CLS] A [SEP]`` (pairs ``[CLS] A [SEP] B [SEP]``) on a sentencepiece model.

    ``vocab`` maps pieces to ids by line index (``monologg/kobert``); without it
    the piece ids are the ids. ``preprocessing`` is ``"kobert"`` (KoBERT's text
    cleaning) or ``"whitespace"`` (whitespace collapsed only).
    """

    def __init__(
        self, model_proto: bytes, *, model_file: str, vocab: list[str] | None, preprocessing: Preprocessing
    ) -> None:
        self._model_proto = model_proto
        self._model_file = model_file
        self._vocab = vocab
        self.preprocessing: Preprocessing = preprocessing
        self._processor = sentencepiece.SentencePieceProcessor()
        try:
            self._processor.LoadFromSerializedProto(model_proto)
        except RuntimeError:
            raise EncoderUnavailableError(f"{model_file} is not a sentencepiece model (it cannot be parsed)") from None
        piece_count = self._processor.get_piece_size()
        self.pieces: list[str] = (
            vocab if vocab is not None else [self._processor.id_to_piece(i) for i in range(piece_count)]
        )
        index = {piece: position for position, piece in enumerate(self.pieces)}
        missing = [piece for piece in SPECIAL_PIECES if piece not in index]
        if missing:
            raise EncoderUnavailableError(f"tokenizer {model_file}: its vocabulary lacks {', '.join(missing)}")
        self.unk_id, self.pad_id, self.cls_id, self.sep_id, self.mask_id = (index[piece] for piece in SPECIAL_PIECES)
        self.vocab_size = len(self.pieces)
        # Piece id -> vocab id (unknown pieces -> [UNK]); None where they coincide.
        self._to_vocab: list[int] | None = (
            None
            if vocab is None
            else [index.get(self._processor.id_to_piece(i), self.unk_id) for i in range(piece_count)]
        )

    @classmethod
    def from_files(
        cls, model_file: Path, vocab_file: Path | None, preprocessing: Preprocessing
    ) -> SentencePieceTokenizer:
        """Read a sentencepiece model (and optionally its ``vocab.txt``)."""
        vocab = None
        if vocab_file is not None:
            lines = vocab_file.read_text(encoding="utf-8").split("\n")
            vocab = [line.removesuffix("\r") for line in (lines[:-1] if lines[-1] == "" else lines)]
        return cls(model_file.read_bytes(), model_file=model_file.name, vocab=vocab, preprocessing=preprocessing)

    def _clean(self, text: str) -> str:
        return kobert_preprocess(text) if self.preprocessing == "kobert" else " ".join(text.split())

    def _ids(self, text: str) -> list[int]:
        ids = self._processor.encode(self._clean(text))
        return ids if self._to_vocab is None else [self._to_vocab[i] for i in ids]

    def tokenize(self, text: str) -> list[str]:
        """Pieces of ``text`` without special tokens (pieces outside the vocabulary read ``[UNK]``)."""
        return [self.pieces[i] for i in self._ids(text)]

    def encode(self, text: str, pair: str | None = None, max_len: int | None = None) -> Encoding:
        """Ids with special tokens and token types; pairs are truncated longest-first."""
        first = self._ids(text)
        second = self._ids(pair) if pair is not None else []
        specials = 2 if pair is None else 3
        if max_len is not None:
            if max_len < specials:
                raise ValueError(f"max_len must be at least {specials}, got {max_len}")
            _truncate_pair(first, second, max_len - specials)
        ids = [self.cls_id, *first, self.sep_id]
        token_type_ids = [0] * len(ids)
        if pair is not None:
            ids += [*second, self.sep_id]
            token_type_ids += [1] * (len(second) + 1)
        return Encoding(ids, token_type_ids, [self.pieces[i] for i in ids])

    def encode_batch(self, texts: Sequence[str], max_len: int) -> list[list[int]]:
        """Ids of many texts, encoded by sentencepiece on all cores."""
        if max_len < 2:
            raise ValueError(f"max_len must be at least 2, got {max_len}")
        batch = self._processor.encode(_clean_batch(texts, self.preprocessing), num_threads=_CPU_COUNT)
        body, cls_id, sep_id = max_len - 2, self.cls_id, self.sep_id
        if self._to_vocab is None:
            return [[cls_id, *ids[:body], sep_id] for ids in batch]
        to_vocab = self._to_vocab
        return [[cls_id, *[to_vocab[i] for i in ids[:body]], sep_id] for ids in batch]

    def save(self, directory: Path) -> None:
        """Write the sentencepiece model (and ``vocab.txt`` when ids come from it) plus the bench marker."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / self._model_file).write_bytes(self._model_proto)
        vocab_file = None
        if self._vocab is not None:
            vocab_file = "vocab.txt"
            (directory / vocab_file).write_text("".join(f"{piece}\n" for piece in self._vocab), encoding="utf-8")
        settings = {"model_file": self._model_file, "vocab_file": vocab_file, "preprocessing": self.preprocessing}
        write_tokenizer_marker(directory, SENTENCEPIECE_KIND, settings)


def _load_saved_sentencepiece(directory: Path, marker: dict[str, Any]) -> SentencePieceTokenizer:
    model_file = directory / str(marker.get("model_file"))
    vocab_name = marker.get("vocab_file")
    vocab_file = directory / str(vocab_name) if vocab_name else None
    preprocessing = marker.get("preprocessing")
    if preprocessing not in ("kobert", "whitespace"):
        raise EncoderUnavailableError(f"{directory}: unknown sentencepiece preprocessing {preprocessing!r}")
    for path in (model_file, vocab_file):
        if path is not None and not path.is_file():
            raise EncoderUnavailableError(f"{directory}: the saved tokenizer lacks {path.name}")
    return SentencePieceTokenizer.from_files(model_file, vocab_file, preprocessing)


register_tokenizer_loader(SENTENCEPIECE_KIND, _load_saved_sentencepiece)
