"""Encoder registry: ``register_encoder``, ``create_encoder``, ``create_tokenizer``, ``list_encoders``.

A registry entry owns everything about its encoder: how to build it and its
tokenizer, its default learning rates for each kind of weights, its ``bench tune``
search space and how a saved encoder is rebuilt for prediction. A name ending in
``<...>`` is a pattern (``hf:<model-id>`` matches every ``hf:...``). Saved
tokenizers carry a small JSON marker (:data:`TOKENIZER_MARKER`) naming their
kind; :func:`load_tokenizer` rebuilds them from a folder with no hub and no database.
The modules of this package register themselves on the first look-up, so loading a
sentencepiece tokenizer (:mod:`encoders.spm`) imports no torch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bench import plugins
from bench.errors import EncoderUnavailableError, UsageError
from bench.params import Param
from encoders.tokenization import TextTokenizer

if TYPE_CHECKING:  # torch-side
    from encoders.base import BuiltEncoder, EncoderRequest, TextEncoder

EncoderFactory = Callable[["EncoderRequest"], "BuiltEncoder"]
TokenizerFactory = Callable[["EncoderRequest"], TextTokenizer]
TokenizerLoader = Callable[[Path, dict[str, Any]], TextTokenizer]
EncoderRebuilder = Callable[[dict[str, Any]], "TextEncoder"]
Weights = Literal["pretrained", "random-init", "scratch"]
HF_PATTERN = "hf:<model-id>"
TOKENIZER_MARKER = "bench-tokenizer.json"


DEFAULT_BATCH_SIZE = 32  # the training batch of an encoder that sets none


@dataclass(frozen=True)
class LearningRates:
    """Default encoder learning rates by kind of weights.

    ``pretrained`` fine-tunes published weights (around 1e-5…5e-5); ``scratch``
    trains random weights; ``random_init`` is for ``--random-init`` of a pretrained
    architecture and is the ``scratch`` rate unless given. ``pretrained_head`` is the
    head's rate when the published weights are fine-tuned (``None``: the encoder's).
    """

    pretrained: float = 3e-5
    scratch: float = 5e-4
    random_init: float | None = None
    pretrained_head: float | None = None

    def for_weights(self, weights: Weights) -> float:
        """The learning rate for ``weights``."""
        if weights == "pretrained":
            return self.pretrained
        if weights == "random-init" and self.random_init is not None:
            return self.random_init
        return self.scratch


@dataclass(frozen=True)
class EncoderEntry:
    """A registered encoder (or encoder pattern such as ``hf:<model-id>``).

    ``parameter_count`` is ``None`` where parameters cannot be counted without a
    download; ``tokenizer_factory`` builds only the tokenizer, without loading any
    weights; ``pretrained`` is false for encoders that always start from random
    weights; ``pretrained_batch_size`` is the training batch its published weights
    fine-tune with by default; ``space`` and ``random_space`` are the ``bench tune`` ranges that differ
    from the standard ones (:func:`bench.tuning.spaces.standard_space`) for the encoder's
    own weights and for ``--random-init``; ``rebuild`` turns the
    :meth:`TextEncoder.architecture` of a saved encoder back into a module
    (weights are loaded afterwards); ``module`` is where the entry was registered.
    """

    name: str
    factory: EncoderFactory
    hub_id: str | None
    description: str
    parameter_count: Callable[[], int] | None
    tokenizer_factory: TokenizerFactory
    rebuild: EncoderRebuilder
    learning_rates: LearningRates
    pretrained: bool
    pretrained_batch_size: int | None
    space: Mapping[str, Param]
    random_space: Mapping[str, Param]
    module: str = field(default="")
    reference: bool = False

    @property
    def pattern_prefix(self) -> str | None:
        """``"hf:"`` for ``hf:<model-id>``; ``None`` for an ordinary name."""
        return self.name[: self.name.index("<")] if self.name.endswith(">") and "<" in self.name else None

    def weights(self, *, random_init: bool) -> Weights:
        """What a run starts from: pretrained weights, ``--random-init`` of them, or an encoder trained from scratch."""
        if not self.pretrained:
            return "scratch"
        return "random-init" if random_init else "pretrained"

    def default_lr(self, *, random_init: bool = False) -> float:
        """The encoder learning rate a run uses when it gives none."""
        return self.learning_rates.for_weights(self.weights(random_init=random_init))

    def run_defaults(self, *, random_init: bool = False) -> dict[str, Any]:
        """The run settings a run of this encoder takes when it sets none: the encoder learning rate and the
        batch size, and for fine-tuned published weights the head's rate where the entry sets one."""
        weights = self.weights(random_init=random_init)
        defaults: dict[str, Any] = {"lr": self.learning_rates.for_weights(weights), "batch_size": DEFAULT_BATCH_SIZE}
        if weights == "pretrained":
            if self.learning_rates.pretrained_head is not None:
                defaults["head_lr"] = self.learning_rates.pretrained_head
            if self.pretrained_batch_size is not None:
                defaults["batch_size"] = self.pretrained_batch_size
        return defaults

    def search_space_overrides(self, *, random_init: bool = False) -> Mapping[str, Param]:
        """The ``bench tune`` ranges this encoder sets in place of the standard ones, for the run's weights."""
        return self.random_space if self.weights(random_init=random_init) == "random-init" else self.space


_REGISTRY: dict[str, EncoderEntry] = {}
_TOKENIZER_LOADERS: dict[str, TokenizerLoader] = {}


def register_encoder(
    name: str,
    *,
    description: str,
    tokenizer: TokenizerFactory,
    rebuild: EncoderRebuilder,
    hub_id: str | None = None,
    parameter_count: Callable[[], int] | None = None,
    pretrained: bool = True,
    learning_rates: LearningRates = LearningRates(),
    pretrained_batch_size: int | None = None,
    search_space: Mapping[str, Param] | None = None,
    random_init_search_space: Mapping[str, Param] | None = None,
) -> Callable[[EncoderFactory], EncoderFactory]:
    """Register an encoder factory under ``name`` (``prefix:<argument>`` registers a pattern).

    ``tokenizer`` builds the encoder's tokenizer alone, ``rebuild`` builds a saved
    encoder from its :meth:`TextEncoder.architecture`; ``parameter_count`` counts
    without loading weights. ``pretrained=False`` says the encoder always starts
    from random weights. ``learning_rates`` and ``pretrained_batch_size`` are the defaults a
    run takes when it sets none (:meth:`EncoderEntry.run_defaults`). ``bench tune`` searches
    the standard space for the run's weights (:func:`bench.tuning.spaces.standard_space`,
    derived from the run settings); ``search_space`` replaces or adds ranges for the encoder's own weights,
    ``random_init_search_space`` for ``--random-init``. A name registered twice, or the name of a reference row
    (:data:`REFERENCE_ROWS`), is a :class:`UsageError`.
    """

    def decorate(factory: EncoderFactory) -> EncoderFactory:
        if factory.__module__.partition(".")[0] != (__package__ or "encoders"):
            register_package_encoders()  # a plugin: the package's own names are taken first
        if name in _REGISTRY and _REGISTRY[name].reference:
            raise UsageError(
                f"encoder {name!r} is the name of the {name} baseline (a reference row); choose another name"
            )
        if name in _REGISTRY:
            raise UsageError(f"encoder {name!r} is already registered (by {_REGISTRY[name].module})")
        _REGISTRY[name] = EncoderEntry(
            name=name,
            factory=factory,
            hub_id=hub_id,
            description=description,
            parameter_count=parameter_count,
            tokenizer_factory=tokenizer,
            rebuild=rebuild,
            learning_rates=learning_rates,
            pretrained=pretrained,
            pretrained_batch_size=pretrained_batch_size,
            space=dict(search_space or {}),
            random_space=dict(random_init_search_space or {}),
            module=factory.__module__,
        )
        return factory

    return decorate


def _not_trainable(name: str) -> Callable[..., Any]:
    def refuse(*args: Any) -> Any:
        raise UsageError(f"{name!r} is a baseline (a reference row), not an encoder; run it with: bench baseline")

    return refuse


def _register_reference(name: str, description: str) -> None:
    """Register ``name`` as a reference row: a baseline scored like a run, with no weights and nothing to train."""
    refuse = _not_trainable(name)
    _REGISTRY[name] = EncoderEntry(
        name=name,
        factory=refuse,
        hub_id=None,
        description=description,
        parameter_count=None,
        tokenizer_factory=refuse,
        rebuild=refuse,
        learning_rates=LearningRates(),
        pretrained=False,
        pretrained_batch_size=None,
        space={},
        random_space={},
        module=__name__,
        reference=True,
    )


# The reference rows of ``bench baseline``: entries of this registry, registered before any plugin can be.
REFERENCE_ROWS = {
    "tfidf": "TF-IDF over character n-grams + logistic regression",
    "majority": "the most frequent training label (label frequencies as probabilities)",
}
for _name, _description in REFERENCE_ROWS.items():
    _register_reference(_name, _description)


def is_reference(name: str) -> bool:
    """Whether ``name`` is a reference row (a baseline) of the registry rather than an encoder: the one rule."""
    entry = _REGISTRY.get(name)
    return entry is not None and entry.reference


def register_package_encoders() -> None:
    """Import every module of this package (once), so each family file registers its encoders and tokenizer kinds."""
    plugins.import_package_modules(__package__ or "encoders", [str(Path(__file__).resolve().parent)])


def list_encoders() -> list[EncoderEntry]:
    """All registered encoders (plugins included), by name; the reference rows are not encoders."""
    return [entry for entry in _entries() if not entry.reference]


def _entries() -> list[EncoderEntry]:
    register_package_encoders()
    plugins.load_configured()
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def find_encoder(name: str) -> EncoderEntry | None:
    """The entry ``name`` is (or matches, for a pattern such as ``hf:<model-id>``), a reference row included;
    ``None`` if none."""
    for entry in _entries():
        prefix = entry.pattern_prefix
        if entry.name == name or (prefix is not None and name.startswith(prefix)):
            return entry
    return None


def encoder_entry(name: str) -> EncoderEntry:
    """The entry of encoder ``name``; :class:`UsageError` if it is unknown or a pattern lacks its argument."""
    entry = find_encoder(name)
    if entry is None:
        known = ", ".join(entry.name for entry in list_encoders())
        raise UsageError(f"unknown encoder {name!r}; choose one of: {known}")
    if entry.reference:
        _not_trainable(name)()
    if entry.pattern_prefix is not None and not pattern_argument(name):
        argument = entry.name.removeprefix(entry.pattern_prefix).strip("<>").replace("-", " ")
        raise UsageError(f"encoder {entry.pattern_prefix!r} needs a {argument} after it: {entry.name}")
    return entry


def pattern_argument(name: str) -> str:
    """What follows the prefix of a pattern encoder's name (``hf:klue/roberta-base`` → ``klue/roberta-base``)."""
    entry = find_encoder(name)
    prefix = entry.pattern_prefix if entry is not None else None
    return name[len(prefix) :].strip() if prefix is not None else ""


def check_encoder_name(name: str) -> None:
    """Raise :class:`UsageError` unless ``name`` is a registered encoder or matches a registered pattern."""
    encoder_entry(name)


def run_defaults(name: str, *, random_init: bool = False) -> dict[str, Any]:
    """The run settings (lr, batch size, maybe the head's lr) ``name`` trains with when a run sets none.

    A reference row (a baseline) or a name that is not registered here gets the standard :class:`LearningRates`
    and batch size.
    """
    entry = find_encoder(name)
    if entry is None or entry.reference:
        weights: Weights = "random-init" if random_init else "pretrained"
        return {"lr": LearningRates().for_weights(weights), "batch_size": DEFAULT_BATCH_SIZE}
    return entry.run_defaults(random_init=random_init)


def create_encoder(request: EncoderRequest) -> BuiltEncoder:
    """Build the encoder ``request.name`` names; :class:`UsageError` if its module could not be saved for prediction."""
    built = encoder_entry(request.name).factory(request)
    try:
        json.dumps(built.encoder.architecture())
    except (TypeError, ValueError) as error:
        raise UsageError(
            f"encoder {request.name!r}: its architecture() must be a JSON object that rebuilds the module: {error}"
        ) from None
    return built


def create_tokenizer(request: EncoderRequest) -> TextTokenizer:
    """Build only the tokenizer of ``request.name``, loading no model weights."""
    return encoder_entry(request.name).tokenizer_factory(request)


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


def read_tokenizer_marker(directory: Path) -> dict[str, Any]:
    """The marker :func:`write_tokenizer_marker` wrote into ``directory`` (a JSON object with its ``kind``)."""
    marker_path = directory / TOKENIZER_MARKER
    if not marker_path.is_file():
        raise EncoderUnavailableError(f"{directory} has no {TOKENIZER_MARKER}: it holds no tokenizer saved by bench")
    try:
        marker = json.loads(marker_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EncoderUnavailableError(f"{marker_path} is not valid JSON: {error}") from None
    if not isinstance(marker, dict):
        raise EncoderUnavailableError(f"{marker_path}: unknown tokenizer kind None; it must be a JSON object")
    return marker


def load_tokenizer(
    directory: Path, *, trust_remote_code: bool = False, marker: dict[str, Any] | None = None
) -> TextTokenizer:
    """Rebuild the tokenizer a :meth:`TextTokenizer.save` wrote into ``directory``.

    ``marker`` is the folder's marker when the caller has read it (:func:`read_tokenizer_marker`).
    Code shipped with the folder runs only with ``trust_remote_code`` (``--trust-remote-code``),
    whatever the folder's marker says: a folder from elsewhere cannot switch it on.
    """
    marker = marker if marker is not None else read_tokenizer_marker(directory)
    kind = marker.get("kind")
    if kind not in _TOKENIZER_LOADERS:
        list_encoders()  # registers the package's and the plugins' tokenizer kinds
    if kind not in _TOKENIZER_LOADERS:
        known = ", ".join(sorted(_TOKENIZER_LOADERS))
        raise EncoderUnavailableError(
            f"{directory / TOKENIZER_MARKER}: unknown tokenizer kind {kind!r}; known kinds: {known}"
        )
    return _TOKENIZER_LOADERS[kind](directory, {**marker, "trust_remote_code": trust_remote_code})
