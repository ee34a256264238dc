"""Token ids of many texts, encoded once with the tokenizer's batch path and cached on disk.

A cache entry is one ``.npz`` file (numpy arrays, no pickle) under
``<results>/cache/tokens/``, named by a key over the tokenizer's identity (a digest
of the files it saves), the exact texts and ``max_len``. A changed tokenizer, text
or length gives a new key, so a stale entry is never read; a damaged one is
re-encoded and replaced. Writes go to a temporary file that is renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from encoders.base import TextTokenizer

FORMAT_VERSION = 1
TOKENS_DIR = "tokens"
HF_TOKENIZER_FILE = "tokenizer.json"
_CALL_STATE = ("truncation", "padding")


@dataclass(frozen=True)
class TokenArrays:
    """Ragged token ids: ``ids[offsets[i]:offsets[i + 1]]`` are text ``i``'s ids, special tokens included.

    ``truncated[i]`` says whether text ``i`` was cut to ``max_len``.
    """

    ids: np.ndarray
    offsets: np.ndarray
    truncated: np.ndarray

    @classmethod
    def from_sequences(cls, sequences: Sequence[Sequence[int]], truncated: Sequence[bool] | None = None) -> TokenArrays:
        """Pack lists of ids (``truncated`` defaults to none cut)."""
        lengths = np.fromiter((len(sequence) for sequence in sequences), dtype=np.int64, count=len(sequences))
        offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        ids = np.fromiter(
            (token for sequence in sequences for token in sequence), dtype=np.int32, count=int(offsets[-1])
        )
        flags = np.zeros(len(sequences), dtype=bool) if truncated is None else np.asarray(truncated, dtype=bool)
        return cls(ids, offsets, flags)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        """Token count of every text."""
        return np.diff(self.offsets)

    def sequence(self, index: int) -> np.ndarray:
        """The ids of text ``index``."""
        return self.ids[self.offsets[index] : self.offsets[index + 1]]

    def select(self, start: int, stop: int) -> TokenArrays:
        """Texts ``start`` to ``stop - 1`` (a contiguous range, e.g. one split)."""
        offsets = self.offsets[start : stop + 1]
        ids = self.ids[offsets[0] : offsets[-1]]
        return TokenArrays(ids, offsets - offsets[0], self.truncated[start:stop])

    def digest(self) -> str:
        """SHA-256 of the ids and their boundaries."""
        digest = hashlib.sha256()
        for array in (self.ids, self.offsets):
            digest.update(np.ascontiguousarray(array).data)
        return digest.hexdigest()


def encode_texts(tokenizer: TextTokenizer, texts: Sequence[str], max_len: int) -> TokenArrays:
    """Ids of ``texts`` through ``tokenizer.encode_batch``, with the texts cut to ``max_len`` flagged.

    Only a text whose ids fill ``max_len`` can have been cut: those are encoded once
    more with room for one more token.
    """
    sequences = tokenizer.encode_batch(list(texts), max_len)
    full = [index for index, sequence in enumerate(sequences) if len(sequence) >= max_len]
    truncated = np.zeros(len(sequences), dtype=bool)
    if full:
        longer = tokenizer.encode_batch([texts[index] for index in full], max_len + 1)
        truncated[full] = [len(sequence) > max_len for sequence in longer]
    return TokenArrays.from_sequences(sequences, truncated)


def tokenizer_digest(tokenizer: TextTokenizer) -> str:
    """SHA-256 of the tokenizer's class and of the files :meth:`TextTokenizer.save` writes.

    A Hugging Face ``tokenizer.json`` also records the truncation and padding of the
    last call; that state is left out (every encoding passes its own).
    """
    digest = hashlib.sha256(f"{type(tokenizer).__module__}.{type(tokenizer).__qualname__}".encode())
    with tempfile.TemporaryDirectory(prefix="bench-tokenizer-") as folder:
        root = Path(folder)
        tokenizer.save(root)
        for path in sorted(item for item in root.rglob("*") if item.is_file()):
            name = path.relative_to(root).as_posix().encode("utf-8")
            content = _without_call_state(path.read_bytes()) if path.name == HF_TOKENIZER_FILE else path.read_bytes()
            digest.update(len(name).to_bytes(8, "little") + name + len(content).to_bytes(8, "little"))
            digest.update(content)
    return digest.hexdigest()


def _without_call_state(content: bytes) -> bytes:
    """A ``tokenizer.json`` with its ``truncation`` and ``padding`` settings cleared."""
    try:
        settings = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return content
    if not isinstance(settings, dict):
        return content
    settings.update({key: None for key in _CALL_STATE if key in settings})
    return json.dumps(settings, sort_keys=True, ensure_ascii=False).encode("utf-8")


def texts_digest(texts: Sequence[str]) -> str:
    """SHA-256 of ``texts`` in order (each length-prefixed)."""
    digest = hashlib.sha256()
    for text in texts:
        encoded = text.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.hexdigest()


def token_cache_key(tokenizer: TextTokenizer, texts: Sequence[str], max_len: int) -> str:
    """The cache key of ``texts`` encoded by ``tokenizer`` at ``max_len`` (40 hex characters)."""
    parts = f"v{FORMAT_VERSION}|{tokenizer_digest(tokenizer)}|{texts_digest(texts)}|{max_len}"
    return hashlib.sha256(parts.encode()).hexdigest()[:40]


def token_cache_path(cache_dir: Path, key: str) -> Path:
    """Where the entry ``key`` lives under a results ``cache`` directory."""
    return cache_dir / TOKENS_DIR / f"{key}.npz"


def cached_encode(
    tokenizer: TextTokenizer, texts: Sequence[str], max_len: int, cache_dir: Path | None
) -> tuple[TokenArrays, bool]:
    """:func:`encode_texts`, read from ``cache_dir`` when an entry exists (``None``: no cache).

    Returns the arrays and whether they came from the cache.
    """
    if cache_dir is None:
        return encode_texts(tokenizer, texts, max_len), False
    path = token_cache_path(cache_dir, token_cache_key(tokenizer, texts, max_len))
    cached = read_tokens(path, len(texts))
    if cached is not None:
        return cached, True
    tokens = encode_texts(tokenizer, texts, max_len)
    write_tokens(path, tokens)
    return tokens, False


def read_tokens(path: Path, count: int) -> TokenArrays | None:
    """The entry at ``path`` if it exists, is readable and holds ``count`` texts; else ``None``."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            tokens = TokenArrays(stored["ids"], stored["offsets"], stored["truncated"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None
    consistent = (
        len(tokens) == count
        and len(tokens.truncated) == count
        and tokens.offsets[0] == 0
        and tokens.offsets[-1] == len(tokens.ids)
        and bool(np.all(np.diff(tokens.offsets) >= 0))
    )
    return tokens if consistent else None


def write_tokens(path: Path, tokens: TokenArrays) -> None:
    """Store ``tokens`` at ``path`` atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, ids=tokens.ids, offsets=tokens.offsets, truncated=tokens.truncated)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
