"""``--logger``: TensorBoard, CSV and W&B files, and a real MLflow tracking server, hold what a run reported."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from bench.leaderboard.store import Leaderboard
from bench.training.runner import run_experiment
from tests.conftest import run_cli
from tests.tiny_runs import tiny_run_config

EPOCHS = 2


def tracked_run(results: Path, loggers: tuple[str, ...], **changes):
    config = tiny_run_config(
        results, epochs=EPOCHS, loggers=loggers, logger_dir=str(results.parent / "trackers"), **changes
    )
    with Leaderboard.for_results_dir(results) as board:
        record = run_experiment(config, board)
    assert record.status == "finished", record.error
    return config, record


def test_tensorboard_csv_and_offline_wandb_hold_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip(
        "tensorboard", reason="tensorboard is not installed (pip install 'ko-emotion-bench[tensorboard]')"
    )
    pytest.importorskip("wandb", reason="wandb is not installed (pip install 'ko-emotion-bench[wandb]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    config, record = tracked_run(tmp_path / "results", ("tensorboard", "csv", "wandb"), study="demo-study", trial=3)
    trackers = tmp_path / "trackers"

    events = EventAccumulator(str(trackers / "tensorboard" / record.run_id), size_guidance={"images": 0})
    events.Reload()
    scalars = events.Tags()["scalars"]
    for name in ("train_loss", "val_loss", "val_macro_f1", "val_accuracy"):
        assert [event.step for event in events.Scalars(name)] == list(range(EPOCHS)), name
    history = record.metrics.history
    assert [event.value for event in events.Scalars("train_loss")] == pytest.approx([e["train_loss"] for e in history])
    assert "test_macro_f1" in scalars
    assert events.Scalars("test_macro_f1")[-1].value == pytest.approx(record.metrics.macro_f1, abs=1e-6)
    assert "confusion_matrix" in events.Tags()["images"]
    hparams = yaml.safe_load((trackers / "tensorboard" / record.run_id / "hparams.yaml").read_text(encoding="utf-8"))
    assert hparams["run_id"] == record.run_id and hparams["config_hash"] == config.config_hash()
    assert hparams["head"] == "linear" and hparams["data.source"] == "sample"

    csv_folder = trackers / "csv" / record.run_id
    assert (csv_folder / "confusion_matrix.png").stat().st_size > 0
    assert "test_macro_f1" in (csv_folder / "metrics.csv").read_text(encoding="utf-8")

    runs = list((trackers / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("*.wandb")) and list((runs[0] / "files" / "media").rglob("*.png"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path: Path):
    """A real MLflow tracking server (SQLite backend, proxied artifacts) on a free local port."""
    pytest.importorskip("mlflow", reason="mlflow is not installed (pip install 'ko-emotion-bench[mlflow]')")
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{tmp_path / 'mlflow.db'}",
        "--artifacts-destination",
        str(tmp_path / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""}
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(tmp_path / 'server.log').read_text()[-2000:]}")
            time.sleep(1)
        yield uri
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_mlflow_server_holds_parameters_metrics_tags_and_the_confusion_matrix(
    tmp_path: Path, mlflow_server: str
) -> None:
    from mlflow.tracking import MlflowClient

    config, record = tracked_run(tmp_path / "results", ("mlflow",), mlflow_uri=mlflow_server, study="demo", trial=5)
    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("ko-emotion-bench")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.run_name == record.run_id and run.info.status == "FINISHED"
    assert run.data.params["run_id"] == record.run_id
    assert run.data.params["config_hash"] == config.config_hash()
    assert run.data.params["encoder"] == "scratch" and run.data.params["epochs"] == str(EPOCHS)
    assert run.data.tags["optuna_trial"] == "5" and run.data.tags["optuna_study"] == "demo"
    losses = client.get_metric_history(run.info.run_id, "train_loss")
    assert [metric.step for metric in losses] == list(range(EPOCHS))
    assert [metric.value for metric in losses] == pytest.approx([e["train_loss"] for e in record.metrics.history])
    assert len(client.get_metric_history(run.info.run_id, "val_macro_f1")) == EPOCHS
    assert run.data.metrics["test_macro_f1"] == pytest.approx(record.metrics.macro_f1)
    assert "confusion_matrix.png" in [artifact.path for artifact in client.list_artifacts(run.info.run_id)]


def test_default_mlflow_store_keeps_runs_and_artifacts_under_the_logger_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow", reason="mlflow is not installed (pip install 'ko-emotion-bench[mlflow]')")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    _, record = tracked_run(tmp_path / "results", ("mlflow",))
    trackers = tmp_path / "trackers"
    client = MlflowClient(tracking_uri=f"sqlite:///{trackers / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("ko-emotion-bench").experiment_id])[0]
    assert run.info.run_name == record.run_id
    assert list((trackers / "mlflow-artifacts").rglob("confusion_matrix.png"))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["results", "trackers"]


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--logger", "neptune"], "--logger must be one of tensorboard, mlflow, wandb, csv, got 'neptune'")],
)
def test_bad_logger_is_a_usage_error(tmp_path: Path, capsys, args, message) -> None:
    code, _, err = run_cli(["run", "--results", str(tmp_path / "results"), "--device", "cpu", *args], capsys)
    assert code == 2 and message in err
    assert not (tmp_path / "results" / "leaderboard.db").exists()


def test_trackers_are_not_part_of_the_run_identity() -> None:
    from bench.config import RunConfig

    tracked = RunConfig(loggers=("mlflow", "csv"), logger_dir="/tmp/trackers", mlflow_uri="http://127.0.0.1:5000")
    assert tracked.config_hash() == RunConfig().config_hash()
    assert RunConfig.from_json(tracked.to_json()) == tracked
