"""Prediction from an ONNX model folder with ONNX Runtime: no torch, no Lightning, no transformers.

A folder written by ``bench export-model --format onnx`` holds ``model.onnx`` (encoder and head in
one graph: ``input_ids`` and ``attention_mask`` of any batch size and length in, ``logits`` out),
``tokenizer/`` and ``model.json``. Sentencepiece tokenizers load through :mod:`encoders.spm`,
Hugging Face ones from their ``tokenizer.json`` with the ``tokenizers`` library.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bench.errors import ResultsError, UsageError
from bench.inference.model_files import TOKENIZER_DIR, ModelCard
from bench.inference.predictions import DEFAULT_BATCH_SIZE, TextPrediction, length_sorted_batches
from bench.model.padding import pad_rows
from bench.tasks import Task, task_named

ONNX_FILE = "model.onnx"
HF_TOKENIZER_FILE = "tokenizer.json"


class BatchTokenizer(Protocol):
    """What prediction needs from a tokenizer: ids of many texts with special tokens, truncated."""

    def encode_batch(self, texts: Sequence[str], max_len: int) -> list[list[int]]: ...


class TokenizerFile:
    """A Hugging Face fast tokenizer read from its ``tokenizer.json`` with the ``tokenizers`` library alone.

    ``prefix`` goes before every text, as the saved tokenizer's marker says (e5-small's ``query: ``).
    """

    def __init__(self, path: Path, prefix: str = "") -> None:
        from tokenizers import Tokenizer

        self.prefix = prefix

        try:
            self._tokenizer = Tokenizer.from_file(str(path))
        except Exception as error:  # noqa: BLE001  the Rust library raises a bare Exception on a malformed file
            raise ResultsError(f"{path}: cannot read the tokenizer ({' '.join(str(error).split())[:200]})") from None
        self._tokenizer.no_padding()

    def encode_batch(self, texts: Sequence[str], max_len: int) -> list[list[int]]:
        """Ids of ``texts`` with the tokenizer's special tokens, truncated to ``max_len``."""
        self._tokenizer.enable_truncation(max_len)
        return [encoding.ids for encoding in self._tokenizer.encode_batch([self.prefix + text for text in texts])]


def is_onnx_folder(directory: Path) -> bool:
    """Whether ``directory`` holds an ONNX model (``model.onnx``)."""
    return (directory / ONNX_FILE).is_file()


def load_batch_tokenizer(directory: Path) -> BatchTokenizer:
    """The tokenizer saved in ``directory`` without torch: sentencepiece via :mod:`encoders.spm`, else
    ``tokenizer.json``."""
    from encoders.registry import load_tokenizer, read_tokenizer_marker

    marker = read_tokenizer_marker(directory)
    if marker.get("kind") == "hf":
        path = directory / HF_TOKENIZER_FILE
        if not path.is_file():
            raise ResultsError(f"{directory} lacks {HF_TOKENIZER_FILE}; an ONNX folder needs a fast tokenizer")
        return TokenizerFile(path, str(marker.get("prefix", "")))
    import encoders.spm  # noqa: F401  (registers the sentencepiece loader, torch-free)

    return load_tokenizer(directory, marker=marker)


class OnnxPredictor:
    """An ONNX model folder ready to classify texts on CPU with ONNX Runtime."""

    def __init__(self, card: ModelCard, session: Any, tokenizer: BatchTokenizer, pad_id: int) -> None:
        self.card = card
        self.session = session
        self.tokenizer = tokenizer
        self.pad_id = pad_id

    @property
    def labels(self) -> list[str]:
        """Class names; a label's position is its class id."""
        return list(self.card.labels)

    @classmethod
    def load(cls, directory: Path, threads: int | None = None) -> OnnxPredictor:
        """Open the ONNX model in ``directory``; ``threads`` caps ONNX Runtime's intra-op threads
        (default: all cores)."""
        try:
            import onnxruntime
        except ImportError:
            raise UsageError(
                f"{directory} holds an ONNX model; install ONNX Runtime to use it: pip install 'ko-emotion-bench[onnx]'"
            ) from None
        card = ModelCard.read(directory)
        if "pad_id" not in card.onnx:
            raise ResultsError(f"{directory / 'model.json'}: field 'onnx' lacks the pad id; export the model again")
        tokenizer = load_batch_tokenizer(directory / TOKENIZER_DIR)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or 0
        options.log_severity_level = 3
        try:
            session = onnxruntime.InferenceSession(
                str(directory / ONNX_FILE), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # noqa: BLE001  onnxruntime raises its own exception types for unreadable graphs
            problem = " ".join(str(error).split())[:200]
            raise ResultsError(f"{directory / ONNX_FILE}: ONNX Runtime cannot load it ({problem})") from None
        return cls(card, session, tokenizer, int(card.onnx["pad_id"]))

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Class logits of one right-padded int64 batch."""
        return self.session.run(["logits"], {"input_ids": input_ids, "attention_mask": attention_mask})[0]

    @property
    def task(self) -> Task:
        """Single-label or multi-label: how logits become probabilities and labels."""
        return task_named(self.card.task)

    def probabilities(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Probabilities ``(len(texts), len(labels))``, rows in the order of ``texts`` (the task's, from logits)."""
        if batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
        ids = self.tokenizer.encode_batch(list(texts), self.card.max_len)
        result = np.zeros((len(ids), len(self.card.labels)), dtype=np.float32)
        for chosen in length_sorted_batches([len(row) for row in ids], batch_size):
            input_ids, attention_mask = pad_rows([ids[index] for index in chosen], self.pad_id)
            result[chosen] = self.task.probabilities(self.logits(input_ids, attention_mask))
        return result

    def predict(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> list[TextPrediction]:
        """The label (multi-label: every label over its threshold) and per-label probabilities of each text."""
        return self.task.text_predictions(
            texts, self.labels, self.probabilities(texts, batch_size), self.card.thresholds
        )
