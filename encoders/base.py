"""What every encoder family provides: a tokenizer, a module and its output."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.errors import UsageError
from encoders.tokenization import Encoding, TextTokenizer  # noqa: F401  (re-exported; tokenizers need no torch)


@dataclass
class EncoderOutput:
    """Token states, the attention mask and a sentence vector for one batch.

    ``attention_mask`` is ``True`` on real tokens. ``sentence_vector`` is the
    model's pooler output where it has one, else the state of the first token.
    """

    token_states: torch.Tensor
    attention_mask: torch.Tensor
    sentence_vector: torch.Tensor


class TextEncoder(nn.Module, ABC):
    """A module turning padded ids into an :class:`EncoderOutput`.

    :meth:`architecture` describes the module as JSON; the ``rebuild`` function
    of its registry entry builds the same module from it to load saved weights.
    """

    hidden_size: int

    @abstractmethod
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> EncoderOutput:
        """Encode a right-padded batch; ``attention_mask`` is 1 on real tokens."""

    @abstractmethod
    def architecture(self) -> dict[str, Any]:
        """What rebuilding this module needs (sizes, config), as a JSON object; never weights or paths."""

    def max_tokens(self) -> int | None:
        """The longest input (special tokens included) the module takes; ``None`` when it has no limit."""
        return None

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """The parameters from the bottom (embeddings) to the top layer, for layer-wise learning rates.

        Every parameter is in exactly one group; an encoder without layers is one group.
        """
        return [list(self.parameters())]

    def reinitialise_top_layers(self, count: int) -> None:
        """Give the top ``count`` layers fresh random weights; encoders without layers cannot."""
        raise UsageError(f"{type(self).__name__} has no layers to re-initialise (--reinit-layers {count})")


@dataclass(frozen=True)
class EncoderRequest:
    """What a factory gets: where to load from and how.

    ``path`` is a local HF-style folder (``--encoder-path``) used instead of the hub;
    ``train_texts`` are the run's training texts (only ``scratch`` uses them, to
    train its tokenizer); ``cache_dir`` holds such derived artefacts.
    """

    name: str
    path: Path | None = None
    random_init: bool = False
    trust_remote_code: bool = False
    train_texts: Sequence[str] | None = field(default=None, compare=False, hash=False)
    cache_dir: Path = Path(".cache")
    config_overrides: tuple[tuple[str, object], ...] = ()


@dataclass
class BuiltEncoder:
    """An encoder module with its tokenizer and where it came from."""

    encoder: TextEncoder
    tokenizer: TextTokenizer
    source: str
