"""Labels and probabilities for new texts from a saved model folder (weights loaded as safetensors only)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from bench.errors import PluginError, ResultsError, UsageError
from bench.inference.model_files import TOKENIZER_DIR, WEIGHTS_FILE, ModelCard, check_model_folder
from bench.inference.predictions import DEFAULT_BATCH_SIZE, TextPrediction, length_sorted_batches
from bench.machine.devices import torch_device
from bench.model.classifier import SavedClassifier, feature_dtype_named
from bench.model.padding import PadCollator
from bench.tasks import Task, task_named
from encoders import TextTokenizer, encoder_entry, find_encoder, load_tokenizer
from encoders.base import TextEncoder
from heads import create_head, list_heads


class Predictor:
    """A saved model ready to classify texts."""

    def __init__(self, card: ModelCard, model: SavedClassifier, tokenizer: TextTokenizer, device: torch.device) -> None:
        self.card = card
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.device = device

    @property
    def labels(self) -> list[str]:
        """Class names; a label's position is its class id."""
        return list(self.card.labels)

    @classmethod
    def load(cls, directory: Path, device: str = "cpu") -> Predictor:
        """Rebuild the model saved in ``directory`` (no hub, no database) on ``device`` (cpu, cuda[:N], auto)."""
        card = check_model_folder(directory)
        check_plugins(card, directory)
        tokenizer = load_tokenizer(directory / TOKENIZER_DIR)
        encoder = rebuild_encoder(card)
        head = create_head(card.head, encoder.hidden_size, len(card.labels), card.head_params)
        try:
            feature_dtype = feature_dtype_named(card.feature_dtype)
        except KeyError:
            raise ResultsError(f"{directory}: unknown feature_dtype {card.feature_dtype!r} in model.json") from None
        model = SavedClassifier(encoder, head, feature_dtype=feature_dtype)
        load_weights(model, directory / WEIGHTS_FILE)
        return cls(card, model, tokenizer, torch_device(device))

    @torch.inference_mode()
    def probabilities(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Probabilities ``(len(texts), len(labels))``, rows in the order of ``texts`` (the task's, from logits)."""
        if batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
        ids = self.tokenizer.encode_batch(list(texts), self.card.max_len)
        collate = PadCollator(self.tokenizer.pad_id)
        result = np.zeros((len(ids), len(self.card.labels)), dtype=np.float32)
        for chosen in length_sorted_batches([len(row) for row in ids], batch_size):
            batch = collate([(index, ids[index], 0) for index in chosen])
            logits = self.model(batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device))
            result[chosen] = self.task.probabilities(logits.float().cpu().numpy())
        return result

    @property
    def task(self) -> Task:
        """Single-label or multi-label: how logits become probabilities and labels."""
        return task_named(self.card.task)

    def predict(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> list[TextPrediction]:
        """The label (multi-label: every label over its threshold) and per-label probabilities of each text."""
        return self.task.text_predictions(
            texts, self.labels, self.probabilities(texts, batch_size), self.card.thresholds
        )


def check_plugins(card: ModelCard, directory: Path) -> None:
    """Raise :class:`PluginError` naming the plugin to load when the card's head or encoder is not registered."""
    registered = {"head": card.head in list_heads(), "encoder": find_encoder(card.encoder) is not None}
    for part, name in (("head", card.head), ("encoder", card.encoder)):
        if registered[part]:
            continue
        plugin = card.plugins.get(part)
        if plugin is None:
            raise ResultsError(f"{directory}: its {part} {name!r} is not registered here")
        raise PluginError(f"{directory}: its {part} {name!r} comes from the plugin {plugin!r}; pass --plugin {plugin}")


def rebuild_encoder(card: ModelCard) -> TextEncoder:
    """The encoder of ``card``, rebuilt by its registry entry from the saved architecture (weights come afterwards)."""
    return encoder_entry(card.encoder).rebuild(card.encoder_config)


def load_weights(model: SavedClassifier, path: Path) -> None:
    """Load the ``encoder.*``/``head.*`` tensors of a safetensors file into ``model`` (every key must match)."""
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise ResultsError(f"{path}: cannot read the weights ({error})") from None
    wanted = {name: tensor for name, tensor in state.items() if name.startswith(("encoder.", "head."))}
    try:
        model.load_state_dict(wanted, strict=True)
    except RuntimeError as error:
        problem = " ".join(str(error).split())[:200]
        raise ResultsError(f"{path}: the weights do not fit the architecture in model.json ({problem})") from None
