"""``pip install .`` without extras gives a working ``bench``: help, a tiny run, the leaderboard and export.

A fresh virtual environment is built under the test's temporary folder. PyTorch is installed first at the
version running these tests (as scripts/setup.sh does, so pip takes the CPU build instead of several GB of
CUDA packages), then the project from a copy of its sources, with no extras. Optional integrations must then
say in one line which extra they need.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.conftest import tiny_config_args

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "encoders", "heads")
# Packages only the dev extra or an optional extra brings; none may arrive with the core install.
NOT_CORE = ("pytest", "hypothesis", "onnx", "onnxruntime", "mlflow", "wandb", "ray", "psycopg", "optuna-dashboard")
# pip's words when it cannot reach an index (or find a wheel offline): the test then cannot build the venv.
OFFLINE = (
    "NewConnectionError",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "No matching distribution found",
)

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1", COLUMNS="120")
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _pip(python: Path, *args: str, cwd: Path) -> None:
    result = _run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *args], cwd)
    if result.returncode != 0 and any(word in result.stderr for word in OFFLINE):
        pytest.skip(f"building a fresh venv needs PyPI or pip's cache: {result.stderr.strip().splitlines()[-1]}")
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding torch (the running version) and the project without extras; its ``bin`` folder."""
    root = tmp_path_factory.mktemp("core-install")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    venv = root / "venv"
    created = _run([sys.executable, "-m", "venv", str(venv)], root)
    assert created.returncode == 0, created.stderr
    python = venv / "bin" / "python"
    _pip(python, f"torch=={version('torch').split('+')[0]}", cwd=root)
    _pip(python, str(source), cwd=root)
    return venv / "bin"


def test_core_install_has_no_dev_or_optional_packages(core_venv: Path) -> None:
    listed = _run([str(core_venv / "python"), "-m", "pip", "list", "--format", "freeze"], core_venv)
    installed = {line.split("==")[0].lower() for line in listed.stdout.splitlines()}
    assert "ko-emotion-bench" in installed
    assert not installed & set(NOT_CORE), sorted(installed & set(NOT_CORE))


def test_core_install_runs_records_lists_and_exports(core_venv: Path, tmp_path: Path) -> None:
    bench = str(core_venv / "bench")
    results = tmp_path / "results"
    helped = _run([bench, "--help"], tmp_path)
    assert helped.returncode == 0 and "leaderboard" in helped.stdout and "errors" in helped.stdout

    run = _run(
        [
            bench,
            "run",
            "--encoder",
            "scratch",
            "--head",
            "linear",
            "--data",
            "sample",
            *tiny_config_args(),
            "--epochs",
            "1",
            "--train-limit",
            "60",
            "--max-len",
            "32",
            "--batch-size",
            "16",
            "--device",
            "cpu",
            "--no-progress",
            "--results",
            str(results),
        ],
        tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]

    listed = _run([bench, "leaderboard", "--results", str(results)], tmp_path)
    assert listed.returncode == 0 and "scratch" in listed.stdout and "linear" in listed.stdout, listed.stderr
    exported = _run([bench, "export", "--format", "csv", "--results", str(results)], tmp_path)
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(row["encoder"], row["head"], row["status"]) for row in rows] == [("scratch", "linear", "finished")]
    run_id = rows[0]["run_id"]
    shown = _run([bench, "errors", run_id, "--results", str(results)], tmp_path)
    assert shown.returncode == 0 and "misclassified" in shown.stdout, shown.stderr

    # Optional integrations name their extra, in one line, exit code 2.
    refusals = {
        "onnx": [
            bench,
            "export-model",
            str(tmp_path / "model"),
            "--run",
            run_id,
            "--format",
            "onnx",
            "--results",
            str(results),
        ],
        "mlflow": [
            bench,
            "run",
            "--encoder",
            "scratch",
            "--head",
            "linear",
            "--data",
            "sample",
            "--logger",
            "mlflow",
            "--results",
            str(results),
        ],
        "postgres": [bench, "leaderboard", "--storage", "postgresql://bench@127.0.0.1:1/bench"],
    }
    for extra, args in refusals.items():
        refused = _run(args, tmp_path)
        assert refused.returncode == 2, (extra, refused.stdout, refused.stderr)
        assert f"ko-emotion-bench[{extra}]" in refused.stderr and refused.stderr.count("\n") == 1, refused.stderr
