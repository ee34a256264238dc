"""``bench predict`` (labels and probabilities for new texts) and ``bench export-model`` (a portable model folder)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from bench.cli import options as opt
from bench.cli.app import add_row, app, console, warn
from bench.cli.options import DEFAULT_RESULTS, Results, Storage, require_leaderboard
from bench.data.hygiene import is_blank
from bench.errors import ResultsError, UsageError
from bench.escaping import terminal
from bench.inference.model_files import export_model
from bench.inference.onnx_runtime import OnnxPredictor, is_onnx_folder
from bench.inference.predictions import DEFAULT_BATCH_SIZE, TextPrediction
from bench.leaderboard.export import format_value
from bench.leaderboard.records import RunRecord
from bench.leaderboard.store import Leaderboard
from bench.machine.results_folder import run_directory
from bench.tasks import MULTI_LABEL, SINGLE_LABEL, task_named

if TYPE_CHECKING:
    from bench.inference.predictor import Predictor

RunOption = Annotated[str | None, typer.Option("--run", help="Run id (or unique prefix) whose best weights to use.")]
ModelOption = Annotated[
    Path | None, typer.Option("--model", help="Model folder written by `bench export-model` (no database needed).")
]
InputOption = Annotated[
    Path | None,
    typer.Option(
        "--input", "-i", help="File of texts: one per line, or a csv/tsv/jsonl/xlsx table with a text column."
    ),
]
# The same --text-col as a data source's: the column of --input that holds the texts.
InputTextColumn = opt.data_option("text_col")
_SHOWN_ALTERNATIVES = 2


@app.command("predict")
def predict_command(
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to classify.", show_default=False)] = None,
    run: RunOption = None,
    model: ModelOption = None,
    input_file: InputOption = None,
    text_col: InputTextColumn = None,
    results: Results = DEFAULT_RESULTS,
    storage: Storage = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per text: text, label, probabilities.")
    ] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Texts per forward pass.")] = DEFAULT_BATCH_SIZE,
    device: opt.Device = "auto",
    plugin: opt.Plugins = None,
) -> None:
    """Label TEXTS (and/or the texts of --input) with a run's best weights (--run) or an exported model (--model).

    --text-col names the text column of an --input table; --device is where the model runs (auto: a GPU when
    there is one), as for training; an ONNX model runs on CPU.
    """
    if (run is None) == (model is None):
        raise UsageError("give exactly one of --run ID (a recorded run) or --model DIR (an exported model)")
    if text_col is not None and input_file is None:
        raise UsageError("--text-col applies to an --input table")
    inputs = list(texts or [])
    if input_file is not None:
        from bench.inference.inputs import read_texts  # lazy: the table readers load pandas

        inputs += read_texts(input_file, text_col)
    if not inputs:
        raise UsageError("nothing to classify: give texts as arguments or a file with --input FILE")
    blank = [number for number, text in enumerate(inputs, start=1) if is_blank(text)]
    if blank:
        shown = ", ".join(map(str, blank[:5])) + (f" and {len(blank) - 5} more" if len(blank) > 5 else "")
        warn(
            f"text{'s' if len(blank) > 1 else ''} {shown} {'are' if len(blank) > 1 else 'is'} empty (only "
            "whitespace or invisible characters); the label given to an empty text says nothing about it"
        )
    if run is not None:
        _, folder = finished_run_folder(require_leaderboard(storage, results), results, run)
    else:
        assert model is not None
        folder = model
        if not folder.is_dir():
            raise UsageError(f"--model {folder} is not a folder")
    predictor = load_predictor(folder, device)
    predictions = predictor.predict(inputs, batch_size)
    if as_json:
        for prediction in predictions:
            record = {"text": prediction.text, "label": prediction.label, "probabilities": prediction.probabilities}
            if prediction.labels is not None:
                record["labels"] = prediction.labels
            console.out(json.dumps(record, ensure_ascii=False), highlight=False)
        return
    title = f"{predictor.card.encoder} / {predictor.card.head} · run {predictor.card.run_id}"
    console.print(PREDICTION_TABLES[predictor.task.name](predictions, title))


@app.command("export-model")
def export_model_command(
    target: Annotated[Path, typer.Argument(help="New (or empty) folder to write the model into.", show_default=False)],
    run: Annotated[str, typer.Option("--run", help="Run id (or unique prefix) to export.", show_default=False)],
    results: Results = DEFAULT_RESULTS,
    storage: Storage = None,
    plugin: opt.Plugins = None,
    model_format: Annotated[
        str, typer.Option("--format", help="safetensors (PyTorch) or onnx (one graph for ONNX Runtime, no torch).")
    ] = "safetensors",
    quantize: Annotated[
        bool,
        typer.Option(
            "--quantize", help="With --format onnx: int8 dynamic quantisation; reports its test-split effect."
        ),
    ] = False,
) -> None:
    """Copy a run's best weights, tokenizer and model.json into TARGET for `bench predict --model TARGET`."""
    if model_format not in ("safetensors", "onnx"):
        raise UsageError(f"--format must be safetensors or onnx, got {model_format!r}")
    if quantize and model_format != "onnx":
        raise UsageError("--quantize applies to --format onnx")
    record, folder = finished_run_folder(require_leaderboard(storage, results), results, run)
    scores = {
        name: float(value)
        for name, value in (
            ("macro_f1", record.macro_f1),
            ("accuracy", record.accuracy),
            ("val_macro_f1", record.val_macro_f1),
        )
        if value is not None
    }
    if record.metrics is not None:
        scores.update(record.metrics.scores)  # multi-label: micro-F1, samples-F1, exact match
    if model_format == "onnx":
        files = export_onnx_model(record, folder, target, scores, quantize)
    else:
        files = export_model(folder, target, scores)
    console.print(
        terminal(
            f"Exported run {record.run_id} ({record.encoder} / {record.head}, test macro-F1 "
            f"{format_value(record.macro_f1, 'score')}) to {target}: {len(files)} files"
        )
    )
    console.print(terminal(f'Use it with: bench predict --model {target} "문장"'))


def load_predictor(folder: Path, device: str) -> Predictor | OnnxPredictor:
    """ONNX Runtime for a folder with ``model.onnx`` (torch is not imported), else the PyTorch predictor."""
    if is_onnx_folder(folder):
        if device not in ("auto", "cpu"):
            raise UsageError(f"{folder} holds an ONNX model, which runs on CPU; drop --device {device}")
        return OnnxPredictor.load(folder)
    from bench.inference.predictor import Predictor

    return Predictor.load(folder, device)


def export_onnx_model(
    record: RunRecord, folder: Path, target: Path, scores: dict[str, float], quantize: bool
) -> list[Path]:
    """``export-model --format onnx``: the graph, checked against PyTorch; with ``quantize`` its test-split effect."""
    from bench.config import RunConfig
    from bench.evaluation.scores import label_targets
    from bench.inference.model_files import ModelCard
    from bench.inference.onnx_export import export_onnx
    from bench.preparation.datasets import prepare_dataset

    test_split = None
    if quantize:
        dataset = prepare_dataset(RunConfig.from_json(json.dumps(record.config)))
        label_ids = {label: index for index, label in enumerate(dataset.labels)}
        test_split = ([example.text for example in dataset.test], label_targets(dataset.test, label_ids))
    exported = export_onnx(folder, target, scores=scores, quantize=quantize, test_split=test_split)
    console.print(
        f"ONNX Runtime reproduces PyTorch: probabilities within {exported.parity_max_difference:.1e}",
        markup=False,
        highlight=False,
    )
    effect = exported.quantization
    if effect is not None:
        console.print(
            f"int8 dynamic quantisation on the test split ({effect.examples} texts): "
            f"{task_named(ModelCard.read(target).task).accuracy_name} "
            f"{effect.accuracy_fp32:.4f} → {effect.accuracy_int8:.4f} ({effect.accuracy_change:+.4f}), macro-F1 "
            f"{effect.macro_f1_fp32:.4f} → {effect.macro_f1_int8:.4f} ({effect.macro_f1_change:+.4f}); "
            f"same label for {effect.same_label:.1%}",
            markup=False,
            highlight=False,
        )
    return exported.files


def finished_run_folder(board: Leaderboard, results: Path, run: str) -> tuple[RunRecord, Path]:
    """A finished, trained run and its folder under ``results/runs``; one-line errors otherwise."""
    from bench.baselines import is_baseline  # lazy: it loads the run configuration (pandas); --model needs neither

    record = board.get_run(run)
    if is_baseline(record.encoder):
        raise UsageError(
            f"run {record.run_id} is the {record.encoder} baseline; baselines keep no model to predict with"
        )
    if record.status != "finished":
        raise UsageError(f"run {record.run_id} is {record.status}, not finished; it has no best weights")
    try:
        folder = run_directory(results, record.run_id)
    except ValueError:
        raise ResultsError(f"the leaderboard holds a malformed run id {record.run_id!r}") from None
    if not folder.is_dir():
        raise ResultsError(
            f"run {record.run_id}: its folder {folder} is missing; runs are read from --results {results}"
        )
    return record, folder


def prediction_table(predictions: list[TextPrediction], title: str) -> Table:
    """One row per text: the label, its probability and the next most likely labels."""
    table = Table(title=terminal(title), title_justify="left")
    for name, justify in (("#", "right"), ("text", "left"), ("label", "left"), ("p", "right"), ("next", "left")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for number, prediction in enumerate(predictions, start=1):
        ranked = sorted(prediction.probabilities.items(), key=lambda item: -item[1])
        alternatives = ", ".join(f"{label} {p:.2f}" for label, p in ranked[1 : 1 + _SHOWN_ALTERNATIVES])
        add_row(
            table,
            str(number),
            terminal(prediction.text),
            terminal(prediction.label, style="bold"),
            f"{prediction.confidence:.3f}",
            alternatives,
        )
    return table


def multilabel_table(predictions: list[TextPrediction], title: str) -> Table:
    """One row per text: every label over its threshold with its probability, most probable first."""
    table = Table(title=terminal(title), title_justify="left")
    for name, justify in (("#", "right"), ("text", "left"), ("labels over threshold", "left")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for number, prediction in enumerate(predictions, start=1):
        chosen = ", ".join(f"{label} {p:.2f}" for label, p in (prediction.labels or {}).items()) or "(none)"
        add_row(table, str(number), prediction.text, terminal(chosen, style="bold"))
    return table


# How each task's predictions are shown (by task name, :mod:`bench.tasks`).
PREDICTION_TABLES = {SINGLE_LABEL.name: prediction_table, MULTI_LABEL.name: multilabel_table}
