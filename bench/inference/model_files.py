"""A saved model folder: ``model.json``, ``model.safetensors`` and ``tokenizer/``.

Every trained run writes one into ``runs/<run_id>/``; ``bench export-model`` copies it
anywhere. ``model.json`` holds what rebuilding needs with no hub and no database: the
encoder's architecture (what its registry entry rebuilds it from), the head and its
hyperparameters, the labels (a label's position is its class id), ``max_len`` and
the plugins the head or encoder came from. The folder holds only JSON, text,
safetensors and sentencepiece files, so loading it unpickles nothing.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.errors import ResultsError, UsageError
from bench.plugins import plugin_of
from bench.tasks import TASKS, task_named
from encoders import encoder_entry
from encoders.registry import TOKENIZER_MARKER

if TYPE_CHECKING:  # torch-side; reading a model card (ONNX Runtime prediction) imports no torch
    from torch import nn

    from bench.config import RunConfig
    from bench.data.types import SplitDataset
    from encoders.base import TextEncoder, TextTokenizer

MODEL_CARD = "model.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_DIR = "tokenizer"
FORMAT = "ko-emotion-bench/model"
FORMAT_VERSION = 1
# JSON, text, safetensors and sentencepiece models: nothing that loads through pickle.
PORTABLE_SUFFIXES = frozenset({".json", ".txt", ".safetensors", ".model"})


@dataclass
class ModelCard:
    """The contents of ``model.json``.

    ``encoder_config`` is the encoder's :meth:`~encoders.TextEncoder.architecture`
    and ``model_type`` its kind; ``plugins`` maps ``head``/``encoder`` to the plugin
    (file or module) it came from, when it is not one of the package's own.
    ``task`` is ``single`` or ``multilabel`` (:mod:`bench.tasks`); a multi-label model keeps the
    decision threshold of each label (tuned on validation) in ``thresholds``. ``feature_dtype``
    (``float16`` for a run with a frozen encoder) is the dtype the encoder's outputs are rounded
    to before the head, as in training (:class:`bench.model.classifier.SavedClassifier`).
    """

    run_id: str
    encoder: str
    model_type: str
    encoder_config: dict[str, Any]
    head: str
    head_params: dict[str, Any]
    labels: list[str]
    max_len: int
    dataset: str
    fingerprint: str
    scores: dict[str, float] = field(default_factory=dict)
    plugins: dict[str, str] = field(default_factory=dict)
    task: str = "single"
    thresholds: list[float] = field(default_factory=list)
    feature_dtype: str = ""
    # ONNX graph facts (opset, pad id, quantisation and its effect); empty for a safetensors folder.
    onnx: dict[str, Any] = field(default_factory=dict)

    def write(self, directory: Path) -> None:
        """Write ``model.json`` into ``directory``."""
        payload = {"format": FORMAT, "version": FORMAT_VERSION, **asdict(self)}
        if not self.onnx:
            del payload["onnx"]
        text = json.dumps(payload, ensure_ascii=False, indent=2, sort_keys=False) + "\n"
        (directory / MODEL_CARD).write_text(text, encoding="utf-8")

    @classmethod
    def read(cls, directory: Path) -> ModelCard:
        """Read and check ``directory/model.json``; :class:`ResultsError` naming the problem otherwise."""
        path = directory / MODEL_CARD
        if not path.is_file():
            raise ResultsError(f"{directory} is not a saved model: it has no {MODEL_CARD}")
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, OSError) as error:
            raise ResultsError(f"{path} is not valid JSON: {error}") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ResultsError(f"{path} is not a ko-emotion-bench model card (its format is not {FORMAT!r})")
        if payload.get("version") != FORMAT_VERSION:
            raise ResultsError(
                f"{path}: model format version {payload.get('version')!r} is not supported "
                f"(this bench reads version {FORMAT_VERSION})"
            )
        unknown = sorted(set(payload) - {"format", "version", *_CARD_FIELDS, *_OPTIONAL_FIELDS})
        if unknown:
            raise ResultsError(f"{path}: unknown field {unknown[0]!r} (this bench reads version {FORMAT_VERSION})")
        for key, kind in _CARD_FIELDS.items():
            value = payload.get(key)
            if not isinstance(value, kind) or isinstance(value, bool) or (kind is str and not value.strip()):
                raise ResultsError(f"{path}: field {key!r} is missing or not a {_KIND_NAMES[kind]}")
        card = cls(**{key: payload[key] for key in (*_CARD_FIELDS, *_OPTIONAL_FIELDS) if key in payload})
        card.check(path)
        return card

    def check(self, path: Path) -> None:
        """Check the values of the fields (types are checked by :meth:`read`); :class:`ResultsError` otherwise."""
        labels = self.labels
        if not labels or not all(isinstance(label, str) and label.strip() for label in labels):
            raise ResultsError(f"{path}: field 'labels' must be a non-empty list of non-empty strings")
        if len(set(labels)) != len(labels):
            raise ResultsError(f"{path}: field 'labels' names a label twice")
        if not all(isinstance(key, str) for key in self.head_params):
            raise ResultsError(f"{path}: field 'head_params' must map names to values")
        if not isinstance(self.plugins, dict) or not all(
            key in ("head", "encoder") and isinstance(value, str) and value for key, value in self.plugins.items()
        ):
            raise ResultsError(f"{path}: field 'plugins' must map 'head'/'encoder' to a plugin name")
        if not isinstance(self.scores, dict) or not all(
            isinstance(name, str) and _is_number(value) for name, value in self.scores.items()
        ):
            raise ResultsError(f"{path}: field 'scores' must map score names to finite numbers")
        if not isinstance(self.onnx, dict):
            raise ResultsError(f"{path}: field 'onnx' must be a JSON object")
        if self.task not in TASKS:
            raise ResultsError(f"{path}: field 'task' must be {' or '.join(map(repr, TASKS))}, got {self.task!r}")
        if (problem := task_named(self.task).check_thresholds(self.thresholds, len(labels))) is not None:
            raise ResultsError(f"{path}: {problem}")
        if not isinstance(self.feature_dtype, str):
            raise ResultsError(f"{path}: field 'feature_dtype' must be a dtype name or empty")
        positions = encoder_positions(self.model_type, self.encoder_config)
        if self.max_len < MIN_MAX_LEN or (positions is not None and self.max_len > positions):
            limit = f" and at most {positions}, the encoder's positions" if positions is not None else ""
            raise ResultsError(f"{path}: field 'max_len' is {self.max_len}; it must be at least {MIN_MAX_LEN}{limit}")


_CARD_FIELDS: dict[str, type] = {
    "run_id": str,
    "encoder": str,
    "model_type": str,
    "encoder_config": dict,
    "head": str,
    "head_params": dict,
    "labels": list,
    "max_len": int,
    "dataset": str,
    "fingerprint": str,
}
_OPTIONAL_FIELDS = ("scores", "plugins", "task", "thresholds", "feature_dtype", "onnx")
_KIND_NAMES = {str: "non-empty string", dict: "JSON object", list: "list", int: "whole number"}
MIN_MAX_LEN = 2  # [CLS] and [SEP]
# Architectures whose position ids start after the padding id (RoBERTa family): they have fewer usable positions.
_OFFSET_POSITIONS = frozenset({"roberta", "xlm-roberta", "camembert", "xlm-roberta-xl", "longformer", "data2vec-text"})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def encoder_positions(model_type: str, config: dict[str, Any]) -> int | None:
    """How many tokens the encoder described by ``config`` takes (``None`` when the config does not say)."""
    positions = config.get("max_position_embeddings")
    if not isinstance(positions, int) or isinstance(positions, bool) or positions < 1:
        return None
    if model_type in _OFFSET_POSITIONS:
        pad = config.get("pad_token_id")
        positions -= (pad if isinstance(pad, int) and not isinstance(pad, bool) else 1) + 1
    return positions


def architecture_fields(encoder: TextEncoder) -> dict[str, Any]:
    """The card's ``model_type`` and ``encoder_config``: the encoder's architecture and its kind."""
    architecture = encoder.architecture()
    return {"model_type": str(architecture.get("model_type", type(encoder).__name__)), "encoder_config": architecture}


def save_model_folder(directory: Path, model: nn.Module, tokenizer: TextTokenizer, card: ModelCard) -> None:
    """Write ``model`` (a module with ``encoder`` and ``head``), its tokenizer and ``card`` as a saved model folder.

    Used for models that were not trained by a run (benchmarks and tests of random-weight architectures).
    """
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    card.write(directory)
    save_file({name: tensor.contiguous() for name, tensor in model.state_dict().items()}, str(directory / WEIGHTS_FILE))
    tokenizer.save(directory / TOKENIZER_DIR)


def write_model_card(
    directory: Path,
    *,
    run_id: str,
    config: RunConfig,
    dataset: SplitDataset,
    encoder: TextEncoder,
    thresholds: list[float] | None = None,
    feature_dtype: str = "",
) -> None:
    """Write the ``model.json`` of a run trained with ``config`` on ``dataset`` (multi-label: with ``thresholds``;
    ``feature_dtype``: what a frozen encoder's outputs are rounded to)."""
    from heads import head_class, resolve_head_params

    sources = {"head": head_class(config.head).__module__, "encoder": encoder_entry(config.encoder).module}
    plugins = {part: plugin for part, module in sources.items() if (plugin := plugin_of(module)) is not None}
    ModelCard(
        run_id=run_id,
        encoder=config.encoder,
        **architecture_fields(encoder),
        head=config.head,
        head_params=resolve_head_params(config.head, config.head_kwargs),
        labels=list(dataset.labels),
        max_len=config.max_len,
        dataset=dataset.name,
        fingerprint=dataset.fingerprint,
        plugins=plugins,
        task=dataset.task,
        thresholds=list(thresholds or []),
        feature_dtype=feature_dtype,
    ).write(directory)


def unportable_files(directory: Path) -> list[Path]:
    """Files under ``directory`` that are not JSON, text, safetensors or sentencepiece models."""
    return sorted(path for path in directory.rglob("*") if path.is_file() and path.suffix not in PORTABLE_SUFFIXES)


def check_model_folder(directory: Path) -> ModelCard:
    """The card of a complete saved model folder; :class:`ResultsError` naming what is missing or wrong.

    Every file of the folder (links included) and every file a JSON file in it names
    (``vocab_file``, ``model_file``, ...) must lie inside the folder.
    """
    root = directory.resolve()
    for path in sorted(directory.rglob("*")):
        inside(root, path, f"{path} (in the model folder)")
    card = ModelCard.read(directory)
    for name, is_kind in ((WEIGHTS_FILE, Path.is_file), (TOKENIZER_DIR, Path.is_dir)):
        if not is_kind(directory / name):
            raise ResultsError(f"{directory} is not a complete saved model: {name} is missing")
    for path in sorted((directory / TOKENIZER_DIR).rglob("*.json")):
        _check_tokenizer_json(root, directory / TOKENIZER_DIR, path)
    return card


def inside(root: Path, path: Path, what: str) -> Path:
    """``path`` resolved, if it lies inside the folder ``root`` (resolved); :class:`ResultsError` otherwise."""
    try:
        resolved = path.resolve(strict=False)
    except (RuntimeError, OSError):
        raise ResultsError(f"{what}: a symbolic link loop") from None
    if not resolved.is_relative_to(root):
        raise ResultsError(f"{what} points outside the model folder ({resolved}); refusing to read it")
    return resolved


def _check_tokenizer_json(root: Path, folder: Path, path: Path) -> None:
    """The JSON files of the tokenizer folder: valid JSON, the marker's kind a string, every named file inside."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, OSError) as error:
        raise ResultsError(f"{path} is not valid JSON: {' '.join(str(error).split())}") from None
    # The marker's other fields belong to its tokenizer kind, whose loader checks them (plugins define their own).
    if path.name == TOKENIZER_MARKER and not (isinstance(payload, dict) and isinstance(payload.get("kind"), str)):
        raise ResultsError(f"{path}: expected a JSON object with a 'kind' string")
    for key, value in _file_fields(payload):
        inside(root, folder / value, f"{path}: {key} {value!r}")


def _file_fields(value: Any, key: str = "") -> list[tuple[str, str]]:
    """``(key, file name)`` for every string under a key ending in ``_file``/``_files`` (at any depth)."""
    if isinstance(value, dict):
        return [found for name, item in value.items() for found in _file_fields(item, str(name))]
    names_a_file = key.endswith(("_file", "_files"))
    if isinstance(value, list):
        return [found for item in value for found in _file_fields(item, key)] if names_a_file else []
    return [(key, value)] if names_a_file and isinstance(value, str) and value else []


def export_model(source: Path, target: Path, scores: dict[str, float] | None = None) -> list[Path]:
    """Copy the saved model in ``source`` into the new or empty folder ``target``; returns the files written.

    ``scores`` (test macro-F1, accuracy, ...) are added to the exported ``model.json``.
    The copy is staged beside ``target`` and renamed into place (``model.json`` last), so ``target`` never
    holds half a model.
    """
    card = check_model_folder(source)
    unportable = unportable_files(source)
    if unportable:
        raise ResultsError(
            f"{source} holds {unportable[0].name}, which is not a JSON, text, safetensors or "
            "sentencepiece file; it will not be exported"
        )
    target = Path(os.path.abspath(target))  # "." and "dir/.." name their folder
    with staged_folder(target) as staging:
        shutil.copy2(source / WEIGHTS_FILE, staging / WEIGHTS_FILE)
        shutil.copytree(source / TOKENIZER_DIR, staging / TOKENIZER_DIR)
        if scores:
            card.scores = dict(scores)
        card.write(staging)
    return sorted(path for path in target.rglob("*") if path.is_file())


@contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """A staging folder beside the new or empty folder ``target``, moved into place when the block succeeds.

    ``target`` never holds half a model: on any error the staging folder is removed and ``target`` is untouched.
    An empty ``target`` (perhaps the current folder) is kept and the files move in, ``model.json`` last, so the
    folder is a loadable model only once complete.
    """
    if not target.name:
        raise UsageError(f"{target} cannot hold an exported model; choose a new folder")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"{target} already exists and is not an empty folder; choose a new folder")
    staging = target.with_name(f".{target.name}.export-{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        yield staging
        if target.exists():
            for path in sorted(staging.iterdir(), key=lambda path: path.name == MODEL_CARD):
                path.rename(target / path.name)
            staging.rmdir()
        else:
            staging.rename(target)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise ResultsError(f"cannot export the model to {target}: {error.strerror or error}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
