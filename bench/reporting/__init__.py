"""``bench report``: the leaderboard as one self-contained HTML page (:func:`build_report`)."""

from bench.reporting.figures import PlotStyle
from bench.reporting.page import build_report

__all__ = ["PlotStyle", "build_report"]
