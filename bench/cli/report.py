"""``bench report``: leaderboard, per-class scores, confusion matrices, curves and Pareto plot as one HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bench.cli.app import app, console
from bench.cli.leaderboard import BootstrapSeed, IncludeFlagged, Resamples
from bench.cli.options import DEFAULT_RESULTS, Results, Storage, require_leaderboard
from bench.errors import UsageError
from bench.files import write_atomic
from bench.leaderboard import stats
from bench.reporting import PlotStyle, build_report
from bench.reporting.fonts import covers_hangul

Out = Annotated[Path | None, typer.Option("--out", "-o", help="HTML file to write (default: RESULTS/report.html).")]
Font = Annotated[
    Path | None,
    typer.Option("--font", help="Font file with Hangul glyphs for the plots (default: found among system fonts)."),
]


@app.command("report")
def report_command(
    results: Results = DEFAULT_RESULTS,
    storage: Storage = None,
    out: Out = None,
    font: Font = None,
    resamples: Resamples = stats.DEFAULT_RESAMPLES,
    bootstrap_seed: BootstrapSeed = 0,
    include_flagged: IncludeFlagged = False,
) -> None:
    """Write one self-contained HTML report (inline plots, no network needed) of every recorded run."""
    if font is not None and not (font.is_file() and covers_hangul(font)):
        raise UsageError(f"--font {font} is not a readable font file with Hangul glyphs")
    board = require_leaderboard(storage, results)
    page = build_report(
        board,
        style=PlotStyle(font) if font else None,
        resamples=resamples,
        seed=bootstrap_seed,
        include_flagged=include_flagged,
    )
    target = out or results / "report.html"
    write_atomic(target, page)
    console.print(
        f"Wrote the report to {target} ({len(page.encode('utf-8')) / 1024:,.0f} KiB)", markup=False, highlight=False
    )
