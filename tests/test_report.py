"""``bench report`` (one offline HTML page), the macro-F1 vs latency Pareto view, and Hangul in plots."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import bench.cli  # noqa: F401  (registers the commands)
from bench.baselines import baseline_config
from bench.baselines.fitting import run_baseline
from bench.cli.app import main
from bench.leaderboard.pareto import pareto_points
from bench.leaderboard.records import RunRecord
from bench.leaderboard.store import Leaderboard
from bench.reporting import PlotStyle, build_report
from bench.reporting.fonts import find_hangul_font, plot_labels, romanize
from tests.conftest import run_cli
from tests.leaderboard_helpers import make_config, make_metrics, make_record
from tests.tiny_runs import TRAIN_LIMIT, tiny_run_config, train_tiny_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SAMPLE_LABELS = ("기쁨", "당황", "분노", "불안", "상처", "슬픔")


pytestmark = pytest.mark.usefixtures("wide_console")


@pytest.fixture(scope="module")
def filled(tmp_path_factory) -> tuple[Path, dict[str, RunRecord]]:
    """A tiny trained run, both baselines and one failed run, on the sample data."""
    results = tmp_path_factory.mktemp("report") / "results"
    rows = {"trained": train_tiny_run(results)}
    data = tiny_run_config(results).data
    with Leaderboard.for_results_dir(results) as board:
        for kind in ("tfidf", "majority"):
            config = baseline_config(kind, data, train_limit=TRAIN_LIMIT, results_dir=str(results), c_grid=[1, 10])
            rows[kind] = run_baseline(config, board)
        failed = board.start_run(tiny_run_config(results, head="mlp"), rows["trained"].fingerprint, "sample", {})
        board.fail_run(failed, "RuntimeError: <script>alert(1)</script> went wrong")
        rows["failed"] = board.get_run(failed)
    return results, rows


@pytest.fixture(scope="module")
def report_page(filled, tmp_path_factory) -> Path:
    """The report written by the CLI (plots romanised or in Hangul, whichever this machine supports)."""
    results, _ = filled
    out = tmp_path_factory.mktemp("page") / "report.html"
    main(["report", "--results", str(results), "--out", str(out), "--resamples", "200"])
    return out


def test_report_is_one_self_contained_page(filled, report_page) -> None:
    _, rows = filled
    page = report_page.read_text(encoding="utf-8")
    assert "<script" not in page.replace("&lt;script", "")  # the failed run's error is escaped, never markup
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "no resource may come from the network"
    assert "@import" not in page and "url(" not in page
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) >= 5  # Pareto, per-class heat map, confusion matrices, learning curves
    for source in images:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1]).startswith(PNG_SIGNATURE)
    for record in rows.values():
        assert record.run_id in page
    for text in ("tfidf", "logreg", "majority", "scratch", "95% CI", "Pareto", "Unfinished runs", *SAMPLE_LABELS):
        assert text in page


def test_leaderboard_table_ranks_groups_with_confidence_intervals(filled, report_page) -> None:
    _, rows = filled
    page = report_page.read_text(encoding="utf-8")
    table = page[page.index('<table class="leaderboard">') :]
    table = table[: table.index("</table>")]
    body_rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table.split("<tbody>", 1)[1], re.S)
    assert len(body_rows) == 3 and rows["failed"].run_id not in table
    assert rows["tfidf"].run_id in body_rows[0]  # TF-IDF learns the sample data; the tiny encoder barely does
    for row in body_rows:
        assert re.search(r"\[0\.\d{4}, [01]\.\d{4}\]", row)  # a bootstrap CI for every group


def test_pareto_front() -> None:
    fast = make_record(
        make_config(seed=1), 0.40, 0.5, metrics=make_metrics([0, 1], [0, 1], timings={"latency_ms_batch1": 1.0})
    )
    slow_good = make_record(
        make_config(seed=2), 0.80, 0.8, metrics=make_metrics([0, 1], [0, 1], timings={"latency_ms_batch1": 10.0})
    )
    slow_bad = make_record(
        make_config(seed=3), 0.30, 0.3, metrics=make_metrics([0, 1], [0, 1], timings={"latency_ms_batch1": 10.0})
    )
    twin = make_record(
        make_config(seed=4), 0.40, 0.5, metrics=make_metrics([0, 1], [0, 1], timings={"latency_ms_batch1": 1.0})
    )
    no_latency = make_record(make_config(seed=5), 0.99, 0.99, metrics=make_metrics([0, 1], [0, 1]))
    elsewhere = make_record(
        make_config(seed=6),
        0.10,
        0.1,
        fingerprint="fp-b",
        metrics=make_metrics([0, 1], [0, 1], timings={"latency_ms_batch1": 50.0}),
    )
    points = {point.run_id: point for point in pareto_points([fast, slow_good, slow_bad, twin, no_latency, elsewhere])}
    assert no_latency.run_id not in points
    assert points[fast.run_id].optimal and points[twin.run_id].optimal  # equal points do not dominate each other
    assert points[slow_good.run_id].optimal
    assert points[slow_bad.run_id].dominated_by in (fast.run_id, twin.run_id, slow_good.run_id)
    assert points[elsewhere.run_id].optimal  # only compared within its own dataset


def test_leaderboard_pareto_view(filled, capsys) -> None:
    results, rows = filled
    code, out, _ = run_cli(["leaderboard", "--results", str(results), "--view", "pareto"], capsys)
    assert code == 0
    expected = {point.run_id: point for point in pareto_points(rows.values())}
    assert len(expected) == 3 and rows["failed"].run_id not in out
    for run_id, point in expected.items():
        line = next(line for line in out.splitlines() if run_id in line)
        assert ("★" in line) == point.optimal
    assert any(point.optimal for point in expected.values())


def test_plots_romanise_korean_without_a_hangul_font(filled) -> None:
    results, _ = filled
    with Leaderboard.for_results_dir(results) as board:
        page = build_report(board, style=PlotStyle(None), resamples=50)
    assert "No font with Hangul glyphs" in page and "gippeum = 기쁨" in page and "seulpeum = 슬픔" in page


def test_plots_use_a_hangul_font_when_there_is_one(filled) -> None:
    font = find_hangul_font()
    if font is None:
        pytest.skip("no font with Hangul glyphs on this machine (install fonts-nanum or fonts-noto-cjk)")
    results, _ = filled
    with Leaderboard.for_results_dir(results) as board:
        page = build_report(board, style=PlotStyle(font), resamples=50)
    assert "No font with Hangul glyphs" not in page and font.name in page


def test_romanisation() -> None:
    assert romanize("행복") == "haengbok" and romanize("분노") == "bunno" and romanize("슬픔 ok") == "seulpeum ok"
    assert plot_labels(["기쁨", "joy", "漢字"], hangul=False) == ["gippeum", "joy", "class 2"]
    assert plot_labels(["기쁨", "gippeum"], hangul=False) == ["class 0", "class 1"]  # collisions stay apart
    assert plot_labels(["기쁨"], hangul=True) == ["기쁨"]


def test_report_needs_finished_runs(tmp_path, capsys) -> None:
    Leaderboard.for_results_dir(tmp_path / "empty").close()
    code, out, err = run_cli(["report", "--results", str(tmp_path / "empty")], capsys)
    assert code == 2 and "no finished runs" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["report", "--results", str(tmp_path / "none")], capsys)
    assert code == 2 and "no leaderboard" in err
    code, _, err = run_cli(["report", "--results", str(tmp_path / "empty"), "--font", str(tmp_path)], capsys)
    assert code == 2 and "--font" in err


def test_report_has_an_error_analysis_of_the_best_runs(filled, report_page) -> None:
    _, rows = filled
    page = report_page.read_text(encoding="utf-8")
    with Leaderboard.for_results_dir(filled[0]) as board:
        stored = board.predictions(rows["trained"].run_id)
    assert stored.texts is not None
    run_id = rows["trained"].run_id
    block = page[page.index(f'id="errors-{run_id}"') :]
    block = block[: block.index("</details>")]
    assert f'href="#errors-{run_id}"' in page  # the leaderboard links to it
    metrics = rows["trained"].metrics
    assert metrics is not None
    for label in metrics.labels:
        assert f'<td class="text">{label}</td>' in block
    assert '<table class="class-scores">' in block and '<table class="confusion">' in block
    wrong = [i for i, (g, p) in enumerate(zip(stored.gold, stored.predicted, strict=True)) if g != p]
    assert f"{len(wrong)} misclassified test example(s)" in block
    if wrong:
        confident = max(wrong, key=lambda i: stored.probabilities[i][stored.predicted[i]])
        first = block[block.index('<table class="mistakes">') :].split("<tr>")[2]  # header row, then the first mistake
        assert metrics.labels[stored.gold[confident]] in first and metrics.labels[stored.predicted[confident]] in first


def _chromium() -> str | None:
    return next((path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None)


def test_report_renders_in_headless_chromium(filled, report_page, tmp_path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium); the HTML report is not rendered")
    _, rows = filled
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--dump-dom",
        report_page.resolve().as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert '<table class="leaderboard">' in dom and "ko-emotion-bench report" in dom
    for name in ("trained", "tfidf", "majority"):
        assert rows[name].run_id in dom
    assert dom.count("data:image/png;base64,") >= 5
    assert f'id="errors-{rows["trained"].run_id}"' in dom and '<table class="mistakes">' in dom
