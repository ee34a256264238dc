"""Feature cache: a frozen encoder's outputs, computed once and read memory-mapped by every head.

With ``--freeze-encoder`` the encoder is a fixed function of the token ids, so its
outputs (token states, attention mask, sentence vector) can be computed in one pass
and every head trained from them. An entry lives in
``<results>/cache/features/<key>/`` as ``.npy`` files (float16 token states stored
ragged, float16 sentence vectors, int64 offsets; the attention mask is the prefix of
each text's length) plus ``meta.json``, written last. The key is a digest of the
encoder's architecture and actual weights (so the weights' source, a random-init
seed and any config override are all covered), of the token ids (tokenizer, texts,
``max_len``) and of the precision and device type the features are computed with.

The live frozen path (:class:`bench.training.module.EmotionClassifier`) rounds the
encoder outputs to float16 too, so training from the cache computes what training
through the frozen encoder computes, up to floating-point noise.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from bench.model.classifier import FEATURE_DTYPE
from bench.model.padding import PadCollator, label_array, label_tensor
from bench.training.batching import eval_batches
from bench.training.tokencache import TokenArrays
from encoders.base import TextEncoder

FORMAT_VERSION = 1
FEATURES_DIR = "features"
META_FILE = "meta.json"
_FILES = {"token_states": "token_states.npy", "sentence_vectors": "sentence_vectors.npy", "offsets": "offsets.npy"}
_AUTOCAST = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}

# (index in the split, token states (length, hidden), sentence vector (hidden,), class id)
FeatureExample = tuple[int, np.ndarray, np.ndarray, np.ndarray]


class FeatureArrays:
    """The cached outputs of one encoder over many texts, opened memory-mapped on first use.

    Pickling keeps only the folder, so DataLoader workers map the files themselves.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._arrays: dict[str, np.ndarray] | None = None

    def _open(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            self._arrays = {
                name: np.load(self.directory / file, mmap_mode="r", allow_pickle=False) for name, file in _FILES.items()
            }
        return self._arrays

    def __getstate__(self) -> dict[str, Any]:
        return {"directory": self.directory, "_arrays": None}

    @property
    def token_states(self) -> np.ndarray:
        """Float16 ``(total tokens, hidden)``: the states of text ``i`` are rows ``offsets[i]:offsets[i + 1]``."""
        return self._open()["token_states"]

    @property
    def sentence_vectors(self) -> np.ndarray:
        """Float16 ``(texts, hidden)``."""
        return self._open()["sentence_vectors"]

    @property
    def offsets(self) -> np.ndarray:
        """Int64 ``(texts + 1,)`` row boundaries of each text's token states."""
        return self._open()["offsets"]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def hidden_size(self) -> int:
        """Width of the token states."""
        return int(self.token_states.shape[1])

    def states(self, index: int) -> np.ndarray:
        """Token states of text ``index`` (a read-only view)."""
        return self.token_states[self.offsets[index] : self.offsets[index + 1]]


class FeatureDataset(Dataset):
    """One split's slice ``start:start + len(labels)`` of a :class:`FeatureArrays`, with its labels."""

    def __init__(self, features: FeatureArrays, start: int, labels: Sequence[int] | np.ndarray) -> None:
        if start < 0 or start + len(labels) > len(features):
            raise ValueError(f"split {start}:{start + len(labels)} lies outside the {len(features)} cached texts")
        self.features = features
        self.start = start
        self.labels = label_array(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> FeatureExample:
        position = self.start + index
        return index, self.features.states(position), self.features.sentence_vectors[position], self.labels[index]


class FeatureCollator:
    """Pads cached token states to the longest text of the batch (float16, right padding)."""

    def __call__(self, examples: Sequence[FeatureExample]) -> dict[str, torch.Tensor]:
        lengths = np.fromiter((len(states) for _, states, _, _ in examples), dtype=np.int64, count=len(examples))
        hidden = examples[0][1].shape[1]
        token_states = np.zeros((len(examples), int(lengths.max()), hidden), dtype=np.float16)
        for row, (_, states, _, _) in enumerate(examples):
            token_states[row, : lengths[row]] = states
        return {
            "index": torch.tensor([index for index, _, _, _ in examples], dtype=torch.long),
            "token_states": torch.from_numpy(token_states),
            "attention_mask": torch.from_numpy(np.arange(token_states.shape[1]) < lengths[:, None]),
            "sentence_vector": torch.from_numpy(np.stack([vector for _, _, vector, _ in examples])),
            "labels": label_tensor([label for _, _, _, label in examples]),
        }


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a Lightning precision (``bf16-mixed`` → bfloat16), ``None`` for full precision."""
    return _AUTOCAST.get(precision)


def encoder_digest(encoder: TextEncoder) -> str:
    """SHA-256 of the encoder's class, module structure, model config and every weight and buffer."""
    digest = hashlib.sha256(f"{type(encoder).__module__}.{type(encoder).__qualname__}\n{encoder!r}".encode())
    config = getattr(getattr(encoder, "model", None), "config", None)
    if config is not None and hasattr(config, "to_json_string"):
        digest.update(config.to_json_string().encode())
    for name, tensor in sorted(encoder.state_dict().items()):
        data = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"\n{name}|{data.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(data.view(torch.uint8).numpy().data)
    return digest.hexdigest()


def feature_cache_key(encoder: TextEncoder, tokens: TokenArrays, *, precision: str, device_type: str) -> str:
    """The cache key (40 hex characters) of ``encoder``'s outputs on ``tokens``."""
    parts = [f"v{FORMAT_VERSION}", encoder_digest(encoder), tokens.digest(), precision, device_type, str(FEATURE_DTYPE)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]


@torch.inference_mode()
def compute_features(
    encoder: TextEncoder,
    tokens: TokenArrays,
    pad_id: int,
    directory: Path,
    *,
    device: torch.device,
    precision: str,
    batch_size: int = 256,
) -> None:
    """Run ``encoder`` (eval mode, on ``device``) over ``tokens`` in length-sorted batches and write its outputs.

    The encoder is left on ``device`` with every submodule's train/eval mode as it was.

    ``directory`` must not exist; the files are written into it and ``meta.json`` last.
    """
    directory.mkdir(parents=True)
    total, hidden = int(tokens.offsets[-1]), int(encoder.hidden_size)
    states = np.lib.format.open_memmap(directory / _FILES["token_states"], "w+", np.float16, (total, hidden))
    vectors = np.lib.format.open_memmap(directory / _FILES["sentence_vectors"], "w+", np.float16, (len(tokens), hidden))
    np.save(directory / _FILES["offsets"], tokens.offsets)
    dtype = autocast_dtype(precision)
    collate = PadCollator(pad_id)
    modes = {module: module.training for module in encoder.modules()}
    encoder.eval()
    encoder.to(device)
    try:
        for chosen in eval_batches(tokens.lengths, batch_size, by_length=True):
            batch = collate([(index, tokens.sequence(index), 0) for index in chosen])
            input_ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
            autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
            with autocast:
                output = encoder(input_ids, mask)
            if output.attention_mask.shape != mask.shape or not torch.equal(output.attention_mask.bool(), mask.bool()):
                raise ValueError(f"{type(encoder).__name__} changes the attention mask: its outputs cannot be cached")
            token_states = output.token_states.to(FEATURE_DTYPE).cpu().numpy()
            vectors[chosen] = output.sentence_vector.to(FEATURE_DTYPE).cpu().numpy()
            for row, index in enumerate(chosen):
                start, stop = tokens.offsets[index], tokens.offsets[index + 1]
                states[start:stop] = token_states[row, : stop - start]
    finally:
        for module, training in modes.items():
            module.training = training
    states.flush()
    vectors.flush()
    del states, vectors
    meta = {"format_version": FORMAT_VERSION, "texts": len(tokens), "tokens": total, "hidden_size": hidden}
    (directory / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def read_features(directory: Path, tokens: TokenArrays, hidden_size: int) -> FeatureArrays | None:
    """The entry in ``directory`` if it is complete and matches ``tokens``; else ``None``."""
    try:
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        features = FeatureArrays(directory)
        consistent = (
            meta.get("format_version") == FORMAT_VERSION
            and features.token_states.shape == (int(tokens.offsets[-1]), hidden_size)
            and features.token_states.dtype == np.float16
            and features.sentence_vectors.shape == (len(tokens), hidden_size)
            and np.array_equal(features.offsets, tokens.offsets)
        )
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    return features if consistent else None


def cached_features(
    encoder: TextEncoder,
    tokens: TokenArrays,
    pad_id: int,
    cache_dir: Path,
    *,
    device: torch.device,
    precision: str,
    batch_size: int = 256,
) -> tuple[FeatureArrays, bool]:
    """The outputs of the frozen ``encoder`` on ``tokens`` from ``cache_dir``, computed and stored on a miss.

    Returns the features and whether they came from the cache. A damaged entry is
    replaced; an entry is renamed into place only once complete, so concurrent runs
    never read a partial one.
    """
    key = feature_cache_key(encoder, tokens, precision=precision, device_type=device.type)
    final = cache_dir / FEATURES_DIR / key
    hidden = int(encoder.hidden_size)
    found = read_features(final, tokens, hidden)
    if found is not None:
        return found, True
    if final.exists():
        shutil.rmtree(final, ignore_errors=True)
    staging = final.with_name(f".{key}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        compute_features(encoder, tokens, pad_id, staging, device=device, precision=precision, batch_size=batch_size)
        os.rename(staging, final)
    except OSError:
        if read_features(final, tokens, hidden) is None:  # not another run storing the same entry first
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    features = read_features(final, tokens, hidden)
    if features is None:
        raise OSError(f"the feature cache entry {final} could not be read back after writing it")
    return features, False
