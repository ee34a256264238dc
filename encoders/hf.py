"""Hugging Face building blocks shared by every family, and the ``hf:<model-id>`` encoder.

:class:`HFTokenizer` wraps any fast tokenizer and :class:`HFEncoder` any
``transformers`` encoder module; :func:`build_hf_encoder` applies the loading
rules (``--encoder-path``, ``--random-init``, config overrides, ``sdpa``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Literal

import torch
from huggingface_hub import constants as hub_constants
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import HFValidationError
from torch import nn
from transformers import (
    CONFIG_MAPPING,
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    PreTrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as transformers_logging

from bench.errors import BenchError, EncoderUnavailableError, ResultsError, UsageError
from encoders.base import BuiltEncoder, EncoderOutput, EncoderRequest, Encoding, TextEncoder, TextTokenizer
from encoders.registry import (
    HF_PATTERN,
    TOKENIZER_MARKER,
    load_tokenizer,
    pattern_argument,
    register_encoder,
    register_tokenizer_loader,
    write_tokenizer_marker,
)

HF_TOKENIZER_KIND = "hf"
# Config keys that say where a model came from, not what it is.
_PROVENANCE_KEYS = ("_name_or_path", "transformers_version")


class HFTokenizer(TextTokenizer):
    """A Hugging Face (fast) tokenizer behind the :class:`TextTokenizer` interface.

    ``prefix`` is put before every (first) text, e.g. the ``query: `` that E5 models were trained with.
    """

    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, *, trust_remote_code: bool = False, prefix: str = ""
    ) -> None:
        if tokenizer.pad_token_id is None:
            raise EncoderUnavailableError(f"tokenizer {tokenizer.name_or_path!r} has no padding token")
        self.hf = tokenizer
        self.trust_remote_code = trust_remote_code
        self.prefix = prefix
        self.pad_id = tokenizer.pad_token_id
        self.vocab_size = len(tokenizer)

    def tokenize(self, text: str) -> list[str]:
        """Pieces of ``text`` (after the prefix) without special tokens."""
        return self.hf.tokenize(self.prefix + text)

    def encode(self, text: str, pair: str | None = None, max_len: int | None = None) -> Encoding:
        """Ids of ``text`` (and ``pair``) with special tokens; pairs are truncated longest-first."""
        encoded = self.hf(
            self.prefix + text,
            pair,
            truncation=max_len is not None,
            max_length=max_len,
            return_token_type_ids=True,
            return_attention_mask=False,
        )
        ids = list(encoded["input_ids"])
        return Encoding(ids, list(encoded["token_type_ids"]), self.hf.convert_ids_to_tokens(ids))

    def encode_batch(self, texts: Sequence[str], max_len: int) -> list[list[int]]:
        """Ids of many texts through the tokenizer's parallel batch path."""
        encoded = self.hf(
            [self.prefix + text for text in texts],
            truncation=True,
            max_length=max_len,
            return_token_type_ids=False,
            return_attention_mask=False,
        )
        return encoded["input_ids"]

    def save(self, directory: Path) -> None:
        """Write the tokenizer files and the bench marker into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        self.hf.save_pretrained(directory)
        settings: dict[str, Any] = {"trust_remote_code": self.trust_remote_code}
        if self.prefix:
            settings["prefix"] = self.prefix
        write_tokenizer_marker(directory, HF_TOKENIZER_KIND, settings)


def _load_saved_hf_tokenizer(directory: Path, marker: dict[str, Any]) -> HFTokenizer:
    trust_remote_code = bool(marker.get("trust_remote_code", False))
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise EncoderUnavailableError(f"cannot load the tokenizer saved in {directory}: {_one_line(error)}") from None
    return HFTokenizer(tokenizer, trust_remote_code=trust_remote_code, prefix=str(marker.get("prefix", "")))


register_tokenizer_loader(HF_TOKENIZER_KIND, _load_saved_hf_tokenizer)


SentencePooling = Literal["pooler", "first", "mean"]


class HFEncoder(TextEncoder):
    """A ``transformers`` encoder.

    The sentence vector is (``pooling``) its pooler output, else the first token's state (``"pooler"``),
    the first token's state (``"first"``), or the mean of the real tokens' states (``"mean"``, E5).
    Only ``input_ids`` and ``attention_mask`` reach the model: RoBERTa-family models number positions
    from their padding index themselves, and token types stay the model's default (type 0).
    ``train_word_embeddings=False`` keeps the word embedding matrix fixed while the rest trains (for
    large multilingual vocabularies, whose dense gradient and AdamW update cost more than the layers).
    """

    def __init__(
        self, model: PreTrainedModel, *, pooling: SentencePooling = "pooler", train_word_embeddings: bool = True
    ) -> None:
        super().__init__()
        self.model = model
        self.pooling = pooling
        self.hidden_size = int(model.config.hidden_size)
        if not train_word_embeddings:
            model.get_input_embeddings().weight.requires_grad_(False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> EncoderOutput:
        """Encode a right-padded batch."""
        outputs = self.model(input_ids=input_ids, attention_mask=attention_mask)
        token_states = outputs.last_hidden_state
        pooled = getattr(outputs, "pooler_output", None) if self.pooling == "pooler" else None
        if self.pooling == "mean":
            weights = attention_mask.unsqueeze(-1).to(token_states.dtype)
            sentence_vector = (token_states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)
        else:
            sentence_vector = pooled if pooled is not None else token_states[:, 0]
        return EncoderOutput(token_states, attention_mask.bool(), sentence_vector)

    def max_tokens(self) -> int | None:
        """``max_position_embeddings``, less the padding index + 1 for RoBERTa-family position numbering."""
        positions = getattr(self.model.config, "max_position_embeddings", None)
        if not isinstance(positions, int) or positions < 1:
            return None
        embeddings = getattr(self.model, "embeddings", None)
        padding_index = getattr(embeddings, "padding_idx", None)
        if isinstance(padding_index, int) and hasattr(embeddings, "create_position_ids_from_input_ids"):
            positions -= padding_index + 1
        return positions

    def _layers(self) -> nn.ModuleList | None:
        """The stack of transformer layers (``encoder.layer`` of BERT, ELECTRA, RoBERTa …), if the model has one."""
        layers = getattr(getattr(self.model, "encoder", None), "layer", None)
        return layers if isinstance(layers, nn.ModuleList) and len(layers) > 0 else None

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Embeddings (with ELECTRA's projection), then each layer; what lies above (the pooler) joins the top layer."""
        layers = self._layers()
        if layers is None:
            return super().layer_groups()
        layer_of = {id(parameter): index for index, layer in enumerate(layers) for parameter in layer.parameters()}
        groups: list[list[nn.Parameter]] = [[] for _ in range(len(layers) + 1)]
        for name, parameter in self.model.named_parameters():
            if id(parameter) in layer_of:
                groups[layer_of[id(parameter)] + 1].append(parameter)
            elif name.startswith("embeddings"):
                groups[0].append(parameter)
            else:
                groups[-1].append(parameter)
        return groups

    def reinitialise_top_layers(self, count: int) -> None:
        """Draw the top ``count`` layers (and the pooler above them) afresh, as BERT initialises them.

        Linear weights ~ N(0, ``initializer_range``), biases 0, LayerNorms 1 and 0.
        """
        if count == 0:
            return
        layers = self._layers()
        if layers is None:
            super().reinitialise_top_layers(count)
            return
        if count > len(layers):
            raise UsageError(f"--reinit-layers {count} is more than the encoder's {len(layers)} layers")
        std = float(getattr(self.model.config, "initializer_range", 0.02))
        modules = [*layers[len(layers) - count :], getattr(self.model, "pooler", None)]
        with torch.no_grad():
            for module in (item for top in modules if top is not None for item in top.modules()):
                if isinstance(module, nn.Linear):
                    module.weight.normal_(0.0, std)
                    if module.bias is not None:
                        module.bias.zero_()
                elif isinstance(module, nn.LayerNorm):
                    module.weight.fill_(1.0)
                    module.bias.zero_()

    def architecture(self) -> dict[str, Any]:
        """The model's ``transformers`` config (with its ``model_type``), without where it was loaded from."""
        config = self.model.config.to_dict()
        for key in _PROVENANCE_KEYS:
            config.pop(key, None)
        return config


def rebuild_hf_encoder(architecture: dict[str, Any]) -> HFEncoder:
    """The ``transformers`` model an :meth:`HFEncoder.architecture` describes, its weights not initialised.

    The caller loads the saved weights over them: skipping the random initialisation saves seconds of
    start-up for a large vocabulary (e5-small's 250,037 × 384 embedding table).
    """
    model_type = architecture.get("model_type")
    if model_type not in CONFIG_MAPPING:
        raise ResultsError(
            f"model type {model_type!r} of the saved encoder is not built into transformers; "
            "saved models need a built-in architecture"
        )
    try:
        config = CONFIG_MAPPING[model_type].from_dict(architecture)
    except (TypeError, ValueError) as error:
        raise ResultsError(f"the saved {model_type} config cannot be read: {error}") from None
    from transformers.initialization import no_init_weights

    request = EncoderRequest(f"saved {model_type}", random_init=True)
    with no_init_weights():
        return HFEncoder(build_model(request, f"saved {model_type} config", config))


def _one_line(error: BaseException, limit: int = 240) -> str:
    """The first sentence of ``error`` on one line, at most ``limit`` characters."""
    text = " ".join(str(error).split()) or type(error).__name__
    sentence_end = text.find(". ")
    if sentence_end > 0:
        text = text[: sentence_end + 1]
    text = text.rstrip(".")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _unavailable(request: EncoderRequest, source: str, what: str, error: BaseException) -> EncoderUnavailableError:
    if request.path is not None:
        advice = (
            f"the --encoder-path folder needs config.json, the weights and the tokenizer files "
            f"(or pass --random-init for random weights); without it the model is read from the "
            f"Hugging Face cache ({hub_constants.HF_HUB_CACHE})"
        )
    else:
        advice = (
            f"offline, the model must be in the Hugging Face cache ({hub_constants.HF_HUB_CACHE}) "
            f"or in a local folder passed with --encoder-path DIR"
        )
    return EncoderUnavailableError(
        f"encoder {request.name!r}: cannot load the {what} from {source}: {_one_line(error)}; {advice}"
    )


@contextmanager
def hub_errors(request: EncoderRequest, source: str, what: str) -> Iterator[None]:
    """Turn hub and file errors raised while loading ``what`` into one :class:`EncoderUnavailableError`."""
    try:
        yield
    except (OSError, HFValidationError) as error:
        raise _unavailable(request, source, what, error) from None


def _loading_failure(request: EncoderRequest, source: str, what: str, error: ValueError) -> BenchError:
    """The error for a ``ValueError`` of transformers while loading ``what`` (unknown model, remote code)."""
    if "trust_remote_code" in str(error) and not request.trust_remote_code:
        return UsageError(
            f"encoder {request.name!r}: {source} needs its own model code; pass --trust-remote-code to run it"
        )
    return _unavailable(request, source, what, error)


def model_folder(request: EncoderRequest) -> Path | None:
    """``request.path`` checked to be a folder, or ``None`` when loading from the hub."""
    if request.path is None:
        return None
    if not request.path.is_dir():
        raise EncoderUnavailableError(
            f"encoder {request.name!r}: --encoder-path {request.path} is not a folder; pass a local HF-style folder "
            f"or omit it to use the Hugging Face hub/cache ({hub_constants.HF_HUB_CACHE})"
        )
    return request.path


def model_source(request: EncoderRequest, hub_id: str) -> str:
    """Where to load from: the ``--encoder-path`` folder, else ``hub_id``."""
    folder = model_folder(request)
    return hub_id if folder is None else str(folder)


def fetch_file(request: EncoderRequest, hub_id: str, filename: str) -> Path:
    """``filename`` from the ``--encoder-path`` folder, else from the hub (or its cache)."""
    folder = model_folder(request)
    if folder is not None:
        path = folder / filename
        if not path.is_file():
            raise EncoderUnavailableError(f"encoder {request.name!r}: --encoder-path {folder} has no {filename}")
        return path
    with hub_errors(request, hub_id, filename):
        return Path(hf_hub_download(hub_id, filename))


def apply_config_overrides(config: PreTrainedConfig, overrides: Sequence[tuple[str, object]], encoder: str) -> None:
    """Set each ``(field, value)`` on ``config``; string values take the field's current type."""
    for key, value in overrides:
        if not hasattr(config, key):
            raise UsageError(f"encoder {encoder!r}: its config has no field {key!r} to override")
        setattr(config, key, _coerce(value, getattr(config, key), key, encoder))


def _coerce(value: object, current: object, key: str, encoder: str) -> object:
    if not isinstance(value, str) or current is None or isinstance(current, str):
        return value
    try:
        if isinstance(current, bool):
            if value.lower() not in {"true", "false", "1", "0"}:
                raise ValueError(value)
            return value.lower() in {"true", "1"}
        if isinstance(current, int):
            return int(value)
        if isinstance(current, float):
            return float(value)
    except ValueError:
        raise UsageError(
            f"encoder {encoder!r}: config field {key!r} must be of type {type(current).__name__}, got {value!r}"
        ) from None
    return value


def load_config(request: EncoderRequest, source: str, model_type: str | None) -> PreTrainedConfig:
    """The model config from ``source`` with ``request.config_overrides`` applied.

    ``model_type`` (e.g. ``"bert"``) is checked when given, so a wrong folder fails clearly.
    """
    with hub_errors(request, source, "config"):
        try:
            config = AutoConfig.from_pretrained(source, trust_remote_code=request.trust_remote_code)
        except ValueError as error:
            raise _loading_failure(request, source, "config", error) from None
    if model_type is not None and config.model_type != model_type:
        raise EncoderUnavailableError(
            f"encoder {request.name!r}: {source} holds a model of type {config.model_type!r}, expected {model_type!r}"
        )
    apply_config_overrides(config, request.config_overrides, request.name)
    return config


@contextmanager
def _no_progress_bars() -> Iterator[None]:
    """Silence transformers' (and the hub's) progress bars: library code does not write to the terminal."""
    was_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            transformers_logging.enable_progress_bar()


def build_model(request: EncoderRequest, source: str, config: PreTrainedConfig) -> PreTrainedModel:
    """Random weights from ``config`` (``random_init``), else the weights at ``source``; ``sdpa`` where supported."""
    load: Callable[..., PreTrainedModel] = (
        partial(AutoModel.from_config, config)
        if request.random_init
        else partial(AutoModel.from_pretrained, source, config=config)
    )
    with hub_errors(request, source, "weights"), _no_progress_bars():
        try:
            try:
                return load(attn_implementation="sdpa", trust_remote_code=request.trust_remote_code)
            except ValueError as error:
                if "sdpa" not in str(error) and "scaled_dot_product_attention" not in str(error):
                    raise
            return load(trust_remote_code=request.trust_remote_code)
        except (ValueError, RuntimeError) as error:
            if not request.config_overrides:
                raise
            raise UsageError(
                f"encoder {request.name!r}: the config overrides give no valid model: {_one_line(error)}"
            ) from None


def build_hf_encoder(
    request: EncoderRequest, hub_id: str, model_type: str | None, tokenizer: TextTokenizer
) -> BuiltEncoder:
    """Load (or randomly initialise) the model ``hub_id``/``--encoder-path`` and pair it with ``tokenizer``."""
    source = model_source(request, hub_id)
    config = load_config(request, source, model_type)
    model = build_model(request, source, config)
    origin = f"{source} (random init)" if request.random_init else source
    return BuiltEncoder(HFEncoder(model), tokenizer, origin)


def count_parameters(model_type: str, config_values: dict[str, Any]) -> int:
    """Parameters of the ``model_type`` architecture with ``config_values``, built on the meta device."""
    config = AutoConfig.for_model(model_type, **config_values)
    with torch.device("meta"):
        model = AutoModel.from_config(config)
    return sum(parameter.numel() for parameter in model.parameters())


def create_hf_tokenizer(request: EncoderRequest) -> TextTokenizer:
    """The AutoTokenizer (fast) of ``hf:<model-id>`` or of the ``--encoder-path`` folder.

    A folder holding a tokenizer saved by bench (its marker file) is rebuilt as saved.
    """
    folder = model_folder(request)
    if folder is not None and (folder / TOKENIZER_MARKER).is_file():
        return load_tokenizer(folder, trust_remote_code=request.trust_remote_code)
    source = model_source(request, pattern_argument(request.name))
    with hub_errors(request, source, "tokenizer"):
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=request.trust_remote_code)
        except ValueError as error:
            raise _loading_failure(request, source, "tokenizer", error) from None
    return HFTokenizer(tokenizer, trust_remote_code=request.trust_remote_code)


@register_encoder(
    HF_PATTERN,
    hub_id=None,
    description="Any Hugging Face encoder (AutoModel + fast AutoTokenizer); pooler output, else first token",
    tokenizer=create_hf_tokenizer,
    rebuild=rebuild_hf_encoder,
)
def create_hf_encoder(request: EncoderRequest) -> BuiltEncoder:
    """Build ``hf:<model-id>`` with AutoModel and its AutoTokenizer."""
    return build_hf_encoder(request, pattern_argument(request.name), None, create_hf_tokenizer(request))
