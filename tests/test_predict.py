"""``bench predict`` and ``bench export-model``: a run's best weights on new texts, with and without the database."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

import bench.cli  # noqa: F401  (registers the commands)
from bench.cli.app import main
from bench.config import RunConfig
from bench.inference.model_files import MODEL_CARD, PORTABLE_SUFFIXES, ModelCard
from bench.inference.predictor import Predictor
from bench.leaderboard.records import RunRecord
from bench.leaderboard.store import Leaderboard
from bench.machine.results_folder import run_directory
from bench.preparation.datasets import prepare_dataset
from bench.training.runner import run_experiment
from tests.conftest import run_cli, shared_path, tiny_config_pairs
from tests.tiny_runs import tiny_run_config, train_tiny_run

pytestmark = pytest.mark.usefixtures("wide_console")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, RunRecord]:
    """One finished tiny scratch + linear run."""
    results = tmp_path_factory.mktemp("predict") / "results"
    return results, train_tiny_run(results)


def _test_texts_and_stored(results: Path, record: RunRecord) -> tuple[list[str], np.ndarray]:
    config = RunConfig.from_json(json.dumps(record.config))
    dataset = prepare_dataset(config)
    with Leaderboard.for_results_dir(results) as board:
        stored = board.predictions(record.run_id)
    texts = {example.uid: example.text for example in dataset.test}
    return [texts[uid] for uid in stored.example_ids], np.asarray(stored.probabilities)


def test_saved_run_reproduces_its_test_probabilities(trained) -> None:
    results, record = trained
    texts, stored = _test_texts_and_stored(results, record)
    predictor = Predictor.load(run_directory(results, record.run_id))
    assert predictor.labels == record.metrics.labels
    # Different batching pads differently: equal up to float noise, and the same labels.
    probabilities = predictor.probabilities(texts, batch_size=7)
    np.testing.assert_allclose(probabilities, stored, atol=1e-4)
    assert (probabilities.argmax(axis=1) == stored.argmax(axis=1)).all()


def test_predict_cli_json_and_table(trained, capsys) -> None:
    results, record = trained
    code, out, _ = run_cli(
        [
            "predict",
            "--results",
            str(results),
            "--run",
            record.run_id[:6],
            "--json",
            "오늘은 정말 기쁜 하루였다.",
            "시험에 떨어져서 너무 슬프다.",
        ],
        capsys,
    )
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["text"] for line in lines] == ["오늘은 정말 기쁜 하루였다.", "시험에 떨어져서 너무 슬프다."]
    for line in lines:
        assert list(line["probabilities"]) == record.metrics.labels
        assert sum(line["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert line["label"] == max(line["probabilities"], key=line["probabilities"].get)
    code, out, _ = run_cli(
        ["predict", "--results", str(results), "--run", record.run_id, "오늘은 정말 기쁜 하루였다."], capsys
    )
    assert code == 0 and "오늘은 정말 기쁜 하루였다." in out and lines[0]["label"] in out


def test_predict_reads_input_files(trained, tmp_path, capsys) -> None:
    results, record = trained
    lines_file = tmp_path / "texts.txt"
    lines_file.write_text("첫 번째 문장\n두 번째 문장\n", encoding="utf-8")
    table = tmp_path / "texts.csv"
    table.write_text("id,문장\n1,세 번째 문장\n2,네 번째 문장\n3,다섯 번째 문장\n", encoding="utf-8")
    jsonl = tmp_path / "texts.jsonl"
    jsonl.write_text('{"text": "여섯 번째"}\n{"text": "일곱 번째"}\n', encoding="utf-8")
    for path, expected in ((lines_file, 2), (table, 3), (jsonl, 2)):
        code, out, err = run_cli(
            ["predict", "--results", str(results), "--run", record.run_id, "--json", "--input", str(path)], capsys
        )
        assert code == 0, err
        assert len(out.splitlines()) == expected
    code, out, _ = run_cli(
        [
            "predict",
            "--results",
            str(results),
            "--run",
            record.run_id,
            "--json",
            "--input",
            str(table),
            "--text-col",
            "문장",
            "맨 앞 문장",
        ],
        capsys,
    )
    assert code == 0 and [json.loads(line)["text"] for line in out.splitlines()][:2] == ["맨 앞 문장", "세 번째 문장"]


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        ("첫 문장\n\n셋째 문장\n", "gap.txt", "line 2 is empty"),
        ("id,문장\n1,좋다\n2,\n", "gap.csv", "column '문장' is empty in row 3"),
        ("id,memo\n1,좋다\n", "nocol.csv", "cannot tell which column holds the text"),
    ],
)
def test_bad_input_files_are_one_line_errors(trained, tmp_path, capsys, content, name, message) -> None:
    results, record = trained
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    code, out, err = run_cli(
        ["predict", "--results", str(results), "--run", record.run_id, "--input", str(path)], capsys
    )
    assert code == 2 and not out
    assert message in err and str(path) in err and len(err.strip().splitlines()) == 1


def test_export_model_is_portable_and_predicts_without_the_database(trained, tmp_path, capsys, monkeypatch) -> None:
    results, record = trained
    target = tmp_path / "exported" / "model"
    code, out, err = run_cli(["export-model", "--results", str(results), "--run", record.run_id, str(target)], capsys)
    assert code == 0, err
    files = sorted(path for path in target.rglob("*") if path.is_file())
    assert {path.relative_to(target).as_posix() for path in files} >= {MODEL_CARD, "model.safetensors"}
    for path in files:
        assert path.suffix in PORTABLE_SUFFIXES, path
        head = path.read_bytes()[:4]
        assert not head.startswith(b"PK") and not head.startswith(b"\x80"), f"{path} looks like a pickle/torch zip"
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
    with safe_open(str(target / "model.safetensors"), framework="pt") as weights:
        assert any(name.startswith("encoder.") for name in weights.keys())
    card = ModelCard.read(target)
    assert card.run_id == record.run_id and card.labels == record.metrics.labels
    assert card.scores["macro_f1"] == pytest.approx(record.macro_f1)

    def refuse_torch_load(*args, **kwargs):
        raise AssertionError("a saved model must load without torch.load (pickle)")

    monkeypatch.setattr(torch, "load", refuse_torch_load)
    texts = ["오늘은 정말 기쁜 하루였다.", "화가 나서 참을 수가 없다."]
    nowhere = tmp_path / "no-results"
    code, exported_out, err = run_cli(
        ["predict", "--model", str(target), "--results", str(nowhere), "--json", *texts], capsys
    )
    assert code == 0, err
    assert not nowhere.exists()
    code, run_out, _ = run_cli(["predict", "--results", str(results), "--run", record.run_id, "--json", *texts], capsys)
    exported = [json.loads(line) for line in exported_out.splitlines()]
    from_run = [json.loads(line) for line in run_out.splitlines()]
    assert [line["label"] for line in exported] == [line["label"] for line in from_run]
    for a, b in zip(exported, from_run, strict=True):
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-6)

    code, _, err = run_cli(["export-model", "--results", str(results), "--run", record.run_id, str(target)], capsys)
    assert code == 2 and "not an empty folder" in err


def test_missing_run_folder_is_a_one_line_error(trained, tmp_path, capsys) -> None:
    results, record = trained
    copy = tmp_path / "results"
    shutil.copytree(results, copy, ignore=shutil.ignore_patterns("runs"))
    for command in (
        ["predict", "--run", record.run_id, "문장"],
        ["export-model", "--run", record.run_id, str(tmp_path / "out")],
    ):
        code, out, err = run_cli([*command, "--results", str(copy)], capsys)
        assert code == 2 and not out
        assert "folder" in err and "missing" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["문장"], "exactly one of --run ID"),
        (["--run", "x", "--model", "y", "문장"], "exactly one of --run ID"),
        (["--model", "nowhere"], "nothing to classify"),
        (["--run", "ffffffffff", "문장"], "unknown run"),
        (["--model", "nowhere", "문장"], "is not a folder"),
    ],
)
def test_usage_errors(trained, capsys, args, message) -> None:
    results, _ = trained
    code, _, err = run_cli(["predict", "--results", str(results), *args], capsys)
    assert code == 2 and message in err


def test_koelectra_export_rebuilds_an_electra_with_a_wordpiece_tokenizer(tmp_path) -> None:
    """The rebuild is generic: an ELECTRA encoder with a Hugging Face tokenizer survives export and reload."""
    folder = shared_path("models/koelectra-small-v3")
    results = tmp_path / "results"
    config = tiny_run_config(
        results,
        encoder="koelectra-small",
        encoder_path=str(folder),
        random_init=True,
        encoder_config=tiny_config_pairs({"embedding_size": 16}),
        train_limit=60,
    )
    with Leaderboard.for_results_dir(results) as board:
        record = run_experiment(config, board)
    assert record.status == "finished", record.error
    target = tmp_path / "exported"
    main(["export-model", "--results", str(results), "--run", record.run_id, str(target)])
    card = ModelCard.read(target)
    assert card.model_type == "electra" and card.encoder_config["embedding_size"] == 16
    assert all(path.suffix in PORTABLE_SUFFIXES for path in target.rglob("*") if path.is_file())
    texts, stored = _test_texts_and_stored(results, record)
    np.testing.assert_allclose(Predictor.load(target).probabilities(texts), stored, atol=1e-4)


@pytest.mark.parametrize(
    "changes",
    [{"epochs": 2, "lr": 3e-3}, {"freeze_encoder": True, "epochs": 3, "lr": 3e-2}],
    ids=["fine-tuned", "frozen-encoder"],
)
def test_bench_predict_on_the_test_texts_reproduces_the_stored_test_scores(tmp_path, capsys, changes) -> None:
    """Training and serving run one model: `bench predict` on the test texts gives the stored predictions and scores.

    A frozen encoder's features are rounded to the feature cache's float16 in training; the
    saved model rounds them too, so its probabilities equal the stored ones to the 6 decimals
    they are stored with (without the rounding they differ by several times that).
    """
    results = tmp_path / "results"
    record = train_tiny_run(results, **changes)
    texts, stored = _test_texts_and_stored(results, record)
    with Leaderboard.for_results_dir(results) as board:
        gold = np.asarray(board.predictions(record.run_id).gold)
    assert ModelCard.read(run_directory(results, record.run_id)).feature_dtype == (
        "float16" if changes.get("freeze_encoder") else ""
    )
    texts_file = tmp_path / "test.txt"
    texts_file.write_text("\n".join(texts) + "\n", encoding="utf-8")
    code, out, err = run_cli(
        [
            "predict",
            "--results",
            str(results),
            "--run",
            record.run_id,
            "--json",
            "--input",
            str(texts_file),
            "--batch-size",
            "5",
        ],
        capsys,
    )
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    labels = record.metrics.labels
    probabilities = np.array([[row["probabilities"][label] for label in labels] for row in rows])
    np.testing.assert_allclose(probabilities, stored, rtol=0, atol=1.5e-6)
    predicted = np.array([labels.index(row["label"]) for row in rows])
    assert predicted.tolist() == np.asarray(stored).argmax(axis=1).tolist()
    from bench.evaluation.scores import classification_scores

    scores = classification_scores(gold, predicted, len(labels))
    assert scores.macro_f1 == pytest.approx(record.macro_f1, abs=1e-12)
    assert scores.accuracy == pytest.approx(record.accuracy, abs=1e-12)
