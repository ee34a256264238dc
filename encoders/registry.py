"""Encoder registry: ``register_encoder``, ``create_encoder``, ``create_tokenizer``, ``list_encoders``.

Saved tokenizers carry a small JSON marker (:data:`TOKENIZER_MARKER`) naming their
kind; :func:`load_tokenizer` rebuilds them from a folder with no hub and no database.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import EncoderUnavailableError, UsageError
from encoders.base import BuiltEncoder, EncoderRequest, TextTokenizer

EncoderFactory = Callable[[EncoderRequest], BuiltEncoder]
TokenizerFactory = Callable[[EncoderRequest], TextTokenizer]
TokenizerLoader = Callable[[Path, dict[str, Any]], TextTokenizer]
HF_PREFIX = "hf:"
HF_PATTERN = HF_PREFIX + "<model-id>"
TOKENIZER_MARKER = "bench-tokenizer.json"


@dataclass(frozen=True)
class EncoderEntry:
    """A registered encoder family member.

    ``parameter_count`` is ``None`` where parameters cannot be counted without a
    download (the ``hf:<model-id>`` pattern); ``tokenizer_factory`` builds only the
    tokenizer, without loading any weights.
    """

    name: str
    factory: EncoderFactory
    hub_id: str | None
    description: str
    parameter_count: Callable[[], int] | None
    tokenizer_factory: TokenizerFactory
    default_lr: float


_REGISTRY: dict[str, EncoderEntry] = {}
_TOKENIZER_LOADERS: dict[str, TokenizerLoader] = {}


def register_encoder(
    name: str,
    *,
    hub_id: str | None,
    description: str,
    parameter_count: Callable[[], int] | None,
    tokenizer: TokenizerFactory,
    default_lr: float = 3e-5,
) -> Callable[[EncoderFactory], EncoderFactory]:
    """Register ``factory`` under ``name``; ``parameter_count`` counts without loading weights,
    ``tokenizer`` builds the encoder's tokenizer alone, ``default_lr`` is the encoder learning
    rate used when a run gives none (pretrained encoders fine-tune around 1e-5…5e-5)."""

    def decorate(factory: EncoderFactory) -> EncoderFactory:
        if name in _REGISTRY:
            raise ValueError(f"encoder {name!r} is registered twice")
        _REGISTRY[name] = EncoderEntry(
            name, factory, hub_id, description, parameter_count, tokenizer, default_lr
        )
        return factory

    return decorate


def list_encoders() -> list[EncoderEntry]:
    """All registered encoders, by name."""
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def check_encoder_name(name: str) -> None:
    """Raise :class:`UsageError` unless ``name`` is registered or ``hf:<model-id>``."""
    if name.startswith(HF_PREFIX):
        if not name[len(HF_PREFIX) :].strip():
            raise UsageError("encoder 'hf:' needs a model id, e.g. hf:klue/roberta-base")
        return
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise UsageError(f"unknown encoder {name!r}; choose one of: {known}")


def _entry(name: str) -> EncoderEntry:
    check_encoder_name(name)
    return _REGISTRY[HF_PATTERN if name.startswith(HF_PREFIX) else name]


def default_learning_rate(name: str) -> float:
    """The encoder learning rate ``name`` trains with by default (3e-5 for unknown names)."""
    key = HF_PATTERN if name.startswith(HF_PREFIX) else name
    return _REGISTRY[key].default_lr if key in _REGISTRY else 3e-5


def create_encoder(request: EncoderRequest) -> BuiltEncoder:
    """Build the encoder ``request.name`` names (``hf:<id>`` for any hub encoder)."""
    return _entry(request.name).factory(request)


def create_tokenizer(request: EncoderRequest) -> TextTokenizer:
    """Build only the tokenizer of ``request.name``, loading no model weights."""
    return _entry(request.name).tokenizer_factory(request)


def register_tokenizer_loader(kind: str, loader: TokenizerLoader) -> None:
    """Make :func:`load_tokenizer` rebuild folders whose marker says ``kind`` with ``loader``."""
    if kind in _TOKENIZER_LOADERS:
        raise ValueError(f"tokenizer kind {kind!r} is registered twice")
    _TOKENIZER_LOADERS[kind] = loader


def write_tokenizer_marker(directory: Path, kind: str, settings: dict[str, Any]) -> None:
    """Write the marker :func:`load_tokenizer` reads: the tokenizer ``kind`` and its ``settings``."""
    directory.mkdir(parents=True, exist_ok=True)
    marker = {"kind": kind, **settings}
    (directory / TOKENIZER_MARKER).write_text(json.dumps(marker, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def load_tokenizer(directory: Path, *, trust_remote_code: bool = False) -> TextTokenizer:
    """Rebuild the tokenizer a :meth:`TextTokenizer.save` wrote into ``directory``.

    Code shipped with the folder runs only with ``trust_remote_code`` (``--trust-remote-code``),
    whatever the folder's marker says: a folder from elsewhere cannot switch it on.
    """
    marker_path = directory / TOKENIZER_MARKER
    if not marker_path.is_file():
        raise EncoderUnavailableError(f"{directory} has no {TOKENIZER_MARKER}: it holds no tokenizer saved by bench")
    try:
        marker = json.loads(marker_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EncoderUnavailableError(f"{marker_path} is not valid JSON: {error}") from None
    kind = marker.get("kind") if isinstance(marker, dict) else None
    if kind not in _TOKENIZER_LOADERS:
        known = ", ".join(sorted(_TOKENIZER_LOADERS))
        raise EncoderUnavailableError(f"{marker_path}: unknown tokenizer kind {kind!r}; known kinds: {known}")
    return _TOKENIZER_LOADERS[kind](directory, {**marker, "trust_remote_code": trust_remote_code})
