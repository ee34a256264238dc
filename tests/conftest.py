"""Shared fixtures: paths to ../shared, tiny encoder folders, a results directory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared"


def shared_path(relative: str) -> Path:
    """A file under ../shared, or skip the test with the reason."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(
            f"needs {path} (the KoBERT/KoELECTRA tokenizer and config files and the single-turn data, "
            "kept in ../shared beside the repository)"
        )
    return path


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    """An empty results directory."""
    path = tmp_path / "results"
    path.mkdir()
    return path


# Tiny architecture overrides (2 layers, hidden 32) for fast CPU tests of the real encoder families.
TINY_ENCODER_CONFIG = ("num_hidden_layers=2", "hidden_size=32", "num_attention_heads=2", "intermediate_size=64")


def tiny_config_args() -> list[str]:
    """``--encoder-config`` arguments that make any BERT-like encoder tiny."""
    return [arg for pair in TINY_ENCODER_CONFIG for arg in ("--encoder-config", pair)]


def tiny_config_pairs(extra: dict | None = None) -> tuple[tuple[str, object], ...]:
    """The same overrides as sorted ``(name, value)`` pairs for a RunConfig/EncoderRequest."""
    pairs = {key: int(value) for key, value in (pair.split("=") for pair in TINY_ENCODER_CONFIG)}
    return tuple(sorted({**pairs, **(extra or {})}.items()))


def bench(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the ``bench`` CLI in-process: exit code, stdout, stderr."""
    from bench.cli import main

    try:
        main(list(args))
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """:func:`bench` with the arguments as one list."""
    return bench(capsys, *args)


@pytest.fixture
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables wide enough that no cell is cut, whatever the terminal (or xdist worker) reports."""
    from bench.cli.app import console

    monkeypatch.setattr(console, "_width", 220)
