"""``bench export-model --format onnx``: a run's encoder and head as one ONNX graph, checked against PyTorch.

The graph takes ``input_ids`` and ``attention_mask`` (int64, any batch size and length) and returns
``logits``. The export is checked before the folder is written: on texts of mixed lengths, batched
together, ONNX Runtime must give the same labels as PyTorch and probabilities within
:data:`PARITY_TOLERANCE`. ``--quantize`` adds int8 dynamic quantisation of the weights and measures
its effect on the run's test split.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from bench.errors import ResultsError, UsageError
from bench.inference.model_files import TOKENIZER_DIR, check_model_folder, staged_folder
from bench.inference.onnx_runtime import ONNX_FILE, OnnxPredictor
from bench.inference.predictor import Predictor
from bench.model.padding import pad_rows

OPSET = 17
PARITY_TOLERANCE = 1e-4
# Mixed lengths (one word to a long sentence), so the check batches real padding through the graph.
PARITY_TEXTS = (
    "좋아",
    "오늘은 정말 기쁜 하루였다.",
    "시험에 떨어져서 너무 슬프고 친구들 얼굴을 볼 자신이 없다.",
    "갑자기 발표를 하라고 해서 당황했어",
    "밤늦게 혼자 집에 가는 길이 무섭고 불안했다. 뒤에서 누가 따라오는 것 같았다.",
    "왜 약속을 또 어기는 거야? 정말 화가 난다!",
    "믿었던 사람에게 배신당해서 마음이 아프다",
)


@dataclass
class QuantizationEffect:
    """Test-split scores of the fp32 graph and of its int8 dynamic quantisation."""

    examples: int
    accuracy_fp32: float
    accuracy_int8: float
    macro_f1_fp32: float
    macro_f1_int8: float
    same_label: float

    @property
    def accuracy_change(self) -> float:
        """int8 minus fp32 test accuracy."""
        return self.accuracy_int8 - self.accuracy_fp32

    @property
    def macro_f1_change(self) -> float:
        """int8 minus fp32 test macro-F1."""
        return self.macro_f1_int8 - self.macro_f1_fp32


@dataclass
class OnnxExport:
    """What ``export_onnx`` wrote and measured."""

    files: list[Path]
    parity_max_difference: float
    quantization: QuantizationEffect | None


def export_onnx(
    source: Path,
    target: Path,
    *,
    scores: dict[str, float] | None = None,
    quantize: bool = False,
    test_split: tuple[Sequence[str], np.ndarray] | None = None,
) -> OnnxExport:
    """Write the saved model in ``source`` into the new or empty folder ``target`` as ``model.onnx``.

    With ``quantize`` the graph's weights are int8 (dynamic quantisation) and ``test_split``
    (texts, gold targets: class ids, or 0/1 rows for a multi-label model) measures what that costs.
    """
    if quantize and test_split is None:
        raise UsageError("--quantize needs the run's test split to measure its effect")
    missing = [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(f"--format onnx needs {' and '.join(missing)}: pip install 'ko-emotion-bench[onnx]'")
    card = check_model_folder(source)
    predictor = Predictor.load(source)
    with staged_folder(target) as staging:
        shutil.copytree(source / TOKENIZER_DIR, staging / TOKENIZER_DIR)
        export_graph(predictor, staging / ONNX_FILE)
        card.scores = dict(scores or card.scores)
        card.onnx = {"opset": OPSET, "pad_id": int(predictor.tokenizer.pad_id), "quantization": None}
        card.write(staging)
        fp32 = OnnxPredictor.load(staging)
        difference = check_parity(predictor, fp32)
        effect = None
        if quantize:
            assert test_split is not None
            effect = quantize_graph(staging, fp32, test_split)
            card.onnx.update(quantization="int8-dynamic", quantization_effect=asdict(effect))
            card.write(staging)
    return OnnxExport(sorted(path for path in target.rglob("*") if path.is_file()), difference, effect)


def export_graph(predictor: Predictor, path: Path) -> None:
    """Trace the predictor's model (ids, mask → logits) into ``path`` with dynamic batch and sequence axes."""
    rows = predictor.tokenizer.encode_batch(PARITY_TEXTS[1:3], predictor.card.max_len)
    input_ids, attention_mask = (torch.from_numpy(array) for array in pad_rows(rows, predictor.tokenizer.pad_id))
    model = predictor.model
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow on shapes, expected here
        try:
            torch.onnx.export(
                model.cpu().eval(),
                (input_ids, attention_mask),
                str(path),
                input_names=["input_ids", "attention_mask"],
                output_names=["logits"],
                dynamic_axes={"input_ids": axes, "attention_mask": axes, "logits": {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
        except (RuntimeError, torch.onnx.errors.OnnxExporterError) as error:
            raise ResultsError(f"the model cannot be exported to ONNX: {' '.join(str(error).split())[:200]}") from None


def check_parity(predictor: Predictor, onnx: OnnxPredictor) -> float:
    """Largest probability difference between PyTorch and ONNX Runtime on :data:`PARITY_TEXTS`; fails when the
    predicted labels (the task's decision) differ."""
    expected = predictor.probabilities(PARITY_TEXTS)
    actual = onnx.probabilities(PARITY_TEXTS)
    difference = float(np.abs(expected - actual).max())
    task, thresholds = predictor.task, predictor.card.thresholds
    if difference > PARITY_TOLERANCE or (task.decide(expected, thresholds) != task.decide(actual, thresholds)).any():
        raise ResultsError(
            f"the ONNX graph does not reproduce the model (probabilities differ by up to "
            f"{difference:.2e}); it was not written"
        )
    return difference


def quantize_graph(
    folder: Path, fp32: OnnxPredictor, test_split: tuple[Sequence[str], np.ndarray]
) -> QuantizationEffect:
    """Replace ``folder/model.onnx`` by its int8 dynamic quantisation; the scores of both on ``test_split``.

    Both graphs are decided and scored by the model's task (:meth:`bench.tasks.Task.evaluate`): accuracy is
    exact match for multi-label models, and ``same_label`` counts texts whose whole label set is unchanged.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    texts, gold = list(test_split[0]), np.asarray(test_split[1])
    if not texts:
        raise UsageError("the run's test split is empty; --quantize has nothing to measure on")
    task, labels = fp32.task, fp32.labels
    thresholds = np.asarray(fp32.card.thresholds) if task.uses_thresholds else None
    before = task.evaluate(gold, fp32.probabilities(texts), thresholds, labels)
    graph = folder / ONNX_FILE
    fp32_graph = folder / "model.fp32.onnx"
    graph.rename(fp32_graph)
    logging.disable(logging.WARNING)  # quantize_dynamic logs advice about pre-processing on the root logger
    try:
        quantize_dynamic(str(fp32_graph), str(graph), weight_type=QuantType.QInt8)
    finally:
        logging.disable(logging.NOTSET)
    fp32_graph.unlink()
    after = task.evaluate(gold, OnnxPredictor.load(folder).probabilities(texts), thresholds, labels)
    same = (before.predicted == after.predicted).reshape(len(texts), -1).all(axis=1)
    return QuantizationEffect(
        examples=len(texts),
        accuracy_fp32=before.accuracy,
        accuracy_int8=after.accuracy,
        macro_f1_fp32=before.macro_f1,
        macro_f1_int8=after.macro_f1,
        same_label=float(same.mean()),
    )
