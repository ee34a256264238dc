"""Run settings declare themselves: every RunConfig field has a declaration, and the options of run, grid and
tune, the hash exclusions, the checks and the tune ranges come from it; ``--config`` files for grid and tune."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import optuna
import pytest
import typer

from bench.cli import options as opt
from bench.cli.app import app
from bench.config import DATA_SETTINGS, NOT_IN_HASH, SETTINGS, RunConfig, validate
from bench.data.types import DataOptions
from bench.errors import UsageError
from bench.tuning.grid import GRID_FIELDS
from bench.tuning.spaces import RUN_PARAMS, standard_space
from tests.conftest import bench


def command_flags(name: str) -> set[str]:
    command = typer.main.get_group(app).get_command(None, name)  # type: ignore[union-attr]
    return {flag for param in command.params for flag in (*param.opts, *param.secondary_opts)}


def test_every_run_config_field_is_declared():
    missing = [field.name for field in fields(RunConfig) if SETTINGS.get(field.name) is None]
    assert not missing, f"RunConfig fields without a setting(...) declaration: {missing}"


@pytest.mark.parametrize("command", ["run", "tune", "grid"])
def test_every_declared_flag_is_an_option_of_the_training_commands(command: str):
    flags = command_flags(command)
    declared = {
        flag
        for name, setting in SETTINGS.items()
        if setting is not None and setting.flags and not (command == "grid" and name in ("encoder", "head", "seed"))
        for spelled in setting.flags
        for flag in spelled.split("/")
    }
    assert declared - flags == set()
    if command == "grid":  # the axes' own options
        assert {"--encoders", "--heads", "--seeds", "--encoder-path"} <= flags


def data_flags(*, folds: bool = True, source: bool = True) -> set[str]:
    return {
        flag
        for name, setting in DATA_SETTINGS.items()
        if (folds or name not in ("folds", "folds_test")) and (source or name != "source")
        for flag in setting.flags
    }


def test_every_data_option_is_declared_and_an_option_of_the_commands_reading_data():
    assert set(DATA_SETTINGS) == {field.name for field in fields(DataOptions)}
    assert [name for name, setting in DATA_SETTINGS.items() if not setting.flags] == ["fold"]  # set by the commands
    for command in ("run", "grid", "tune"):
        assert data_flags() <= command_flags(command), command
    assert data_flags(folds=False) <= command_flags("baseline")
    inspect = typer.main.get_group(app).get_command(None, "data").get_command(None, "inspect")  # type: ignore[union-attr]
    assert data_flags(folds=False, source=False) <= {flag for param in inspect.params for flag in param.opts}


def test_data_options_convert_the_declared_options():
    values = {"data": "kote:/data", "text": "dialogue", "labels": "minor", "label_map": Path("map.yaml")}
    options = opt.data_options({**values, "folds": 5, "dedupe": True, "unrelated": 1})
    assert options == DataOptions(
        source="kote:/data", text_field="dialogue", label_scheme="minor", label_map="map.yaml", folds=5, dedupe=True
    )
    assert opt.data_options({}) == DataOptions()


def test_the_fold_scheme_is_outside_the_run_identity_by_its_declaration():
    base = RunConfig(lr=1e-3, batch_size=8)
    folded = base.with_updates(data=DataOptions(folds=5, fold=2, folds_test=True))
    assert folded.config_hash() == base.config_hash()
    assert base.with_updates(data=DataOptions(split_seed=7)).config_hash() != base.config_hash()
    assert {name for name, setting in DATA_SETTINGS.items() if not setting.identity} == {"folds", "fold", "folds_test"}


def test_identity_grid_lists_and_tune_ranges_follow_the_declarations():
    assert NOT_IN_HASH == {name for name, setting in SETTINGS.items() if not setting.identity}  # type: ignore[union-attr]
    assert {"results_dir", "device", "threads", "token_cache"} <= NOT_IN_HASH
    assert "bucketing" not in NOT_IN_HASH and "warmup_ratio" not in NOT_IN_HASH
    assert GRID_FIELDS["warmup_ratio"] == "--warmup-ratio"
    assert set(GRID_FIELDS) == set(opt.GRID_LISTS) == {name for name, s in SETTINGS.items() if s and s.grid}
    pretrained_space, scratch_space = standard_space(), standard_space(random_init=True)
    assert set(RUN_PARAMS) == set(pretrained_space) == set(scratch_space)
    assert SETTINGS["epochs"].search_scratch == scratch_space["epochs"] != pretrained_space["epochs"]  # type: ignore[union-attr]
    assert pretrained_space["warmup_ratio"] == SETTINGS["warmup_ratio"].search  # type: ignore[union-attr]


def test_a_setting_added_later_keeps_earlier_hashes_at_its_default(monkeypatch):
    import bench.config

    before = RunConfig(encoder="scratch")
    monkeypatch.setattr(bench.config, "OMITTED_AT_DEFAULT", {"warmup_ratio": 0.1})
    assert "warmup_ratio" not in before.identity()
    assert "warmup_ratio" in RunConfig(encoder="scratch", warmup_ratio=0.2).identity()
    assert before.config_hash() != RunConfig(encoder="scratch", warmup_ratio=0.2).config_hash()


def test_a_data_option_added_later_keeps_earlier_hashes_at_its_default(monkeypatch):
    import bench.config

    before = RunConfig(encoder="scratch")
    monkeypatch.setattr(bench.config, "DATA_OMITTED_AT_DEFAULT", {"dedupe": False})
    assert "dedupe" not in before.identity()["data"]
    deduped = RunConfig(encoder="scratch", data=DataOptions(dedupe=True))
    assert deduped.identity()["data"]["dedupe"] is True
    assert before.config_hash() != deduped.config_hash()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("warmup_ratio", 1.0, "--warmup-ratio must be in [0, 1), got 1.0"),
        ("epochs", 0, "--epochs must be at least 1, got 0"),
        ("lr", float("nan"), "--lr must be a positive number, got nan"),
        ("precision", "64", "--precision must be auto, 32, bf16-mixed or 16-mixed, got '64'"),
        ("threads", 0, "--threads must be >= 1, got 0"),
    ],
)
def test_validate_reports_a_declared_check_with_its_flag(name: str, value, message: str):
    config = RunConfig(encoder="scratch")
    object.__setattr__(config, name, value)
    with pytest.raises(UsageError) as error:
        validate(config)
    assert str(error.value) == message


def test_a_bad_setting_on_the_command_line_is_one_line_exit_2(capsys, results_dir: Path):
    code, out, err = bench(capsys, "run", "--warmup-ratio", "1.5", "--results", str(results_dir))
    assert code == 2 and err.strip() == "error: --warmup-ratio must be in [0, 1), got 1.5", err + out


def test_run_config_converts_the_declared_options():
    command = typer.main.get_group(app).get_command(None, "run")  # type: ignore[union-attr]
    defaults = {param.name: param.default for param in command.params}
    config = opt.run_config(
        {
            **defaults,
            "head": "mlp",
            "head_param": ["head.hidden_dim=64"],
            "dropout": 0.2,
            "warmup_ratio": 0.05,
            "results": Path("r"),
            "encoder_config": ["hidden_size=32"],
            "logger_dir": Path("t"),
        }
    )
    assert config.head_kwargs == {"hidden_dim": 64, "dropout": 0.2}
    assert (config.warmup_ratio, config.results_dir, config.logger_dir) == (0.05, "r", "t")
    assert config.encoder_config == (("hidden_size", 32),) and config.loggers == ()


# ------------------------------------------------------------------------------------------ --config files

TOML = """
heads = ["linear", "mlp"]
seeds = [1, 2]
warmup_ratio = [0.0, 0.1]
epochs = 1
bucketing = false

[head_param]
dropout = [0.1, 0.3]
"""

YAML = """
heads: linear
seeds: [1, 2]
warmup-ratio: [0.0, 0.1]
epochs: 1
"""


def plan(capsys, *args: str) -> tuple[int, str, str]:
    return bench(capsys, "grid", *args, "--dry-run")


def test_grid_config_toml_spans_the_file_s_axes(capsys, tmp_path: Path, results_dir: Path):
    path = tmp_path / "grid.toml"
    path.write_text(TOML)
    code, out, err = plan(capsys, "--config", str(path), "--results", str(results_dir))
    assert code == 0, err + out
    # 2 seeds × (linear × 2 warmups × 2 dropouts + mlp × 2 warmups × 2 dropouts)
    assert "16 runs, 16 to run" in out


def test_grid_config_yaml_and_the_command_line_overrides_it(capsys, tmp_path: Path, results_dir: Path):
    path = tmp_path / "grid.yaml"
    path.write_text(YAML)
    code, out, err = plan(capsys, "--config", str(path), "--results", str(results_dir))
    assert code == 0 and "4 runs, 4 to run" in out, err + out
    code, out, err = plan(
        capsys, "--config", str(path), "--seeds", "7", "--warmup-ratio", "0.2", "--results", str(results_dir)
    )
    assert code == 0 and "1 runs, 1 to run" in out, err + out
    row = next(line.split() for line in out.splitlines() if line.split()[:1] == ["0"])
    assert row[1:4] == ["scratch", "linear", "7"], row


def test_grid_config_matches_the_same_options_on_the_command_line(capsys, tmp_path: Path, results_dir: Path):
    path = tmp_path / "grid.yaml"
    path.write_text(YAML)
    from_file = plan(capsys, "--config", str(path), "--results", str(results_dir))
    from_line = plan(
        capsys,
        "--heads",
        "linear",
        "--seeds",
        "1,2",
        "--warmup-ratio",
        "0.0,0.1",
        "--epochs",
        "1",
        "--results",
        str(results_dir),
    )
    assert from_file[0] == from_line[0] == 0
    assert from_file[1] == from_line[1]  # same study name, same points and config hashes


@pytest.mark.parametrize(
    ("text", "suffix", "needle"),
    [
        ("epochz = 1\n", ".toml", "unknown key 'epochz'"),
        ("devices = 'two'\n", ".toml", "key 'devices'"),
        ("bucketing: 3\n", ".yaml", "key 'bucketing': expected true or false, got 3"),
        ("epochs = [1\n", ".toml", "is not valid TOML"),
        ("- 1\n", ".yml", "expected a mapping"),
        ("epochs: 1\n", ".json", "expected a .toml, .yaml or .yml file"),
    ],
)
def test_bad_grid_config_files_are_one_line_naming_the_file(
    capsys, tmp_path: Path, results_dir: Path, text: str, suffix: str, needle: str
):
    path = tmp_path / f"grid{suffix}"
    path.write_text(text)
    code, out, err = plan(capsys, "--config", str(path), "--results", str(results_dir))
    assert code == 2, err + out
    assert needle in err and str(path) in err and len(err.strip().splitlines()) == 1, err


def test_the_grid_study_records_its_config_file(tmp_path: Path):
    from bench.preparation.datasets import RunDatasets
    from bench.tuning.grid_worker import open_grid_study

    path = tmp_path / "grid.toml"
    path.write_text(TOML)
    config = RunConfig(encoder="scratch", train_limit=60, results_dir=str(tmp_path / "r"))
    datasets = RunDatasets.of_config(config)
    storage = optuna.storages.InMemoryStorage()
    study = open_grid_study(storage, "grid-x", [config], datasets, config_file=path)
    assert study.user_attrs["config_file"] == {"path": str(path), "content": TOML}


def test_tune_config_fixes_the_file_s_settings(capsys, tmp_path: Path, results_dir: Path):
    path = tmp_path / "tune.toml"
    path.write_text("epochs = 1\nmax_len = 32\n")
    code, out, err = bench(capsys, "tune", "--config", str(path), "--dry-run", "--results", str(results_dir))
    assert code == 0, err + out
    rows = {line.split()[0]: line for line in out.splitlines() if line.split()}
    assert "fixed (--config)" in rows["epochs"] and "fixed (--config)" in rows["max_len"]
    assert "fixed" not in rows["lr"]
    code, out, err = bench(
        capsys, "tune", "--config", str(path), "--epochs", "2", "--dry-run", "--results", str(results_dir)
    )
    assert code == 0, err + out
    epochs = next(line for line in out.splitlines() if line.split()[:1] == ["epochs"])
    assert "2" in epochs and "fixed (command line)" in epochs


def test_the_example_grid_file_is_valid(capsys, results_dir: Path):
    example = Path(__file__).resolve().parents[1] / "examples" / "grid.toml"
    code, out, err = plan(capsys, "--config", str(example), "--results", str(results_dir))
    assert code == 0 and "to run" in out, err + out


def test_run_hashes_stay_those_already_recorded():
    """A refactor of the declarations keeps every recorded run's hash (the leaderboard finds its rows again).

    The values were computed before the data options were declared (commit 805ddef)."""
    data = DataOptions(source="x.csv", split_seed=7, dedupe=True, label_map="m.yaml")
    assert RunConfig(lr=1e-3, batch_size=8).config_hash() == "bea817d50d603fd0"
    assert RunConfig(lr=1e-3, batch_size=8, data=DataOptions(folds=5, fold=2)).config_hash() == "bea817d50d603fd0"
    e5_bilstm = RunConfig(encoder="e5-small", head="bilstm", lr=1e-4, head_lr=1e-3, batch_size=16, data=data)
    assert e5_bilstm.config_hash() == "f2f3572d47c5cb63"
