"""Tables people can read: in an 80-column terminal and piped into a log no value is split across lines.

The leaderboard holds a real tiny run (whose test texts are stored) and hand-built runs with long names
(``hf:some/long-model-id``, ``layernorm-mlp``), flagged runs and a failed run with a long error; every
table-printing command is rendered in both places and each row's values must sit whole on one line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bench.cli.grid import print_grid_summary
from bench.leaderboard.export import format_value
from bench.leaderboard.records import RunRecord
from bench.leaderboard.store import Leaderboard
from tests.conftest import bench
from tests.leaderboard_helpers import LABELS, make_config, make_metrics, noisy_predictions, record_run
from tests.tiny_runs import train_tiny_run

LONG_ENCODER = "hf:some/long-model-id"
LONG_HEAD = "layernorm-mlp"
TEXTS = [f"오늘 {i}번째 문장은 정말 길고 감정이 복잡하게 섞여 있어서 분류하기 어려운 예시입니다" for i in range(120)]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\]8;[^\x1b]*\x1b\\")


@pytest.fixture(scope="module")
def board_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real tiny run on the sample data, plus hand-built runs on ``fp-a`` (long names, flags, a failure)."""
    results = tmp_path_factory.mktemp("results")
    train_tiny_run(results, head=LONG_HEAD)
    gold = np.random.default_rng(0).integers(0, 3, len(TEXTS))
    with Leaderboard.for_results_dir(results) as board:
        for seed in (1, 2, 3):
            for encoder, accuracy in ((LONG_ENCODER, 0.85), ("scratch", 0.6)):
                predicted = noisy_predictions(gold, accuracy, np.random.default_rng([seed, int(accuracy * 100)]), 3)
                metrics = make_metrics(gold, predicted, timings={"train_seconds": 12.5}, total_params=123_456_789)
                metrics.predictions.texts = list(TEXTS)  # type: ignore[union-attr]
                record_run(board, make_config(encoder=encoder, head=LONG_HEAD, seed=seed), metrics)
        collapsed = make_metrics(gold, np.zeros_like(gold))
        record_run(board, make_config(encoder=LONG_ENCODER, head="bilstm", seed=7), collapsed)
        failed = board.start_run(make_config(encoder=LONG_ENCODER, head="cnn", seed=9), "fp-a", "sample", {})
        board.fail_run(failed, "RuntimeError: " + "the encoder ran out of memory while building its cache " * 3)
    return results


@pytest.fixture(params=["terminal-80", "piped"])
def console_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The CLI console as an 80-column terminal, or as a pipe (which rich also takes to be 80 columns)."""
    from bench.cli.app import console

    monkeypatch.setattr(console, "_force_terminal", request.param == "terminal-80")
    monkeypatch.setattr(console, "_width", 80)
    return request.param


def render(capsys: pytest.CaptureFixture[str], mode: str, *args: str) -> list[str]:
    """``bench ARGS`` output lines (colours removed); an 80-column terminal's lines must fit in 80 columns."""
    code, out, err = bench(capsys, *args)
    assert code == 0, err
    lines = [ANSI.sub("", line).rstrip() for line in out.splitlines()]
    if mode == "terminal-80":
        too_wide = [line for line in lines if len(line) > 80]
        assert not too_wide, "\n".join(too_wide)
    return lines


def line_with(lines: list[str], value: str) -> str:
    """The one line that holds ``value`` whole (it is not split over lines)."""
    found = [line for line in lines if value in line]
    assert found, f"{value!r} is not on any one line of:\n" + "\n".join(lines)
    return found[0]


def assert_row(lines: list[str], key: str, *values: str) -> None:
    """The line holding ``key`` also holds each of ``values`` whole."""
    line = line_with(lines, key)
    for value in values:
        assert value in line, f"{value!r} is not on the line of {key!r}: {line!r}"


def runs(results: Path) -> list[RunRecord]:
    with Leaderboard.for_results_dir(results) as board:
        return board.runs()


def test_leaderboard_runs_view_keeps_every_value_on_its_line(board_dir: Path, console_mode: str, capsys) -> None:
    lines = render(capsys, console_mode, "leaderboard", "--results", str(board_dir))
    for record in runs(board_dir):
        values = [record.encoder, record.head]
        if record.fingerprint == "fp-a" or console_mode == "piped":  # a lone finished run needs no status at 80
            values.append(record.status)
        if record.macro_f1 is not None:
            values.append(format_value(record.macro_f1, "score"))
        assert_row(lines, record.run_id, *values)
        if record.flags:
            assert "⚑" in line_with(lines, record.run_id)
    legend = "\n".join(lines)
    assert "⚑C collapsed" in legend and "⚑M below-majority" in legend


def test_leaderboard_groups_view_keeps_every_value_on_its_line(board_dir: Path, console_mode: str, capsys) -> None:
    args = ["leaderboard", "--results", str(board_dir), "--view", "groups", "--resamples", "50"]
    code, out, _ = bench(capsys, *args, "--format", "json")
    groups = json.loads(out)
    assert code == 0 and len(groups) >= 3
    lines = render(capsys, console_mode, *args)
    for group in groups:
        mean = group["macro_f1_mean"]
        std = group["macro_f1_std"]
        spread = f"{mean:.4f} ± {std:.4f}" if std is not None else f"{mean:.4f}"
        assert_row(lines, group["key"], group["encoder"], group["head"], spread)
        if group["flags"]:
            assert "⚑" in line_with(lines, group["key"])


def test_wide_and_columns_choose_what_is_shown(board_dir: Path, console_mode: str, capsys) -> None:
    lines = render(capsys, "piped", "leaderboard", "--results", str(board_dir), "--columns", "run,head,macro-f1")
    header = next(line for line in lines if "macro-F1" in line)
    assert header.split() == ["run", "head", "macro-F1"]
    code, _, err = bench(capsys, "leaderboard", "--results", str(board_dir), "--columns", "run,nonsense")
    assert code == 2 and "unknown column 'nonsense'" in err and err.count("\n") == 1
    code, out, _ = bench(capsys, "leaderboard", "--results", str(board_dir), "--wide")
    assert code == 0 and "train s" in out and "params" in out


def test_leaderboard_format_writes_machine_tables(board_dir: Path, capsys) -> None:
    code, out, _ = bench(capsys, "leaderboard", "--results", str(board_dir), "--format", "json")
    rows = json.loads(out)
    assert code == 0 and {row["run_id"] for row in rows} == {record.run_id for record in runs(board_dir)}
    code, out, _ = bench(capsys, "leaderboard", "--results", str(board_dir), "--format", "csv", "--status", "failed")
    assert code == 0 and out.count("\n") == 2 and "failed" in out
    code, out, _ = bench(
        capsys, "leaderboard", "--results", str(board_dir), "--format", "md", "--view", "groups", "--resamples", "20"
    )
    assert code == 0 and out.startswith("### ")
    code, _, err = bench(capsys, "leaderboard", "--results", str(board_dir), "--format", "docx")
    assert code == 2 and "--format must be one of" in err


def test_show_prints_scores_per_class_and_confusion_on_whole_lines(board_dir: Path, console_mode: str, capsys) -> None:
    record = next(record for record in runs(board_dir) if record.encoder == LONG_ENCODER and record.head == LONG_HEAD)
    lines = render(capsys, console_mode, "show", record.run_id[:8], "--results", str(board_dir))
    assert_row(lines, "encoder / head / seed", f"{LONG_ENCODER} / {LONG_HEAD} / {record.seed}")
    assert_row(lines, "test macro-F1", format_value(record.macro_f1, "score"))
    assert record.metrics is not None
    for label in LABELS:
        scores = record.metrics.per_class[label]
        assert_row(
            lines,
            f"{label} ",
            f"{scores.precision:.4f}",
            f"{scores.recall:.4f}",
            f"{scores.f1:.4f}",
            str(scores.support),
        )
    matrix_title = lines.index(line_with(lines, "confusion matrix"))
    for label, row in zip(LABELS, record.metrics.confusion, strict=True):
        line = next(line for line in lines[matrix_title:] if line.startswith(label))
        assert [int(value) for value in line.split()[1:]] == row


def test_compare_shows_the_sides_and_the_sentences_they_disagree_on(board_dir: Path, console_mode: str, capsys) -> None:
    records = [
        record
        for record in runs(board_dir)
        if record.head == LONG_HEAD and record.seed == 1 and record.fingerprint == "fp-a"
    ]
    a, b = sorted(records, key=lambda record: record.encoder)[:2]
    lines = render(
        capsys,
        console_mode,
        "compare",
        a.run_id,
        b.run_id,
        "--results",
        str(board_dir),
        "--resamples",
        "100",
        "--examples",
        "3",
    )
    assert_row(lines, f"A  {a.run_id}", f"{a.encoder} / {a.head}", format_value(a.macro_f1, "score"))
    assert_row(lines, f"B  {b.run_id}", f"{b.encoder} / {b.head}", format_value(b.macro_f1, "score"))
    summary = " ".join(lines[lines.index(line_with(lines, "A and B disagree on")) :][:2])
    with Leaderboard.for_results_dir(board_dir) as board:
        pa, pb = board.predictions(a.run_id), board.predictions(b.run_id)
    differ = sum(x != y for x, y in zip(pa.predicted, pb.predicted, strict=True))
    assert f"disagree on {differ} of {len(TEXTS)} shared test examples" in summary
    rows = [line for line in lines if "오늘" in line]
    assert len(rows) == 3, "\n".join(lines)
    for line in rows:
        gold, label_a, label_b, right = line.split()[:4]
        assert {gold, label_a, label_b} <= set(LABELS) and label_a != label_b
        assert right == ("A" if label_a == gold else "B" if label_b == gold else "neither")


def test_errors_lists_misclassified_sentences_of_a_real_run(board_dir: Path, console_mode: str, capsys) -> None:
    record = next(record for record in runs(board_dir) if record.fingerprint != "fp-a")
    with Leaderboard.for_results_dir(board_dir) as board:
        predictions = board.predictions(record.run_id)
    assert predictions.texts is not None and len(predictions.texts) == len(predictions.gold)  # the run stored them
    assert record.metrics is not None
    labels = record.metrics.labels
    wrong = [i for i, (g, p) in enumerate(zip(predictions.gold, predictions.predicted, strict=True)) if g != p]
    lines = render(capsys, console_mode, "errors", record.run_id, "--results", str(board_dir), "--limit", "0")
    assert f"{len(wrong)} of {len(predictions.gold)} test examples misclassified" in " ".join(lines[:2])
    confident = max(wrong, key=lambda i: predictions.probabilities[i][predictions.predicted[i]])
    gold, predicted = labels[predictions.gold[confident]], labels[predictions.predicted[confident]]
    confidence = f"{predictions.probabilities[confident][predictions.predicted[confident]]:.4f}"
    first_row = next(line for line in lines[1:] if confidence in line)
    assert first_row.split()[:3] == [gold, predicted, confidence]  # the most confident mistake comes first
    if console_mode == "piped":
        assert predictions.texts[confident] in first_row  # the whole sentence, never cut when piped

    target = labels[predictions.gold[wrong[0]]]
    lines = render(
        capsys, console_mode, "errors", record.run_id, "--results", str(board_dir), "--gold", target, "--limit", "0"
    )
    expected = sum(labels[predictions.gold[i]] == target for i in wrong)
    assert f"{expected} match the filter" in " ".join(lines[:2])
    code, _, err = bench(capsys, "errors", record.run_id, "--results", str(board_dir), "--class", "nope")
    assert code == 2 and "--class 'nope' is not a class of this run" in err and err.count("\n") == 1


def test_encoders_keep_names_and_ids_whole(console_mode: str, capsys) -> None:
    from encoders import list_encoders

    lines = render(capsys, console_mode, "encoders")
    for entry in list_encoders():
        assert_row(lines, entry.name + " ", *([entry.hub_id] if entry.hub_id else []))


def test_grid_summary_keeps_every_value_on_its_line(board_dir: Path, console_mode: str, capsys) -> None:
    records = [record for record in runs(board_dir) if record.fingerprint == "fp-a"]
    points = [make_config(encoder=record.encoder, head=record.head, seed=record.seed) for record in records]
    datasets = SimpleNamespace(
        name="sample",
        by_fold={None: SimpleNamespace(fingerprint="fp-a")},
        dataset=lambda point: SimpleNamespace(fingerprint="fp-a"),
    )
    with Leaderboard.for_results_dir(board_dir) as board:
        print_grid_summary(points, ["lr"], datasets, board)  # type: ignore[arg-type]
    lines = [ANSI.sub("", line).rstrip() for line in capsys.readouterr().out.splitlines()]
    if console_mode == "terminal-80":
        assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    for record in records:
        values = [record.encoder, record.head, record.status]
        if record.macro_f1 is not None:
            values.append(format_value(record.macro_f1, "score"))
        assert_row(lines, record.run_id, *values)


def test_a_narrow_terminal_drops_low_priority_columns_first_and_shortens_only_free_text() -> None:
    import io

    from rich.console import Console

    from bench.cli.tables import Column, FitTable, print_table

    table = FitTable(
        "t",
        [
            Column("id"),
            Column("name"),
            Column("seed", "right", priority=2),
            Column("note", priority=1, free_text=True, min_width=6),
            Column("score", "right"),
            Column("extra", detail=True),
        ],
    )
    table.add_row("0123456789ab", LONG_ENCODER, "7", "a long free-text note that cannot fit", "0.7414", "hidden")
    shown = {}
    rows = {}
    for width in (120, 62, 52, 45, 30):
        out = io.StringIO()
        print_table(Console(file=out, width=width, force_terminal=True, color_system=None), table)
        lines = out.getvalue().splitlines()
        header, row = lines[1].split(), lines[3]
        shown[width], rows[width] = header, row
        for value in ("0123456789ab", LONG_ENCODER, "0.7414"):
            assert value in row, (width, row)  # values are never cut or wrapped, however narrow
    assert shown[120] == shown[62] == ["id", "name", "seed", "note", "score"]  # detail columns only with --wide
    assert "cannot fit" in rows[120] and "…" in rows[62]  # free text is shortened before any column goes
    assert shown[52] == ["id", "name", "note", "score"]  # then the seed (priority 2) goes …
    assert shown[45] == shown[30] == ["id", "name", "score"]  # … then the note


def test_a_confusion_matrix_wider_than_the_terminal_numbers_its_columns(monkeypatch, capsys, results_dir: Path):
    from bench.cli.app import console

    labels = ("extremely-long-label-one", "extremely-long-label-two", "extremely-long-label-three")
    gold = [0, 1, 2] * 5
    with Leaderboard.for_results_dir(results_dir) as board:
        run_id = record_run(board, make_config(), make_metrics(gold, gold[1:] + gold[:1], labels))
    monkeypatch.setattr(console, "_force_terminal", True)
    monkeypatch.setattr(console, "_width", 60)
    lines = render(capsys, "terminal-60", "show", run_id, "--results", str(results_dir))
    start = lines.index(line_with(lines, "confusion matrix"))
    assert lines[start + 1].split() == ["gold", "\\", "predicted", "0", "1", "2"]
    assert [line.split()[:2] for line in lines[start + 3 : start + 6]] == [
        [str(i), label] for i, label in enumerate(labels)
    ]
