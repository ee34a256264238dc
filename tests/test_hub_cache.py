"""The path users take: ``bench run --encoder kobert|koelectra|hf:<id>`` with no ``--encoder-path``.

Each test builds a Hugging Face cache in a temporary ``HF_HOME`` (offline) holding a repo in the hub cache
layout (``hub/models--ORG--NAME/{blobs,snapshots/<rev>,refs/main}``) with the files that repo serves, but with
a tiny config and random weights carrying a marker value. The run happens in a fresh process (the hub reads
``HF_HOME`` when it is imported), and the marker must reach the exported model.

The tokenizer files are copied from ../shared into the temporary cache at test time (never into the
repository); the tests skip when ../shared is absent.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import BertConfig, BertModel, ElectraConfig, ElectraForPreTraining

from bench.inference.model_files import WEIGHTS_FILE, export_model
from bench.leaderboard.store import Leaderboard
from bench.training.runner import run_directory
from tests.conftest import ROOT, shared_path

pytestmark = pytest.mark.slow

MARKER = 0.123
MARKED_TOKEN = 5  # a vocabulary row set to MARKER in the cached weights
REVISION = "0123456789abcdef0123456789abcdef01234567"
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


def add_repo(hf_home: Path, repo_id: str, files: dict[str, bytes]) -> Path:
    """Write ``files`` as repo ``repo_id`` into the hub cache under ``hf_home``: blobs, snapshot links, refs/main."""
    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / REVISION
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(REVISION, encoding="utf-8")
    for name, content in files.items():
        blob = repo / "blobs" / hashlib.sha256(content).hexdigest()
        blob.write_bytes(content)
        (snapshot / name).symlink_to(os.path.relpath(blob, snapshot))
    return snapshot


def torch_bytes(state_dict: dict[str, torch.Tensor], path: Path) -> bytes:
    """``state_dict`` as a ``pytorch_model.bin`` (what the two default repos serve)."""
    torch.save(state_dict, path)
    return path.read_bytes()


def marked(model: torch.nn.Module, embedding: torch.nn.Embedding) -> torch.nn.Module:
    with torch.no_grad():
        embedding.weight[MARKED_TOKEN] = MARKER
    return model


def json_bytes(value: dict) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2).encode("utf-8")


def kobert_repo(hf_home: Path, scratch: Path) -> None:
    """``skt/kobert-base-v1``: config.json, pytorch_model.bin (``BertModel`` keys), spiece.model, tokenizer files."""
    folder = shared_path("models/kobert")
    config = BertConfig(vocab_size=8002, pad_token_id=1, architectures=["BertModel"], **TINY)
    torch.manual_seed(0)
    model = BertModel(config)
    marked(model, model.embeddings.word_embeddings)
    add_repo(
        hf_home,
        "skt/kobert-base-v1",
        {
            "config.json": json_bytes(config.to_dict()),
            "pytorch_model.bin": torch_bytes(model.state_dict(), scratch / "kobert.bin"),
            "spiece.model": (folder / "spiece.model").read_bytes(),
            "tokenizer_config.json": (folder / "tokenizer_config.json").read_bytes(),
            "special_tokens_map.json": json_bytes(
                {
                    "bos_token": "[CLS]",
                    "eos_token": "[SEP]",
                    "unk_token": "[UNK]",
                    "sep_token": "[SEP]",
                    "pad_token": "[PAD]",
                    "cls_token": "[CLS]",
                    "mask_token": "[MASK]",
                }
            ),
        },
    )


def koelectra_repo(hf_home: Path, scratch: Path) -> None:
    """``monologg/koelectra-base-v3-discriminator``: weights saved from ``ElectraForPreTraining`` (``electra.``)."""
    folder = shared_path("models/koelectra-base-v3")
    config = ElectraConfig(vocab_size=35000, embedding_size=32, architectures=["ElectraForPreTraining"], **TINY)
    torch.manual_seed(0)
    model = ElectraForPreTraining(config)
    marked(model, model.electra.embeddings.word_embeddings)
    state = model.state_dict()
    assert all(key.startswith(("electra.", "discriminator_predictions.")) for key in state)
    add_repo(
        hf_home,
        "monologg/koelectra-base-v3-discriminator",
        {
            "config.json": json_bytes(config.to_dict()),
            "pytorch_model.bin": torch_bytes(state, scratch / "koelectra.bin"),
            "vocab.txt": (folder / "vocab.txt").read_bytes(),
            "tokenizer_config.json": (folder / "tokenizer_config.json").read_bytes(),
        },
    )


def hf_repo(hf_home: Path, scratch: Path, repo_id: str) -> None:
    """An ``hf:`` repo with a safetensors checkpoint and a WordPiece tokenizer."""
    folder = shared_path("models/koelectra-base-v3")
    config = BertConfig(vocab_size=35000, pad_token_id=0, architectures=["BertModel"], **TINY)
    torch.manual_seed(0)
    model = BertModel(config)
    marked(model, model.embeddings.word_embeddings)
    saved = scratch / "hf-model"
    model.save_pretrained(saved, safe_serialization=True)
    add_repo(
        hf_home,
        repo_id,
        {
            "config.json": (saved / "config.json").read_bytes(),
            "model.safetensors": (saved / "model.safetensors").read_bytes(),
            "vocab.txt": (folder / "vocab.txt").read_bytes(),
            "tokenizer_config.json": json_bytes({"tokenizer_class": "BertTokenizer", "do_lower_case": False}),
        },
    )


def bench_offline(hf_home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``bench`` CLI in a fresh process that sees only the cache under ``hf_home``, offline."""
    env = {
        **os.environ,
        "HF_HOME": str(hf_home),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
    }
    env.pop("HF_HUB_CACHE", None)
    env.pop("HUGGINGFACE_HUB_CACHE", None)
    command = [sys.executable, "-c", "from bench.cli import main; main()", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def run_and_export(hf_home: Path, results: Path, target: Path, encoder: str) -> dict[str, torch.Tensor]:
    """Train one tiny run from the cache (no --encoder-path, no --random-init), export it, read its weights."""
    done = bench_offline(
        hf_home,
        "run",
        "--encoder",
        encoder,
        "--head",
        "linear",
        "--data",
        "sample",
        "--train-limit",
        "40",
        "--epochs",
        "1",
        "--max-len",
        "16",
        "--batch-size",
        "16",
        "--device",
        "cpu",
        "--results",
        str(results),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with Leaderboard.for_results_dir(results) as board:
        [record] = board.runs("finished")
    assert record.encoder == encoder and record.config["encoder_path"] is None
    assert not record.config["random_init"]
    export_model(run_directory(results, record.run_id), target)
    with safe_open(str(target / WEIGHTS_FILE), framework="pt") as weights:
        return {name: weights.get_tensor(name) for name in weights.keys() if name.endswith("word_embeddings.weight")}


def assert_marker(embeddings: dict[str, torch.Tensor]) -> None:
    """The marked row arrived (one epoch of training at lr 3e-5 moves it by far less than 1e-3)."""
    [(name, table)] = embeddings.items()
    assert name.startswith("encoder."), name
    row = table[MARKED_TOKEN]
    assert torch.allclose(row, torch.full_like(row, MARKER), atol=1e-3), (name, row[:4])
    assert not torch.allclose(table[MARKED_TOKEN + 1], torch.full_like(row, MARKER), atol=1e-3)


@pytest.mark.parametrize(("encoder", "build"), [("kobert", kobert_repo), ("koelectra", koelectra_repo)])
def test_default_encoders_load_from_the_hub_cache(tmp_path: Path, encoder: str, build) -> None:
    hf_home = tmp_path / "hf"
    build(hf_home, tmp_path)
    assert_marker(run_and_export(hf_home, tmp_path / "results", tmp_path / "exported", encoder))


def test_hf_encoder_with_a_safetensors_checkpoint_loads_from_the_hub_cache(tmp_path: Path) -> None:
    hf_home = tmp_path / "hf"
    hf_repo(hf_home, tmp_path, "bench-tests/tiny-korean-bert")
    encoder = "hf:bench-tests/tiny-korean-bert"
    assert_marker(run_and_export(hf_home, tmp_path / "results", tmp_path / "exported", encoder))


def test_a_missing_repo_is_a_one_line_error_naming_the_cache(tmp_path: Path) -> None:
    hf_home = tmp_path / "hf"
    (hf_home / "hub").mkdir(parents=True)
    done = bench_offline(
        hf_home,
        "run",
        "--encoder",
        "kobert",
        "--data",
        "sample",
        "--train-limit",
        "40",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--results",
        str(tmp_path / "results"),
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "skt/kobert-base-v1" in lines[0] and str(hf_home / "hub") in lines[0], done.stderr


def test_the_cache_layout_is_what_the_hub_client_reads(tmp_path: Path) -> None:
    """Guard for the helper above: huggingface_hub resolves a file of the built cache offline."""
    hf_home = tmp_path / "hf"
    add_repo(hf_home, "org/name", {"config.json": b"{}"})
    script = "from huggingface_hub import hf_hub_download; print(hf_hub_download('org/name', 'config.json'))"
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).resolve().read_bytes() == b"{}"
