"""Commands that train nothing start without the training stack: no torch, Lightning, transformers, scikit-learn
(or matplotlib, except ``bench report``), checked in a fresh interpreter per command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.cli.app import COMMANDS, app, registered_command
from bench.leaderboard.store import Leaderboard
from tests.conftest import bench
from tests.leaderboard_helpers import make_config, make_metrics, noisy_predictions, record_run

ROOT = Path(__file__).resolve().parents[1]
TRAINING_STACK = {"torch", "lightning", "transformers", "sklearn", "optuna"}
# Prints the top-level modules loaded when the command ends (however it ends) as the last line of stderr.
DRIVER = (
    "import atexit, json, sys\n"
    "atexit.register(lambda: print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})), "
    "file=sys.stderr))\n"
    "from bench.cli import main\n"
    "main()\n"
)


def loaded_modules(args: list[str]) -> set[str]:
    """Run ``bench ARGS`` in a fresh interpreter; the top-level modules it imported."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", DRIVER, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


@pytest.fixture
def two_runs(results_dir: Path) -> list[str]:
    gold = np.random.default_rng(0).integers(0, 3, 200)
    with Leaderboard.for_results_dir(results_dir) as board:
        return [
            record_run(
                board,
                make_config(seed=seed),
                make_metrics(gold, noisy_predictions(gold, 0.8, np.random.default_rng(seed), 3)),
            )
            for seed in (1, 2)
        ]


def test_commands_that_train_nothing_do_not_import_the_training_stack(results_dir: Path, two_runs: list[str]):
    results = ["--results", str(results_dir)]
    light = [
        ["--help"],
        ["leaderboard", *results],
        ["leaderboard", *results, "--view", "groups", "--resamples", "50"],
        ["leaderboard", *results, "--view", "pareto"],
        ["export", "--format", "md", *results],
        ["show", two_runs[0], *results],
        ["compare", two_runs[0], two_runs[1], *results, "--resamples", "50"],
        ["errors", two_runs[0], *results],
        ["leaderboard", *results, "--format", "json"],
        ["data", "inspect", "sample"],
    ]
    for args in light:
        heavy = loaded_modules(args) & (TRAINING_STACK | {"matplotlib"})
        assert not heavy, f"bench {' '.join(args)} imported {sorted(heavy)}"
    report = ["report", *results, "--out", str(results_dir / "report.html"), "--resamples", "50"]
    heavy = loaded_modules(report) & TRAINING_STACK
    assert not heavy, f"bench report imported {sorted(heavy)}"
    assert (results_dir / "report.html").is_file()


def test_the_help_list_matches_each_command_and_names_every_one(capsys):
    code, out, err = bench(capsys, "--help")
    assert code == 0, err
    for name, (_, summary) in COMMANDS.items():
        command = registered_command(name)  # imports the module, which registers the command
        help_text = command.help or ""
        assert help_text.strip().splitlines()[0] == summary, f"COMMANDS[{name!r}] differs from its docstring"
        assert name in out
    registered = {info.name or info.callback.__name__ for info in app.registered_commands}
    registered |= {group.name for group in app.registered_groups}
    assert registered <= set(COMMANDS), f"commands missing from bench.cli.app.COMMANDS: {registered - set(COMMANDS)}"


def test_a_mistyped_command_suggests_the_right_one(capsys):
    code, out, err = bench(capsys, "leaderbord")
    assert code == 2 and "Did you mean 'leaderboard'" in err


def test_predict_with_a_pytorch_model_folder_imports_only_what_prediction_needs(results_dir: Path, tmp_path: Path):
    """``bench predict --model`` (safetensors folder) loads torch and the encoder, never the training stack."""
    from bench.cli import main
    from tests.tiny_runs import train_tiny_run

    record = train_tiny_run(results_dir)
    folder = tmp_path / "model"
    main(["export-model", "--results", str(results_dir), "--run", record.run_id, str(folder)])
    assert (folder / "model.safetensors").is_file()
    loaded = loaded_modules(["predict", "--model", str(folder), "오늘은 정말 기쁜 하루였다."])
    assert "torch" in loaded  # the check sees the modules prediction does import
    heavy = loaded & {"lightning", "lightning_fabric", "pytorch_lightning", "optuna", "sklearn", "pandas"}
    assert not heavy, f"bench predict --model imported {sorted(heavy)}"
