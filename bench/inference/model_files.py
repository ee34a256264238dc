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
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.config import RunConfig
from bench.data.types import SplitDataset
from bench.errors import ResultsError, UsageError
from bench.plugins import plugin_of
from encoders import encoder_entry
from encoders.base import TextEncoder
from heads import head_class, resolve_head_params

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
    ``task`` is ``single`` or ``multilabel``; a multi-label model keeps the
    decision threshold of each label (tuned on validation) in ``thresholds``.
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

    def write(self, directory: Path) -> None:
        """Write ``model.json`` into ``directory``."""
        payload = {"format": FORMAT, "version": FORMAT_VERSION, **asdict(self)}
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
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ResultsError(f"{path} is not valid JSON: {error}") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ResultsError(f"{path} is not a ko-emotion-bench model card (its format is not {FORMAT!r})")
        if payload.get("version") != FORMAT_VERSION:
            raise ResultsError(f"{path}: model format version {payload.get('version')!r} is not supported "
                               f"(this bench reads version {FORMAT_VERSION})")
        expected = {
            "run_id": str, "encoder": str, "model_type": str, "encoder_config": dict, "head": str,
            "head_params": dict, "labels": list, "max_len": int, "dataset": str, "fingerprint": str,
        }
        for key, kind in expected.items():
            if not isinstance(payload.get(key), kind):
                raise ResultsError(f"{path}: field {key!r} is missing or not a {kind.__name__}")
        if not payload["labels"] or not all(isinstance(label, str) for label in payload["labels"]):
            raise ResultsError(f"{path}: field 'labels' must be a non-empty list of strings")
        if not isinstance(payload.get("plugins", {}), dict):
            raise ResultsError(f"{path}: field 'plugins' is not a dict")
        task = payload.get("task", "single")
        thresholds = payload.get("thresholds", [])
        if task not in ("single", "multilabel"):
            raise ResultsError(f"{path}: field 'task' must be 'single' or 'multilabel', got {task!r}")
        if task == "multilabel" and (
            not isinstance(thresholds, list) or len(thresholds) != len(payload["labels"])
            or not all(isinstance(value, (int, float)) for value in thresholds)
        ):
            raise ResultsError(f"{path}: a multilabel model needs one number in 'thresholds' per label")
        optional = ("scores", "plugins", "task", "thresholds")
        return cls(**{key: payload[key] for key in (*expected, *optional) if key in payload})


def write_model_card(
    directory: Path, *, run_id: str, config: RunConfig, dataset: SplitDataset, encoder: TextEncoder,
    thresholds: list[float] | None = None,
) -> None:
    """Write the ``model.json`` of a run trained with ``config`` on ``dataset`` (multi-label: with ``thresholds``)."""
    architecture = encoder.architecture()
    sources = {"head": head_class(config.head).__module__, "encoder": encoder_entry(config.encoder).module}
    plugins = {part: plugin for part, module in sources.items() if (plugin := plugin_of(module)) is not None}
    ModelCard(
        run_id=run_id,
        encoder=config.encoder,
        model_type=str(architecture.get("model_type", type(encoder).__name__)),
        encoder_config=architecture,
        head=config.head,
        head_params=resolve_head_params(config.head, config.head_kwargs),
        labels=list(dataset.labels),
        max_len=config.max_len,
        dataset=dataset.name,
        fingerprint=dataset.fingerprint,
        plugins=plugins,
        task=dataset.task,
        thresholds=list(thresholds or []),
    ).write(directory)


def unportable_files(directory: Path) -> list[Path]:
    """Files under ``directory`` that are not JSON, text, safetensors or sentencepiece models."""
    return sorted(path for path in directory.rglob("*") if path.is_file() and path.suffix not in PORTABLE_SUFFIXES)


def check_model_folder(directory: Path) -> ModelCard:
    """The card of a complete saved model folder; :class:`ResultsError` naming what is missing."""
    card = ModelCard.read(directory)
    for name in (WEIGHTS_FILE, TOKENIZER_DIR):
        if not (directory / name).exists():
            raise ResultsError(f"{directory} is not a complete saved model: {name} is missing")
    return card


def export_model(source: Path, target: Path, scores: dict[str, float] | None = None) -> list[Path]:
    """Copy the saved model in ``source`` into the new or empty folder ``target``; returns the files written.

    ``scores`` (test macro-F1, accuracy, ...) are added to the exported ``model.json``.
    The copy is staged beside ``target`` and renamed into place, so ``target`` never holds half a model.
    """
    card = check_model_folder(source)
    unportable = unportable_files(source)
    if unportable:
        raise ResultsError(f"{source} holds {unportable[0].name}, which is not a JSON, text, safetensors or "
                           "sentencepiece file; it will not be exported")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"{target} already exists and is not an empty folder; choose a new folder")
    staging = target.with_name(f".{target.name}.export-{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        shutil.copy2(source / WEIGHTS_FILE, staging / WEIGHTS_FILE)
        shutil.copytree(source / TOKENIZER_DIR, staging / TOKENIZER_DIR)
        if scores:
            card.scores = dict(scores)
        card.write(staging)
        if target.exists():
            target.rmdir()
        staging.rename(target)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise ResultsError(f"cannot export the model to {target}: {error.strerror or error}") from None
    return sorted(path for path in target.rglob("*") if path.is_file())
