"""CLI fuzz test: Hypothesis builds argument lists for every command and runs them in-process.

Whatever the arguments (valid and invalid option values, odd Unicode with rich markup and
control characters, paths to files, folders, symbolic link loops and missing files, database
URLs with and without schemes and passwords), ``bench`` must answer without a traceback, with an
exit code in {0, 1, 2, 130}, a refusal of at most a few lines, no raw control character on the
terminal, and no password from its input in its output.

Commands stay cheap: ``grid`` and ``tune`` always get ``--dry-run``, ``run`` always ends with an
option it refuses before training (the other tests train). The default profile (``ci``) keeps the
test within two minutes; ``BENCH_FUZZ_PROFILE=long`` runs many more examples locally, and
``BENCH_FUZZ_LOG=FILE`` appends each generated command and its exit code to FILE.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import traceback
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from bench.cli import main
from tests.conftest import tiny_config_args
from tests.fixtures.data.builders import labelled_rows, write_table

# Examples per command.
PROFILES = {
    "ci": {"max_examples": 8},
    "long": {"max_examples": 300},
}
PROFILE = os.environ.get("BENCH_FUZZ_PROFILE", "ci")
FUZZ = settings(
    max_examples=PROFILES[PROFILE]["max_examples"],
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=PROFILE == "ci",  # the same examples on every CI run; a failure is reproducible
    print_blob=True,
)
EXIT_CODES = {0, 1, 2, 130}
MAX_REFUSAL_LINES = 3
# Passwords placed in generated URLs; none may appear in any output (as written or percent-decoded).
PASSWORDS = ("Zx9-hunter2", "s3cr3t~pw", "한글비번42")
# C0 controls other than tab/newline, and ESC: never written raw to a terminal.
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


def _urls() -> list[str]:
    urls = []
    for password in PASSWORDS:
        encoded = quote(password, safe="")
        urls += [
            f"user:{password}@host:5432/db",
            f"postgresql://user:{password}@127.0.0.1:1/db",
            f"postgresql://user:{password}@host:port/db",
            f"postgresql://user:{password}@[::1/db",
            f"postgresql://user:{encoded}@127.0.0.1:1/db",
            f"postgresql://user@127.0.0.1:1/db?password={encoded}",
            f"mysql://user:{password}@127.0.0.1:1/db",
            f"sqlite:///nowhere/x.db?password={password}",
        ]
    return urls + ["sqlite:///", "sqlite://", "postgresql://", "://", "postgresql://[", "sqlite:////dev/null/x.db"]


URLS = _urls()
HOSTILE = [
    "[/]",
    "[bold]x[/bold]",
    "[link=file:///etc/passwd]x[/link]",
    "\x1b[31mred\x1b[0m",
    "\x1b]8;;http://x\x07y",
    "<img src=x onerror=alert(1)>",
    '=HYPERLINK("http://x")',
    "+1",
    "@SUM(A1)",
    "\u200b",
    "\ufeff",
    "\u202eevil",
    "",
    " ",
    "-",
    "--",
    "기쁨",
    "1.0",
    "nan",
    "inf",
    "-1",
    "0",
    "1e309",
    "9" * 30,
    "../../../../etc/passwd",
    "~",
    "g-",
    "%",
    "a\nb",
    "\r",
    "\t",
]
odd_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12),
)
numbers = st.one_of(st.integers(-3, 100_000).map(str), st.sampled_from(["0", "1", "2", "abc", "1.5", "-0", "1e3"]))
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(repr),
    st.sampled_from(["0.1", "1e-3", "-1", "nan", "x", "0"]),
)


class World:
    """Files, folders, odd paths, a leaderboard with a trained run and an exported model."""

    def __init__(self, root: Path) -> None:
        from tests.tiny_runs import train_tiny_run

        self.root = root
        self.valid = write_table(root / "valid.csv", labelled_rows(("기쁨", "슬픔"), 12))
        long = " 아주 긴 문장이 여기에 있습니다" * 4
        hostile_rows = [(f"{text}{long}", label) for text, label in labelled_rows(("[/]", "\x1b[31mred"), 12)]
        self.hostile = write_table(root / "[red]x<img src=x onerror=alert(1)>\x1b[31m.csv", hostile_rows)
        (root / "empty.csv").write_text("", encoding="utf-8")
        (root / "binary.xlsx").write_bytes(bytes(range(256)) * 4)
        (root / "folder").mkdir()
        (root / "loop.csv").symlink_to(root / "loop.csv")
        (root / "broken.csv").symlink_to(root / "gone.csv")
        (root / "map.yaml").write_text("기쁨: joy\n슬픔: sad\n", encoding="utf-8")
        (root / "bad-map.yaml").write_text("[unclosed", encoding="utf-8")
        (root / "texts.txt").write_text("좋은 하루\n\u200b\n나쁜 하루\n", encoding="utf-8")
        self.results = root / "results"
        self.record = train_tiny_run(self.results)
        self.model = root / "model"
        assert (
            _call(["export-model", "--run", self.record.run_id, "--results", str(self.results), str(self.model)])[0]
            == 0
        )
        self.fresh = itertools.count()
        self.paths = [
            str(path)
            for path in (
                self.valid,
                self.hostile,
                root / "empty.csv",
                root / "binary.xlsx",
                root / "folder",
                root / "loop.csv",
                root / "broken.csv",
                root / "missing.csv",
                root / "texts.txt",
                root / "map.yaml",
                root / "bad-map.yaml",
                self.model,
                self.results,
                self.results / "leaderboard.db",
            )
        ] + ["sample", "aihub:" + str(root / "folder"), "single-turn:" + str(self.valid), "multi-turn:/nope", "."]

    def fresh_dir(self) -> str:
        """A path under the world that does not exist yet (for commands that write)."""
        return str(self.root / "out" / f"{next(self.fresh)}")


def _call(args: list[str]) -> tuple[int, str]:
    """Run ``bench`` in-process; the exit code, or a formatted traceback as the second item on an exception."""
    try:
        main(args)
    except SystemExit as exit_:
        code = exit_.code
        return (code if isinstance(code, int) else (0 if code is None else 2)), ""
    except BaseException:  # noqa: BLE001  (any exception is the failure this test looks for)
        return -1, traceback.format_exc()
    return 0, ""


COMMANDS = (
    "baseline",
    "compare",
    "data inspect",
    "encoders",
    "errors",
    "export",
    "export-model",
    "grid",
    "heads",
    "leaderboard",
    "predict",
    "report",
    "run",
    "show",
    "tokenize",
    "tune",
)


def _command(draw: st.DrawFn, world: World, name: str) -> list[str]:
    paths = st.one_of(st.sampled_from(world.paths), odd_text)
    run_ids = st.one_of(st.sampled_from([world.record.run_id, world.record.run_id[:4], "g-", "zzz"]), odd_text)
    read = {"--results": st.one_of(st.just(str(world.results)), paths), "--storage": st.sampled_from(URLS)}
    write = {"--results": st.one_of(st.builds(world.fresh_dir), paths), "--storage": st.sampled_from(URLS)}
    data = {
        "--data": paths,
        "--text-col": st.sampled_from(["text", "label", "문장"]) | odd_text,
        "--label-col": st.sampled_from(["text", "label"]) | odd_text,
        "--sheet": odd_text,
        "--label-map": paths,
        "--labels": st.sampled_from(["major6", "merged5", "minor"]) | odd_text,
        "--text": st.sampled_from(["first-human", "dialogue"]) | odd_text,
        "--split-seed": numbers,
        "--train-limit": numbers,
    }
    model = {
        "--encoder": st.sampled_from(["scratch", "kobert", "hf:org/model", "hf:", "bogus"]) | odd_text,
        "--head": st.sampled_from(["linear", "mlp", "cnn", "bogus"]) | odd_text,
        "--head-param": st.sampled_from(["hidden=8", "hidden=-1", "x", "=1", "dropout=nan"]) | odd_text,
        "--encoder-config": st.sampled_from(["hidden_size=8", "num_hidden_layers=0", "x"]) | odd_text,
        "--encoder-path": paths,
        "--max-len": numbers,
        "--batch-size": numbers,
        "--lr": floats,
        "--dropout": floats,
        "--epochs": numbers,
        "--seed": numbers,
        "--device": st.sampled_from(["cpu", "cuda:7", "tpu"]),
        "--precision": st.sampled_from(["32", "bf16-mixed", "64"]) | odd_text,
        "--num-workers": numbers,
    }
    view = {
        "--view": st.sampled_from(["runs", "groups", "pareto", "seeds"]) | odd_text,
        "--status": st.sampled_from(["finished", "failed", "bogus"]) | odd_text,
        "--resamples": numbers,
        "--bootstrap-seed": numbers,
    }
    commands: dict[str, tuple[list[st.SearchStrategy[list[str]]], dict[str, st.SearchStrategy[str]], list[str]]] = {
        "leaderboard": (
            [],
            {
                **read,
                **view,
                "--encoder": odd_text,
                "--head": odd_text,
                "--columns": odd_text,
                "--format": st.sampled_from(["csv", "md", "json", "pdf"]) | odd_text,
            },
            [],
        ),
        "errors": (
            [st.lists(run_ids, min_size=1, max_size=1)],
            {
                **read,
                "--class": odd_text,
                "--gold": odd_text,
                "--predicted": odd_text,
                "--limit": numbers,
                "--columns": odd_text,
            },
            [],
        ),
        "export": (
            [],
            {
                **read,
                **view,
                "--format": st.sampled_from(["csv", "md", "latex", "html", "json", "pdf"]),
                "--out": st.one_of(st.builds(world.fresh_dir), paths),
            },
            [],
        ),
        "show": ([st.lists(run_ids, min_size=1, max_size=1)], read, []),
        "compare": (
            [st.lists(run_ids, min_size=2, max_size=2)],
            {**read, "--resamples": numbers, "--examples": numbers},
            [],
        ),
        "report": (
            [],
            {
                **read,
                "--out": st.one_of(st.builds(lambda: world.fresh_dir() + ".html"), paths),
                "--font": paths,
                "--resamples": st.sampled_from(["1", "5", "0", "-1"]),
            },
            [],
        ),
        "predict": (
            [st.lists(odd_text, max_size=3)],
            {
                **read,
                "--run": run_ids,
                "--model": st.one_of(st.just(str(world.model)), paths),
                "--input": paths,
                "--text-col": odd_text,
                "--batch-size": numbers,
                "--device": st.sampled_from(["cpu", "cuda", "auto", "tpu"]) | odd_text,
            },
            [],
        ),
        "export-model": (
            [st.lists(st.one_of(st.builds(world.fresh_dir), paths), min_size=1, max_size=1)],
            {**read, "--run": run_ids},
            [],
        ),
        "data inspect": (
            [st.lists(paths, max_size=1)],
            {
                **{k: v for k, v in data.items() if k not in ("--data", "--train-limit")},
                "--encoder": model["--encoder"],
                "--max-len": numbers,
                "--json": st.just(""),
            },
            [],
        ),
        "encoders": ([], {"--columns": odd_text, "--wide": st.just("")}, []),
        "heads": ([], {}, []),
        "tokenize": (
            [st.lists(odd_text, min_size=1, max_size=2)],
            {"--encoder": model["--encoder"], "--encoder-path": paths, "--json": st.just("")},
            [],
        ),
        "baseline": (
            [],
            {
                **write,
                **data,
                "--kind": st.sampled_from(["tfidf", "majority", "svm"]) | odd_text,
                "--c-grid": st.sampled_from(["1", "0.1,1", "x", "-1", ""]) | odd_text,
            },
            [],
        ),
        "run": ([], {**write, **data, **model}, ["run-refusal"]),
        "grid": (
            [],
            {
                **write,
                **data,
                "--encoders": model["--encoder"],
                "--heads": model["--head"],
                "--seeds": st.sampled_from(["1", "1,2", "x", ""]) | odd_text,
                "--lr": odd_text | floats,
                "--leaderboard": st.sampled_from(URLS),
                "--gpus": odd_text,
            },
            ["--dry-run"],
        ),
        "tune": (
            [],
            {
                **write,
                **data,
                "--encoder": model["--encoder"],
                "--head": model["--head"],
                "--trials": numbers,
                "--study": odd_text,
                "--space": paths,
                "--pruner": odd_text,
                "--leaderboard": st.sampled_from(URLS),
            },
            ["--dry-run"],
        ),
    }
    positionals, options, tail = commands[name]
    args = name.split()
    for positional in positionals:
        args += draw(positional)
    for option in draw(st.lists(st.sampled_from(sorted(options)), max_size=5, unique=True)) if options else []:
        value = draw(options[option])
        args += [option] if option in ("--json", "--wide") else [option, value]
    if tail == ["run-refusal"]:
        # Refused before any training: the last occurrence of an option wins, so this one decides.
        args += ["--no-progress", *tiny_config_args(), "--epochs", "1", "--train-limit", "20"]
        args += draw(
            st.sampled_from(
                [
                    ["--epochs", "0"],
                    ["--lr", "-1"],
                    ["--encoder", "bogus"],
                    ["--head", "bogus"],
                    ["--batch-size", "0"],
                    ["--max-len", "2"],
                    ["--dropout", "2"],
                ]
            )
        )
    else:
        args += tail
    return args


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return World(tmp_path_factory.mktemp("fuzz"))


@pytest.mark.parametrize("command", COMMANDS)
def test_no_command_answers_any_arguments_with_a_traceback_or_a_leak(
    world: World, capsys, monkeypatch, command: str
) -> None:
    from hypothesis import given

    monkeypatch.chdir(world.root)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("COLUMNS", "160")

    @FUZZ
    @given(st.data())
    def check(data: st.DataObject) -> None:
        args = data.draw(st.composite(lambda draw: _command(draw, world, command))(), label="args")
        code, trace = _call(args)
        if os.environ.get("BENCH_FUZZ_LOG"):
            with open(os.environ["BENCH_FUZZ_LOG"], "a", encoding="utf-8") as log:
                log.write(json.dumps({"args": args, "code": code}, ensure_ascii=False) + "\n")
        captured = capsys.readouterr()
        out, err = captured.out, captured.err
        assert not trace, f"bench {args!r} raised:\n{trace}"
        assert code in EXIT_CODES, (args, code, err)
        assert "Traceback (most recent call last)" not in out + err, (args, err)
        if code == 2:
            lines = err.strip().splitlines()
            assert 1 <= len(lines) <= MAX_REFUSAL_LINES, (args, err)
        for password in PASSWORDS:
            for shown in {password, quote(password, safe="")}:
                assert shown not in out + err, (args, password, out, err)
        machine_output = args[:1] == ["export"] and "csv" in args  # CSV keeps the data's characters
        assert not RAW_CONTROL.search(err), (args, err)
        assert machine_output or not RAW_CONTROL.search(out), (args, out)
        if "--json" in args and code == 0 and args[0] in ("predict", "tokenize", "data"):
            for line in out.splitlines():
                json.loads(line)

    check()
