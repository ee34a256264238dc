"""ONNX export and ONNX Runtime prediction: parity with PyTorch for every encoder family and head, no torch at start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed (pip install 'ko-emotion-bench[onnx]')")
pytest.importorskip("onnx", reason="onnx is not installed (pip install 'ko-emotion-bench[onnx]')")

from bench.data.types import DataOptions  # noqa: E402
from bench.inference.model_files import (  # noqa: E402
    MODEL_CARD,
    TOKENIZER_DIR,
    WEIGHTS_FILE,
    ModelCard,
    architecture_fields,
    save_model_folder,
)
from bench.inference.onnx_export import PARITY_TOLERANCE, export_onnx  # noqa: E402
from bench.inference.onnx_runtime import ONNX_FILE, OnnxPredictor  # noqa: E402
from bench.inference.predictor import Predictor, SavedClassifier  # noqa: E402
from heads import create_head, resolve_head_params  # noqa: E402
from tests.conftest import ROOT, run_cli  # noqa: E402
from tests.fixtures.data.builders import write_cued_multilabel  # noqa: E402
from tests.test_encoders import build  # noqa: E402
from tests.test_tokenizers import korean_sentences  # noqa: E402
from tests.tiny_runs import train_tiny_run  # noqa: E402

LABELS = ["기쁨", "당황", "분노", "불안", "상처", "슬픔"]
HEADS = [
    ("linear", {}),
    ("mlp", {}),
    ("layernorm-mlp", {}),
    ("cnn", {"kernel_sizes": "2,3,4"}),
    ("cnn", {"kernel_sizes": "1,2,3,4,5"}),  # a kernel wider than the shortest texts
    ("bilstm", {"pooling": "last"}),
    ("bilstm", {"pooling": "mean", "lstm_layers": 2}),
    ("bilstm", {"pooling": "max"}),
]
# One word up to a sentence longer than max_len, so every batch mixes lengths and one text is truncated.
TEXTS = ["좋아", "화가 나요", *korean_sentences(24, seed=3), " ".join(korean_sentences(12, seed=4))]
TORCH_MODULES = ("torch", "lightning", "pytorch_lightning", "transformers")


def saved_model_folder(tmp_path: Path, family: str, head: str, head_params: dict) -> Path:
    """A saved model folder (model.json, safetensors, tokenizer) of a random-weight tiny model, as a run writes one."""
    import torch

    torch.manual_seed(0)
    built = build(family, tmp_path)
    params = resolve_head_params(head, head_params)
    model = SavedClassifier(built.encoder, create_head(head, built.encoder.hidden_size, len(LABELS), params)).eval()
    card = ModelCard(
        run_id="0" * 12,
        encoder=family,
        **architecture_fields(built.encoder),
        head=head,
        head_params=params,
        labels=LABELS,
        max_len=24,
        dataset="test",
        fingerprint="f" * 64,
    )
    save_model_folder(tmp_path / "saved", model, built.tokenizer, card)
    return tmp_path / "saved"


@pytest.mark.slow
@pytest.mark.parametrize("family", ["scratch", "kobert", "koelectra-small"])
@pytest.mark.parametrize(("head", "head_params"), HEADS, ids=lambda value: str(value) if value else "")
def test_onnx_graph_matches_pytorch_under_padding(tmp_path: Path, family: str, head: str, head_params: dict) -> None:
    saved = saved_model_folder(tmp_path, family, head, head_params)
    exported = export_onnx(saved, tmp_path / "onnx")
    assert exported.parity_max_difference < PARITY_TOLERANCE
    assert sorted(path.name for path in (tmp_path / "onnx").iterdir()) == [MODEL_CARD, ONNX_FILE, TOKENIZER_DIR]
    expected = Predictor.load(saved).probabilities(TEXTS, batch_size=7)
    onnx = OnnxPredictor.load(tmp_path / "onnx")
    batched = onnx.probabilities(TEXTS, batch_size=7)
    alone = onnx.probabilities(TEXTS, batch_size=1)
    assert (batched.argmax(axis=1) == expected.argmax(axis=1)).all()
    assert np.abs(batched - expected).max() < PARITY_TOLERANCE
    # Padding never changes a result: each text alone (no padding) gives what it gives in a mixed batch.
    assert np.abs(batched - alone).max() < 1e-5


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=300)


@pytest.mark.parametrize("family", ["scratch", "koelectra-small"])
def test_onnx_prediction_imports_no_torch(tmp_path: Path, family: str) -> None:
    """Sentencepiece and Hugging Face tokenizers both load, and the graph runs, with torch never imported."""
    saved = saved_model_folder(tmp_path, family, "cnn", {})
    export_onnx(saved, tmp_path / "onnx")
    expected = [prediction.label for prediction in Predictor.load(saved).predict(TEXTS)]
    result = _run_python(
        "import json, sys\n"
        "from pathlib import Path\n"
        "from bench.inference.onnx_runtime import OnnxPredictor\n"
        f"predictions = OnnxPredictor.load(Path({str(tmp_path / 'onnx')!r})).predict({TEXTS!r})\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {TORCH_MODULES!r})\n"
        "print(json.dumps({'labels': [p.label for p in predictions], 'loaded': loaded}))\n"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["loaded"] == []
    assert report["labels"] == expected


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, str]:
    """One finished tiny scratch + bilstm run."""
    results = tmp_path_factory.mktemp("onnx") / "results"
    return results, train_tiny_run(results, head="bilstm").run_id


def test_export_model_onnx_with_quantisation_reports_its_effect(trained, tmp_path, capsys) -> None:
    results, run_id = trained
    code, out, err = run_cli(
        [
            "export-model",
            "--results",
            str(results),
            "--run",
            run_id,
            "--format",
            "onnx",
            "--quantize",
            str(tmp_path / "int8"),
        ],
        capsys,
    )
    assert code == 0, err
    assert "int8 dynamic quantisation on the test split (72 texts): accuracy" in " ".join(out.split())
    card = ModelCard.read(tmp_path / "int8")
    effect = card.onnx["quantization_effect"]
    assert card.onnx["quantization"] == "int8-dynamic" and effect["examples"] == 72
    assert 0 <= effect["accuracy_int8"] <= 1 and 0 <= effect["same_label"] <= 1
    assert not (tmp_path / "int8" / WEIGHTS_FILE).exists()
    code, out, err = run_cli(["predict", "--model", str(tmp_path / "int8"), "--json", *TEXTS[:3]], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["text"] for row in rows] == TEXTS[:3]
    assert all(abs(sum(row["probabilities"].values()) - 1) < 1e-5 for row in rows)


def test_quantisation_of_a_multilabel_run_is_scored_by_its_task(tmp_path, capsys) -> None:
    """Label sets at the tuned thresholds: the fp32 graph reproduces the run's macro-F1 over labels and exact match."""
    data = write_cued_multilabel(tmp_path / "cued.csv")
    results = tmp_path / "results"
    record = train_tiny_run(results, data=DataOptions(source=str(data)), max_len=16, lr=3e-3)
    assert record.metrics is not None and record.metrics.task == "multilabel"
    code, out, err = run_cli(
        [
            "export-model",
            "--results",
            str(results),
            "--run",
            record.run_id,
            "--format",
            "onnx",
            "--quantize",
            str(tmp_path / "int8"),
        ],
        capsys,
    )
    assert code == 0, err
    assert "texts): exact match" in " ".join(out.split())
    effect = ModelCard.read(tmp_path / "int8").onnx["quantization_effect"]
    assert effect["examples"] == int(record.environment["test_examples"])
    assert effect["macro_f1_fp32"] == pytest.approx(record.macro_f1, abs=1e-6)
    assert effect["accuracy_fp32"] == pytest.approx(record.accuracy, abs=1e-6)
    assert 0 <= effect["same_label"] <= 1


def test_predict_uses_the_onnx_graph_and_agrees_with_the_run(trained, tmp_path, capsys) -> None:
    results, run_id = trained
    assert (
        run_cli(
            ["export-model", "--results", str(results), "--run", run_id, "--format", "onnx", str(tmp_path / "fp32")],
            capsys,
        )[0]
        == 0
    )
    _, from_run, _ = run_cli(["predict", "--results", str(results), "--run", run_id, "--json", *TEXTS], capsys)
    code, from_onnx, err = run_cli(["predict", "--model", str(tmp_path / "fp32"), "--json", *TEXTS], capsys)
    assert code == 0, err
    run_rows = [json.loads(line) for line in from_run.splitlines()]
    onnx_rows = [json.loads(line) for line in from_onnx.splitlines()]
    assert [row["label"] for row in onnx_rows] == [row["label"] for row in run_rows]
    for run_row, onnx_row in zip(run_rows, onnx_rows, strict=True):
        assert max(abs(run_row["probabilities"][k] - onnx_row["probabilities"][k]) for k in LABELS) < 1e-4


def test_bench_predict_model_starts_without_torch(trained, tmp_path, capsys) -> None:
    results, run_id = trained
    assert (
        run_cli(
            ["export-model", "--results", str(results), "--run", run_id, "--format", "onnx", str(tmp_path / "fp32")],
            capsys,
        )[0]
        == 0
    )
    result = _run_python(
        "import sys\n"
        "from bench.cli import main\n"
        "try:\n"
        f"    main(['predict', '--model', {str(tmp_path / 'fp32')!r}, '--json', '좋아'])\n"
        "except SystemExit as exit_:\n"
        "    assert not exit_.code, exit_.code\n"
        f"print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in {TORCH_MODULES!r}))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "LOADED []"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "pickle"], "--format must be safetensors or onnx"),
        (["--quantize"], "--quantize applies to --format onnx"),
    ],
)
def test_export_usage_errors(trained, tmp_path, capsys, args, message) -> None:
    results, run_id = trained
    code, _, err = run_cli(
        ["export-model", "--results", str(results), "--run", run_id, *args, str(tmp_path / "out")], capsys
    )
    assert code == 2 and message in err
    assert not (tmp_path / "out").exists()


def test_onnx_model_refuses_a_gpu_device(trained, tmp_path, capsys) -> None:
    results, run_id = trained
    assert (
        run_cli(
            ["export-model", "--results", str(results), "--run", run_id, "--format", "onnx", str(tmp_path / "fp32")],
            capsys,
        )[0]
        == 0
    )
    code, _, err = run_cli(["predict", "--model", str(tmp_path / "fp32"), "--device", "cuda", "좋아"], capsys)
    assert code == 2 and "runs on CPU" in err


def test_multilabel_onnx_export_predicts_thresholded_sigmoids(tmp_path, capsys) -> None:
    """A multi-label run exported to ONNX: one sigmoid per label (not a softmax) and every label over its threshold,
    as the run's own model predicts them."""
    from bench.data.types import DataOptions
    from tests.fixtures.data.builders import write_cued_multilabel

    data = write_cued_multilabel(tmp_path / "cued.csv", rows=120)
    results = tmp_path / "results"
    record = train_tiny_run(results, data=DataOptions(source=str(data)), epochs=2, lr=3e-3, max_len=16)
    labels, thresholds = record.metrics.labels, record.metrics.thresholds
    assert record.metrics.task == "multilabel" and len(thresholds) == len(labels)
    target = tmp_path / "onnx"
    code, _, err = run_cli(
        ["export-model", "--results", str(results), "--run", record.run_id, "--format", "onnx", str(target)], capsys
    )
    assert code == 0, err
    card = ModelCard.read(target)
    assert card.task == "multilabel" and card.thresholds == thresholds
    texts = ["0번째 글 눈물 고함 이야기", "좋아", *TEXTS[2:8]]
    predictor = OnnxPredictor.load(target)
    ids = predictor.tokenizer.encode_batch(texts, card.max_len)
    logits = np.concatenate(
        [predictor.logits(np.asarray([row]), np.ones((1, len(row)), dtype=np.int64)) for row in ids]
    )
    sigmoids = 1 / (1 + np.exp(-logits.astype(np.float64)))
    np.testing.assert_allclose(predictor.probabilities(texts), sigmoids, atol=1e-5)
    assert not np.allclose(predictor.probabilities(texts).sum(axis=1), 1.0, atol=1e-3)

    code, out, err = run_cli(["predict", "--model", str(target), "--json", *texts], capsys)
    assert code == 0, err
    onnx_rows = [json.loads(line) for line in out.splitlines()]
    _, out, _ = run_cli(["predict", "--results", str(results), "--run", record.run_id, "--json", *texts], capsys)
    run_rows = [json.loads(line) for line in out.splitlines()]
    for onnx_row, run_row, row in zip(onnx_rows, run_rows, sigmoids, strict=True):
        over = {label for label, p, t in zip(labels, row, thresholds, strict=True) if p >= t}
        assert set(onnx_row["labels"]) == over == set(run_row["labels"])
        assert onnx_row["label"] == ",".join(onnx_row["labels"])
        assert max(abs(onnx_row["probabilities"][k] - run_row["probabilities"][k]) for k in labels) < 1e-4
