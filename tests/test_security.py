"""Security: no unpickling, no remote code unless asked, no path traversal, no leaked database passwords."""

from __future__ import annotations

import ast
import json
import pickle
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

import encoders.hf as hf_module
from bench.cli import main
from bench.config import RunConfig
from bench.leaderboard.records import ClassScores, Predictions, RunMetrics
from bench.leaderboard.store import Leaderboard, database_path, run_key, runs_table, sqlite_url
from bench.runtime.results_folder import run_directory
from bench.tuning.workers import log_directory
from encoders import EncoderRequest, load_tokenizer
from encoders.hf import HFTokenizer, build_model, load_config
from encoders.registry import TOKENIZER_MARKER
from tests.conftest import ROOT, bench, tiny_config_args

SOURCES = [path for package in ("bench", "encoders", "heads") for path in sorted((ROOT / package).rglob("*.py"))]
PICKLE_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}
SECRET = "hunter2-s3cret"


# ------------------------------------------------------------------------------------------ pickle


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((keyword.value for keyword in call.keywords if keyword.arg == name), None)


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def test_library_code_never_unpickles() -> None:
    """torch.load only with weights_only=True, np.load never with allow_pickle=True, no pickle-like modules."""
    problems: list[str] = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                problems += [f"{where}: imports {alias.name}" for alias in node.names
                             if alias.name.split(".")[0] in PICKLE_MODULES]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLE_MODULES:
                problems.append(f"{where}: imports from {node.module}")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                name = node.func.attr
                if name == "load" and ast.unparse(node.func.value) == "torch" and not _is_true(
                    _keyword(node, "weights_only")
                ):
                    problems.append(f"{where}:{node.lineno}: torch.load without weights_only=True")
                if name == "load" and _is_true(_keyword(node, "allow_pickle")):
                    problems.append(f"{where}:{node.lineno}: allow_pickle=True")
                if name == "save" and ast.unparse(node.func.value) == "torch":
                    problems.append(f"{where}:{node.lineno}: torch.save writes a pickle; use safetensors")
    assert SOURCES and not problems, problems


def _refuse_unpickling(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("something was unpickled")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)


PICKLE_MAGIC = tuple(bytes([0x80, protocol]) for protocol in range(2, 6))


def test_checkpoints_and_exported_models_hold_no_pickles_and_load_without_unpickling(
    capsys, tmp_path: Path, monkeypatch
) -> None:
    results = tmp_path / "results"
    code, out, err = bench(
        capsys, "run", "--head", "mlp", *tiny_config_args(), "--train-limit", "120", "--epochs", "1",
        "--max-len", "32", "--results", str(results), "--no-progress",
    )
    assert code == 0, err + out
    (record,) = Leaderboard.for_results_dir(results).runs()
    exported = tmp_path / "exported"
    code, out, err = bench(capsys, "export-model", str(exported), "--run", record.run_id, "--results", str(results))
    assert code == 0, err + out

    for folder in (run_directory(results, record.run_id), exported):
        files = sorted(path for path in folder.rglob("*") if path.is_file())
        assert files and all(path.suffix in {".json", ".txt", ".safetensors", ".model"} for path in files), files
        for path in files:
            head = path.read_bytes()[:4]
            assert not head.startswith(PICKLE_MAGIC), f"{path} is a pickle"
            assert head != b"PK\x03\x04", f"{path} is a zip (what torch.save writes)"
        state = load_file(str(folder / "model.safetensors"))
        assert any(name.startswith("encoder.") for name in state) and any(name.startswith("head.") for name in state)

    _refuse_unpickling(monkeypatch)
    code, out, err = bench(capsys, "predict", "--model", str(exported), "--json", "오늘 정말 기분이 좋다")
    assert code == 0, err + out
    prediction = json.loads(out.strip().splitlines()[0])
    assert prediction["label"] in record.metrics.labels


# ------------------------------------------------------------------------------- trust_remote_code


class Refused(Exception):
    """Raised by the hub stand-ins once they have recorded their arguments."""


@pytest.fixture
def hub_calls(monkeypatch) -> list[tuple[str, dict]]:
    """Record AutoTokenizer/AutoConfig/AutoModel calls of encoders.hf and stop there (no hub here)."""
    calls: list[tuple[str, dict]] = []

    def recorder(name: str, result=None):
        def record(*args, **kwargs):
            calls.append((name, kwargs))
            if result is None:
                raise OSError(f"{name}: the hub is unreachable (test stand-in)")
            return result

        return record

    sentinel = object()
    monkeypatch.setattr(hf_module.AutoTokenizer, "from_pretrained", recorder("tokenizer"))
    monkeypatch.setattr(hf_module.AutoConfig, "from_pretrained", recorder("config", sentinel))
    monkeypatch.setattr(hf_module.AutoModel, "from_pretrained", recorder("model", sentinel))
    monkeypatch.setattr(hf_module.AutoModel, "from_config", recorder("model-from-config", sentinel))
    return calls


@pytest.mark.parametrize("flag", [[], ["--trust-remote-code"]])
def test_trust_remote_code_reaches_the_hub_only_when_asked(capsys, results_dir: Path, hub_calls, flag) -> None:
    code, _, err = bench(capsys, "run", "--encoder", "hf:someone/custom-model", *flag, "--results", str(results_dir))
    assert code == 2 and "hub is unreachable" in err and len(err.strip().splitlines()) == 1, err
    assert hub_calls == [("tokenizer", {"trust_remote_code": bool(flag)})]


@pytest.mark.parametrize("trust", [False, True])
def test_config_and_weights_are_loaded_with_the_requested_trust(hub_calls, trust: bool) -> None:
    load_config(EncoderRequest("hf:someone/custom-model", trust_remote_code=trust), "someone/custom-model", None)
    for random_init in (False, True):
        request = EncoderRequest("hf:someone/custom-model", trust_remote_code=trust, random_init=random_init)
        build_model(request, "someone/custom-model", config=object())
    assert [(name, kwargs["trust_remote_code"]) for name, kwargs in hub_calls] == [
        ("config", trust), ("model", trust), ("model-from-config", trust)
    ]


def _saved_hf_tokenizer(folder: Path) -> Path:
    """A tiny fast tokenizer saved by bench, with a marker that claims remote code was trusted."""
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "기분": 4, "좋다": 5}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]"
    )
    HFTokenizer(fast).save(folder)
    marker = json.loads((folder / TOKENIZER_MARKER).read_text(encoding="utf-8"))
    (folder / TOKENIZER_MARKER).write_text(json.dumps({**marker, "trust_remote_code": True}), encoding="utf-8")
    return folder


def test_a_saved_tokenizer_folder_cannot_switch_on_remote_code(tmp_path: Path, monkeypatch) -> None:
    folder = _saved_hf_tokenizer(tmp_path / "tokenizer")
    seen: list[bool] = []
    real = hf_module.AutoTokenizer.from_pretrained

    def recording(*args, **kwargs):
        seen.append(kwargs["trust_remote_code"])
        return real(*args, **kwargs)

    monkeypatch.setattr(hf_module.AutoTokenizer, "from_pretrained", recording)
    tokenizer = load_tokenizer(folder)  # what `bench predict --model DIR` does with a model from elsewhere
    assert tokenizer.tokenize("기분 좋다") == ["기분", "좋다"]
    hf_module.create_hf_tokenizer(EncoderRequest("hf:x", path=folder))
    hf_module.create_hf_tokenizer(EncoderRequest("hf:x", path=folder, trust_remote_code=True))
    assert seen == [False, False, True]


# --------------------------------------------------------------------------------- path traversal


@settings(max_examples=100, deadline=None)
@given(config_hash=st.text(), fingerprint=st.text())
def test_run_ids_are_12_hex_characters(config_hash: str, fingerprint: str) -> None:
    run_id = run_key(config_hash, fingerprint)
    assert len(run_id) == 12 and set(run_id) <= set("0123456789abcdef")
    assert run_directory(Path("results"), run_id) == Path("results") / "runs" / run_id


@pytest.mark.parametrize("run_id", ["../../etc", "..", "a/b", "/etc/passwd", "abc\\..\\x", "", "ab cd", "run.1"])
def test_run_directory_refuses_anything_but_a_plain_id(run_id: str) -> None:
    with pytest.raises(ValueError, match="invalid run id"):
        run_directory(Path("results"), run_id)


def _finished_board(results: Path) -> str:
    """A leaderboard with one finished run; returns its id."""
    board = Leaderboard.for_results_dir(results)
    run_id = board.start_run(RunConfig(), "fp", "sample", {})
    board.finish_run(run_id, RunMetrics(0.5, 0.5, 0.5, ["a", "b"], {}, [[1, 0], [0, 1]]))
    board.close()
    return run_id


@pytest.mark.parametrize("token", ["../../etc", "../runs", "/etc/passwd", "%", "_"])
def test_run_arguments_cannot_reach_outside_results(capsys, tmp_path: Path, token: str) -> None:
    results = tmp_path / "results"
    _finished_board(results)
    commands = (
        ["show", token],
        ["predict", "--run", token, "x"],
        ["export-model", str(tmp_path / "out"), "--run", token],
        ["compare", token, token],
    )
    for args in commands:
        code, _, err = bench(capsys, *args, "--results", str(results))
        assert code == 2 and f"unknown run {token!r}" in err, (args, err)
    assert not (tmp_path / "out").exists()


def test_a_tampered_leaderboard_row_cannot_point_outside_results(capsys, tmp_path: Path) -> None:
    # A shared database edited by someone else: the run id itself is a path.
    results = tmp_path / "results"
    run_id = _finished_board(results)
    target = tmp_path / "outside"
    (target / "runs").mkdir(parents=True)
    engine = sa.create_engine(sqlite_url(database_path(results)))
    with engine.begin() as conn:
        conn.execute(sa.update(runs_table).where(runs_table.c.run_id == run_id).values(run_id="../outside"))
    engine.dispose()
    for args in (["predict", "--run", "../outside", "x"],
                 ["export-model", str(tmp_path / "out"), "--run", "../outside"]):
        code, _, err = bench(capsys, *args, "--results", str(results))
        assert code == 2 and "malformed run id '../outside'" in err, (args, err)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("study", ["../../../tmp/escape", "/etc/x", "..", "tune-hf:org/model-linear-abc", "a\\..\\b"])
def test_worker_logs_of_any_study_name_stay_under_results(study: str) -> None:
    results = Path("/srv/results")
    folder = log_directory(results, study)
    assert folder.parent == results / "logs" and folder.name not in ("", ".", "..") and "/" not in folder.name


# ------------------------------------------------------------------------------ database passwords

URLS = [
    f"postgresql://bench:{SECRET}@127.0.0.1:1/runs",
    f"postgresql+psycopg://bench@127.0.0.1:1/runs?password={SECRET}&sslmode=disable",
]
GRID = ["grid", "--heads", "linear", "--epochs", "1", "--no-progress"]


@pytest.mark.parametrize("url", URLS)
def test_a_failing_database_url_never_shows_its_password(capfd, tmp_path: Path, url: str) -> None:
    results = str(tmp_path / "results")
    commands = [
        ["leaderboard", "--storage", url],
        ["export", "--format", "csv", "--storage", url],
        ["show", "abc", "--storage", url],
        [*GRID, "--storage", url, "--results", results],
        [*GRID, "--study-storage", url, "--results", results],
        ["run", "--epochs", "1", "--no-progress", "--storage", url, "--results", results],
        ["tune", "--trials", "1", "--storage", url, "--results", results, "--no-progress"],
    ]
    for args in commands:
        try:
            main(args)
            code = 0
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        out, err = capfd.readouterr()  # file descriptors: logging and library output included
        assert code == 2, (args, out, err)
        assert SECRET not in out + err, (args, out, err)
        assert "127.0.0.1" in err and len(err.strip().splitlines()) == 1, (args, err)
    assert not list(tmp_path.rglob("*.log"))


def test_urls_with_passwords_in_a_run_never_reach_the_database_or_exports(capsys, tmp_path: Path) -> None:
    results = tmp_path / "results"
    url = f"postgresql://bench:{SECRET}@db.example:5432/runs"
    board = Leaderboard.for_results_dir(results)
    config = RunConfig(encoder_path=f"{url}/weights", study=f"study at {url}")
    run_id = board.start_run(config, "fp", "sample", {"storage": url, "note": f"copied from {url}"})
    board.finish_run(
        run_id,
        RunMetrics(0.5, 0.5, 0.5, ["a", "b"], {"a": ClassScores(1, 1, 1, 1), "b": ClassScores(0, 0, 0, 1)},
                   [[1, 0], [1, 0]], predictions=Predictions(["x", "y"], [0, 1], [0, 0], [[0.9, 0.1], [0.8, 0.2]])),
    )
    failed = board.start_run(config.with_updates(seed=2), "fp", "sample", {"storage": url})
    board.fail_run(failed, f"OperationalError: could not connect to {url}")
    board.close()

    raw = b"".join(path.read_bytes() for path in results.glob("leaderboard.db*"))
    assert SECRET.encode() not in raw
    with sqlite3.connect(database_path(results)) as conn:
        dump = "\n".join(conn.iterdump())
    assert SECRET not in dump and "bench:***@db.example" in dump

    outputs = []
    for fmt in ("csv", "md", "latex", "html", "json"):
        code, out, err = bench(capsys, "export", "--format", fmt, "--status", "finished", "--status", "failed",
                               "--results", str(results))
        assert code == 0, err
        outputs.append(out)
    for args in (["show", run_id], ["show", failed], ["leaderboard", "--status", "failed"]):
        code, out, err = bench(capsys, *args, "--results", str(results))
        assert code == 0, err
        outputs.append(out)
    assert all(SECRET not in output for output in outputs)
