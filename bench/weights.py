"""Weights identity: which weights a run starts from, independent of where they lie on disk.

* ``random`` — random initialisation (the ``scratch`` encoder, ``--random-init``); with
  ``--encoder-path`` the digest of the folder's files without its weight files is added
  (``random:<digest>``), because the architecture and tokenizer still come from there.
* ``hub:<model id>`` — weights fetched from the Hugging Face hub by model id.
* ``folder:<digest>`` — a local folder (``--encoder-path``): SHA-256 over the name and
  content of every file in it (config, weights, tokenizer; hidden files and ``*.md`` skipped).
  Moving or copying the folder keeps the digest; replacing a file changes it.
* ``none`` — the reference rows of the registry (TF-IDF, majority), and names not registered here.

A folder digest reads every byte once; it is cached in this process and on disk under
``<results>/cache/weights/``, keyed by the folder's path and each file's size, inode,
mtime and ctime (which every write changes, even one that restores the mtime), so later
runs cost one ``stat`` per file.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

from bench.errors import UsageError

RANDOM = "random"
NO_WEIGHTS = "none"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx")
_SKIPPED_SUFFIXES = (".md",)
_CHUNK = 1 << 20


def weights_identity(encoder: str, encoder_path: str | None, random_init: bool, cache_dir: Path | None = None) -> str:
    """The weights identity of an encoder request (see the module docstring)."""
    from encoders.registry import find_encoder, pattern_argument

    entry = find_encoder(encoder)
    if entry is None or entry.reference:
        return NO_WEIGHTS
    if random_init or not entry.pretrained:
        if encoder_path is None:
            return RANDOM
        return f"{RANDOM}:{folder_digest(Path(encoder_path), cache_dir, weights=False)}"
    if encoder_path is not None:
        return f"folder:{folder_digest(Path(encoder_path), cache_dir, weights=True)}"
    return f"hub:{pattern_argument(encoder) or entry.hub_id or encoder}"


def folder_digest(folder: Path, cache_dir: Path | None = None, *, weights: bool = True) -> str:
    """SHA-256 (16 hex characters) of the files in ``folder`` (weight files only if ``weights``)."""
    if not folder.is_dir():
        raise UsageError(f"--encoder-path {folder} is not a folder")
    files = sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
        and path.suffix not in _SKIPPED_SUFFIXES
        and (weights or path.suffix not in WEIGHT_SUFFIXES)
    )
    if not files:
        raise UsageError(f"--encoder-path {folder} holds no model files")
    signature = tuple(
        (path.relative_to(folder).as_posix(), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
        for path in files
        for stat in (path.stat(),)
    )
    return _cached_digest(str(folder.resolve()), signature, str(cache_dir) if cache_dir else None)


@lru_cache(maxsize=64)
def _cached_digest(folder: str, signature: tuple[tuple[str, int, int, int, int], ...], cache_dir: str | None) -> str:
    key = hashlib.sha256(json.dumps([folder, signature]).encode("utf-8")).hexdigest()
    cached = Path(cache_dir, "weights", f"{key}.txt") if cache_dir else None
    if cached is not None and cached.is_file():
        text = cached.read_text(encoding="ascii").strip()
        if len(text) == 16:
            return text
    digest = hashlib.sha256()
    for name, size, *_changed in signature:
        digest.update(f"{name}\0{size}\0".encode())
        with open(Path(folder, name), "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    text = digest.hexdigest()[:16]
    if cached is not None:
        _write_quietly(cached, text)
    return text


def _write_quietly(path: Path, text: str) -> None:
    """Write the cache file atomically; a cache that cannot be written is only slower."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(text, encoding="ascii")
        os.replace(temporary, path)
    except OSError:
        pass
