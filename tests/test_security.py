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
from bench.machine.results_folder import run_directory
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
                problems += [
                    f"{where}: imports {alias.name}"
                    for alias in node.names
                    if alias.name.split(".")[0] in PICKLE_MODULES
                ]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLE_MODULES:
                problems.append(f"{where}: imports from {node.module}")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                name = node.func.attr
                if (
                    name == "load"
                    and ast.unparse(node.func.value) == "torch"
                    and not _is_true(_keyword(node, "weights_only"))
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
        capsys,
        "run",
        "--head",
        "mlp",
        *tiny_config_args(),
        "--train-limit",
        "120",
        "--epochs",
        "1",
        "--max-len",
        "32",
        "--results",
        str(results),
        "--no-progress",
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
        ("config", trust),
        ("model", trust),
        ("model-from-config", trust),
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
    for args in (
        ["predict", "--run", "../outside", "x"],
        ["export-model", str(tmp_path / "out"), "--run", "../outside"],
    ):
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
        code, out, err = bench(capfd, *args)  # file descriptors: logging and library output included
        assert code == 2, (args, out, err)
        assert SECRET not in out + err, (args, out, err)
        assert "127.0.0.1" in err and len(err.strip().splitlines()) == 1, (args, err)
    assert not list(tmp_path.rglob("*.log"))


def test_urls_with_passwords_in_a_run_never_reach_the_database_or_exports(capsys, tmp_path: Path) -> None:
    results = tmp_path / "results"
    url = f"postgresql://bench:{SECRET}@db.example:5432/runs"
    board = Leaderboard.for_results_dir(results)
    # No such folder exists, so its weights identity is given rather than computed from its files.
    config = RunConfig(encoder_path=f"{url}/weights", weights="random", study=f"study at {url}")
    run_id = board.start_run(config, "fp", "sample", {"storage": url, "note": f"copied from {url}"})
    board.finish_run(
        run_id,
        RunMetrics(
            0.5,
            0.5,
            0.5,
            ["a", "b"],
            {"a": ClassScores(1, 1, 1, 1), "b": ClassScores(0, 0, 0, 1)},
            [[1, 0], [1, 0]],
            predictions=Predictions(["x", "y"], [0, 1], [0, 0], [[0.9, 0.1], [0.8, 0.2]]),
        ),
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
        code, out, err = bench(
            capsys, "export", "--format", fmt, "--status", "finished", "--status", "failed", "--results", str(results)
        )
        assert code == 0, err
        outputs.append(out)
    for args in (["show", run_id], ["show", failed], ["leaderboard", "--status", "failed"]):
        code, out, err = bench(capsys, *args, "--results", str(results))
        assert code == 0, err
        outputs.append(out)
    assert all(SECRET not in output for output in outputs)


# ------------------------------------------------------------------ issue 14: URL shapes, escaping, model folders

PASSWORD = "Pa55-wörd"
URL_SHAPES = [
    f"user:{PASSWORD}@host:5432/db",  # no scheme
    f"postgresql://user:{PASSWORD}@host:port/db",  # non-numeric port
    f"postgresql://user:{PASSWORD}@[::1/db",  # broken IPv6 host
    "postgresql://user:Pa55%2Dw%C3%B6rd@127.0.0.1:1/db",  # percent-encoded password
    f"postgresql://user@127.0.0.1:1/db?password={PASSWORD}",  # password in the query string
    f"postgresql://user:{PASSWORD[:4]}@{PASSWORD[4:]}@127.0.0.1:1/db",  # an unescaped '@' in the password
    f"{PASSWORD}",  # not a URL at all
]


def _password_parts(url: str) -> list[str]:
    return [PASSWORD, PASSWORD[4:], "w%C3%B6rd", "wörd"] if url != PASSWORD else []


@pytest.mark.parametrize("url", URL_SHAPES)
def test_no_url_shape_shows_its_password_in_any_command(capfd, tmp_path: Path, url: str) -> None:
    results = str(tmp_path / "results")
    commands = [
        ["leaderboard", "--storage", url],
        ["export", "--format", "md", "--storage", url],
        ["show", "abc", "--storage", url],
        ["compare", "abc", "def", "--storage", url],
        ["report", "--storage", url, "--results", results],
        ["predict", "--run", "abc", "--storage", url, "text"],
        ["export-model", "--run", "abc", "--storage", url, str(tmp_path / "out")],
        [*GRID, "--storage", url, "--results", results, "--dry-run"],
        [*GRID, "--leaderboard", url, "--results", results, "--dry-run"],
        ["tune", "--trials", "1", "--storage", url, "--results", results, "--dry-run"],
    ]
    for args in commands:
        code, out, err = bench(capfd, *args)
        for part in _password_parts(url):
            assert part not in out + err, (args, part, out, err)
        if code == 0 and "--dry-run" in args:
            continue  # a well-formed URL: the plan is printed without connecting
        assert code == 2, (args, out, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (args, err)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("url", URL_SHAPES[:3])
def test_urls_that_do_not_parse_are_one_line_usage_errors_that_say_why(capsys, url: str) -> None:
    code, _, err = bench(capsys, "leaderboard", "--storage", url)
    assert code == 2 and PASSWORD not in err
    reason = {0: "no scheme", 1: "the port must be a number", 2: "unclosed '[' in an IPv6 host"}
    assert reason[URL_SHAPES.index(url)] in err and "user:***@" in err


HOSTILE = "<img src=x onerror=alert(1)>|**b**[l](j:x)\x1b[31m[/]"


def _hostile_board(results: Path) -> str:
    """A leaderboard whose dataset, encoder and labels are hostile strings."""
    from tests.leaderboard_helpers import make_config, make_metrics, record_run

    labels = ("\x1b[2J\x1b[31mred", "[/]", "=cmd|' /C calc'!A0")
    metrics = make_metrics([0, 1, 2, 0, 1, 2], [0, 1, 2, 0, 2, 2], labels)
    with Leaderboard.for_results_dir(results) as board:
        return record_run(board, make_config(encoder='=HYPERLINK("http://x")', head="mlp"), metrics, dataset=HOSTILE)


def test_exports_escape_hostile_names_for_each_format(capsys, tmp_path: Path) -> None:
    results = tmp_path / "results"
    _hostile_board(results)
    outputs = {}
    for fmt in ("md", "html", "latex", "csv"):
        code, out, err = bench(capsys, "export", "--format", fmt, "--results", str(results))
        assert code == 0, err
        outputs[fmt] = out
    for fmt in ("md", "html"):
        assert "<img" not in outputs[fmt] and "&lt;img src=x onerror=alert(1)&gt;" in outputs[fmt]
    assert "\\|" in outputs["md"] and "\\*\\*b\\*\\*" in outputs["md"] and "\\[l\\]" in outputs["md"]
    assert all("\x1b" not in text for text in outputs.values() if text is not outputs["csv"])
    assert r"\textless{}img" in outputs["latex"]
    cells = [row.split(",")[3] for row in outputs["csv"].splitlines()[1:]]
    assert outputs["csv"].count("'=HYPERLINK") == 1, outputs["csv"]
    assert cells and not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)


def test_show_and_leaderboard_print_hostile_labels_literally(capsys, tmp_path: Path, wide_console) -> None:
    results = tmp_path / "results"
    run_id = _hostile_board(results)
    for args in (["show", run_id], ["leaderboard"], ["leaderboard", "--view", "groups"]):
        code, out, err = bench(capsys, *args, "--results", str(results))
        assert code == 0, err
        assert "\x1b" not in out + err
    assert "\\x1b[2J\\x1b[31mred" in out or "\\x1b" in out
    code, out, err = bench(capsys, "show", run_id, "--results", str(results))
    assert "[/]" in out and "\\x1b[2J" in out


def test_a_killed_report_writer_leaves_temporaries_the_next_writer_sweeps(capsys, tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    import time

    results = tmp_path / "results"
    _hostile_board(results)
    host = socket.gethostname().replace(".", "_")
    dead = subprocess.Popen(["true"])
    dead.wait()
    leftovers = {
        "dead": results / f".report.html.{host}.{dead.pid}.abc123.tmp",
        "old": results / ".report.html.k3y9x2.tmp",  # an older writer's name, a day old
    }
    alive = results / f".report.html.{host}.{os.getpid()}.zzz999.tmp"  # a writer still running: kept
    recent = results / ".report.html.q1w2e3.tmp"  # unknown owner, recent: kept
    for path in (*leftovers.values(), alive, recent):
        path.write_text("partial", encoding="utf-8")
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(leftovers["old"], (day_ago, day_ago))
    code, _, err = bench(capsys, "report", "--results", str(results))
    assert code == 0, err
    assert (results / "report.html").is_file()
    assert not any(path.exists() for path in leftovers.values())
    assert alive.exists() and recent.exists()
    assert "\x1b" not in (results / "report.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def exported_model(tmp_path_factory) -> Path:
    """A tiny trained run exported as a model folder."""
    from tests.tiny_runs import train_tiny_run

    results = tmp_path_factory.mktemp("model") / "results"
    record = train_tiny_run(results)
    target = results.parent / "exported"
    assert main_code(["export-model", "--results", str(results), "--run", record.run_id, str(target)]) == 0
    return target


def main_code(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def _edited_model(source: Path, folder: Path, edit) -> Path:
    import shutil

    shutil.copytree(source, folder)
    card = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    edit(card, folder)
    (folder / "model.json").write_text(json.dumps(card), encoding="utf-8")
    return folder


def _marker_edit(key: str, value) -> object:
    def edit(card: dict, folder: Path) -> None:
        marker = folder / "tokenizer" / TOKENIZER_MARKER
        payload = json.loads(marker.read_text(encoding="utf-8"))
        payload[key] = value
        marker.write_text(json.dumps(payload), encoding="utf-8")

    return edit


def _symlink_edit(card: dict, folder: Path) -> None:
    (folder / "tokenizer" / "extra.txt").symlink_to("/etc/passwd")


def _config_edit(card: dict, folder: Path) -> None:
    (folder / "tokenizer" / "tokenizer_config.json").write_text('{"vocab_file": "../../../../etc/passwd"}')


MODEL_EDITS = {
    "max_len beyond the positions": (lambda card, _: card.update(max_len=10**6), "field 'max_len' is 1000000"),
    "max_len a boolean": (lambda card, _: card.update(max_len=True), "field 'max_len' is missing or not a whole"),
    "max_len too small": (lambda card, _: card.update(max_len=1), "field 'max_len' is 1; it must be at least 2"),
    "labels repeated": (lambda card, _: card.update(labels=["a"] * len(card["labels"])), "names a label twice"),
    "labels empty strings": (lambda card, _: card.update(labels=[""] * len(card["labels"])), "non-empty strings"),
    "unknown head": (lambda card, _: card.update(head="attention"), "head 'attention' is not registered"),
    "unknown field": (lambda card, _: card.update(extra=1), "unknown field 'extra'"),
    "scores not numbers": (lambda card, _: card.update(scores={"macro_f1": "high"}), "finite numbers"),
    "empty run id": (lambda card, _: card.update(run_id=" "), "field 'run_id' is missing or not a non-empty"),
    "tokenizer file outside": (_marker_edit("model_file", "../../../../etc/passwd"), "points outside the model"),
    "tokenizer file absolute": (_marker_edit("vocab_file", "/etc/passwd"), "points outside the model folder"),
    "marker field of a wrong type": (_marker_edit("preprocessing", {"x": 1}), "unknown sentencepiece preprocessing"),
    "marker without a kind": (_marker_edit("kind", 3), "expected a JSON object with a 'kind' string"),
    "symlink out of the folder": (_symlink_edit, "points outside the model folder"),
    "tokenizer config names a file outside": (_config_edit, "vocab_file '../../../../etc/passwd' points outside"),
}


@pytest.mark.parametrize("case", MODEL_EDITS)
def test_every_field_of_a_model_folder_is_checked(capsys, tmp_path: Path, exported_model: Path, case: str) -> None:
    edit, needle = MODEL_EDITS[case]
    folder = _edited_model(exported_model, tmp_path / "model", edit)
    code, out, err = bench(capsys, "predict", "--model", str(folder), "좋은 하루")
    assert code == 2, (out, err)
    assert needle in err and len(err.strip().splitlines()) == 1, err
    assert "root:" not in out + err


def test_predict_escapes_labels_and_warns_on_empty_texts(
    capsys, tmp_path: Path, exported_model: Path, wide_console
) -> None:
    def hostile_labels(card: dict, _: Path) -> None:
        card["labels"] = [f"\x1b[31m[/]{index}" for index in range(len(card["labels"]))]

    folder = _edited_model(exported_model, tmp_path / "model", hostile_labels)
    code, out, err = bench(capsys, "predict", "--model", str(folder), "좋은 하루", "\u200b", "\x1b[2J[bold]x")
    assert code == 0, err
    assert "\x1b" not in out + err
    assert "\\x1b[31m[/]" in out and "[bold]x" in out
    assert err.strip() == (
        "warning: text 2 is empty (only whitespace or invisible characters); the label given to an "
        "empty text says nothing about it"
    )


def test_export_model_into_the_current_empty_folder(capsys, tmp_path: Path, exported_model: Path, monkeypatch) -> None:
    results = exported_model.parent / "results"
    run_id = json.loads((exported_model / "model.json").read_text(encoding="utf-8"))["run_id"]
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    code, out, err = bench(capsys, "export-model", "--run", run_id, "--results", str(results), ".")
    assert code == 0, err
    assert {path.name for path in here.iterdir()} == {"model.json", "model.safetensors", "tokenizer"}
    code, out, err = bench(capsys, "predict", "--model", ".", "좋은 하루")
    assert code == 0, err
