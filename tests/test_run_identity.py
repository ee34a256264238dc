"""One effective configuration is one run: defaults resolved before hashing, weights identified by content."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import sqlalchemy as sa

from bench.config import RunConfig
from bench.leaderboard.store import Leaderboard, database_path, run_key, sqlite_url
from bench.weights import folder_digest
from heads import head_class
from tests.conftest import bench, tiny_config_args
from tests.tiny_runs import TRAIN_LIMIT

TINY = [
    *tiny_config_args(),
    "--train-limit",
    str(TRAIN_LIMIT),
    "--epochs",
    "1",
    "--max-len",
    "32",
    "--batch-size",
    "16",
    "--lr",
    "0.001",
    "--no-progress",
]


def test_spelling_out_a_default_keeps_the_config_hash():
    omitted = RunConfig(head="bilstm")
    spelled = RunConfig(head="bilstm", head_params=(("dropout", "0.1"), ("pooling", "last")))
    assert spelled.config_hash() == omitted.config_hash()
    assert RunConfig(head="bilstm", head_params=(("pooling", "mean"),)).config_hash() != omitted.config_hash()
    assert RunConfig(lr=5e-4).config_hash() == RunConfig().config_hash(), "the scratch default lr is 5e-4"
    stored = json.loads(omitted.canonical().to_json())
    assert dict(map(tuple, stored["head_params"])) == head_class("bilstm").defaults
    assert RunConfig.from_json(omitted.canonical().to_json()).config_hash() == omitted.config_hash()


def test_changing_a_head_default_in_code_gives_a_new_id(monkeypatch):
    before = RunConfig(head="cnn").config_hash()
    cnn = head_class("cnn")
    changed = tuple(
        replace(param, default=65) if param.name == "num_filters" else param for param in cnn.hyperparameters
    )
    monkeypatch.setattr(cnn, "hyperparameters", changed)
    assert RunConfig(head="cnn").config_hash() != before


def _model_folder(path: Path, weights: bytes) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text('{"hidden_size": 32}')
    (path / "model.safetensors").write_bytes(weights)
    (path / "README.md").write_text("notes do not count")
    return path


def test_weights_identity_follows_the_files_not_the_folder(tmp_path: Path):
    folder = _model_folder(tmp_path / "a" / "kobert", b"\x01" * 4096)
    config = RunConfig(encoder="kobert", encoder_path=str(folder), results_dir=str(tmp_path / "results"))
    assert config.weights is not None and config.weights.startswith("folder:")
    assert RunConfig(encoder="kobert").weights == "hub:skt/kobert-base-v1"
    assert RunConfig().weights == "random"

    moved = tmp_path / "b" / "models" / "kobert"
    moved.parent.mkdir(parents=True)
    shutil.move(folder, moved)
    assert config.with_updates(encoder_path=str(moved)).config_hash() == config.config_hash()

    (moved / "README.md").write_text("edited notes")
    assert config.with_updates(encoder_path=str(moved)).config_hash() == config.config_hash()

    random_before = config.with_updates(encoder_path=str(moved), random_init=True)
    # Same size, same mtime: only the content differs, and the id must still change.
    stat = (moved / "model.safetensors").stat()
    (moved / "model.safetensors").write_bytes(b"\x01" * 4095 + b"\x02")
    os.utime(moved / "model.safetensors", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    replaced = config.with_updates(encoder_path=str(moved))
    assert replaced.config_hash() != config.config_hash()

    random_init = replaced.with_updates(random_init=True)
    assert random_init.weights is not None and random_init.weights.startswith("random:")
    assert random_init.weights == random_before.weights, "random init reads no weights"


def test_folder_digest_is_cached_on_disk(tmp_path: Path):
    folder = _model_folder(tmp_path / "model", b"\x03" * 1024)
    cache = tmp_path / "cache"
    digest = folder_digest(folder, cache)
    assert [path.read_text() for path in (cache / "weights").iterdir()] == [digest]


def test_one_configuration_through_run_grid_and_tune_is_one_row(capsys, results_dir: Path, tmp_path: Path):
    where = ["--results", str(results_dir)]
    code, out, err = bench(capsys, "run", "--head", "linear", *TINY, *where)
    assert code == 0, err + out
    (first,) = Leaderboard.for_results_dir(results_dir).runs()

    code, out, err = bench(
        capsys, "run", "--head", "linear", "--dropout", "0.1", "--head-param", "dropout=0.1", *TINY, *where
    )
    assert code == 0, err + out
    code, out, err = bench(
        capsys, "grid", "--encoders", "scratch", "--heads", "linear", "--seeds", "1", "--dropout", "0.1", *TINY, *where
    )
    assert code == 0, err + out
    space = tmp_path / "space.yaml"
    space.write_text("head_lr: null\nlinear.dropout: 0.1\n")
    code, out, err = bench(
        capsys,
        "tune",
        "--head",
        "linear",
        "--trials",
        "1",
        "--pruner",
        "none",
        "--weight-decay",
        "0.01",
        "--warmup-ratio",
        "0.1",
        "--space",
        str(space),
        *TINY,
        *where,
    )
    assert code == 0, err + out

    runs = Leaderboard.for_results_dir(results_dir).runs()
    assert [run.run_id for run in runs] == [first.run_id]
    assert runs[0].attempts == 1, "the recorded run was trained again"


def _old_format_leaderboard(results_dir: Path) -> None:
    """A leaderboard as the previous version wrote it: no flag columns, hashes of the unresolved configs."""
    old = sa.MetaData()
    runs = sa.Table(
        "runs",
        old,
        *(
            sa.Column(name, kind)
            for name, kind in (
                ("run_id", sa.String(64)),
                ("config_hash", sa.String(64)),
                ("fingerprint", sa.String(128)),
                ("dataset", sa.String(255)),
                ("encoder", sa.String(255)),
                ("head", sa.String(255)),
                ("seed", sa.Integer),
                ("status", sa.String(16)),
                ("config", sa.JSON),
                ("metrics", sa.JSON),
                ("macro_f1", sa.Float),
                ("accuracy", sa.Float),
                ("val_macro_f1", sa.Float),
                ("error", sa.Text),
                ("environment", sa.JSON),
                ("study", sa.String(255)),
                ("trial", sa.Integer),
                ("pid", sa.Integer),
                ("host", sa.String(255)),
                ("attempts", sa.Integer),
                ("created_at", sa.String(40)),
                ("updated_at", sa.String(40)),
            )
        ),
    )
    predictions = sa.Table(
        "predictions",
        old,
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("example_ids", sa.JSON),
        sa.Column("gold", sa.JSON),
        sa.Column("predicted", sa.JSON),
        sa.Column("probabilities", sa.JSON),
    )
    engine = sa.create_engine(sqlite_url(database_path(results_dir)))
    old.create_all(engine)
    spellings = [
        ({"pooling": "last"}, "2026-01-01", "finished", 0.5, [0, 1, 2, 0]),
        ({}, "2026-01-02", "finished", 2 / 9, [0, 0, 0, 0]),
        ({"pooling": "mean"}, "2026-01-03", "failed", None, None),
    ]
    with engine.begin() as conn:
        for index, (params, when, status, f1, predicted) in enumerate(spellings):
            config = json.loads(RunConfig(head="bilstm", head_params=tuple(params.items())).to_json())
            config.pop("weights")
            config["head_params"] = [list(pair) for pair in params.items()]
            conn.execute(
                sa.insert(runs).values(
                    run_id=f"old{index:09d}",
                    config_hash=f"oldhash{index}",
                    fingerprint="fp",
                    dataset="sample",
                    encoder="scratch",
                    head="bilstm",
                    seed=1,
                    status=status,
                    config=config,
                    metrics=None
                    if f1 is None
                    else {
                        "macro_f1": f1,
                        "accuracy": f1,
                        "val_macro_f1": f1,
                        "labels": ["a", "b", "c"],
                        "per_class": {},
                        "confusion": [],
                    },
                    macro_f1=f1,
                    accuracy=f1,
                    val_macro_f1=f1,
                    environment={},
                    attempts=1,
                    created_at=when,
                    updated_at=when,
                )
            )
            if predicted is not None:
                conn.execute(
                    sa.insert(predictions).values(
                        run_id=f"old{index:09d}",
                        example_ids=["1", "2", "3", "4"],
                        gold=[0, 1, 2, 0],
                        predicted=predicted,
                        probabilities=[],
                    )
                )
    engine.dispose()


def test_an_old_format_leaderboard_is_migrated_without_duplicates(capsys, results_dir: Path, wide_console):
    _old_format_leaderboard(results_dir)
    board = Leaderboard.for_results_dir(results_dir)
    runs = {run.run_id: run for run in board.runs()}
    assert len(runs) == 3, "migration must keep every row"
    spelled, omitted, other = runs["old000000000"], runs["old000000001"], runs["old000000002"]
    canonical = RunConfig(head="bilstm").config_hash()
    assert spelled.config_hash == omitted.config_hash or {spelled.config_hash, omitted.config_hash} >= {canonical}
    kept = [run for run in (spelled, omitted) if run.config_hash == canonical]
    assert len(kept) == 1 and kept[0].run_id == "old000000001", "the most recent finished row keeps the configuration"
    assert spelled.flags == ["duplicate"]
    assert omitted.flags == ["collapsed", "below-majority"] and omitted.predicted_classes == 1
    assert other.config_hash == RunConfig(head="bilstm", head_params=(("pooling", "mean"),)).config_hash()
    assert board.find(canonical, "fp").run_id == "old000000001"

    # Recording the same configuration again reuses the migrated row's id instead of adding one.
    config = RunConfig(head="bilstm", head_params=(("dropout", 0.1),))
    assert board.start_run(config, "fp", "sample", {}) == "old000000001" != run_key(canonical, "fp")
    assert len(board.runs()) == 3
    board.close()

    # Opening again changes nothing.
    assert [run.config_hash for run in Leaderboard.for_results_dir(results_dir).runs()] == [
        run.config_hash for run in runs.values()
    ]
    code, out, err = bench(capsys, "leaderboard", "--results", str(results_dir))
    assert code == 0, err
    assert "duplicate" in out
