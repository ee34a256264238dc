"""The report's plots, drawn with matplotlib's Agg canvas and returned as inline ``data:image/png`` URIs."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bench import escaping
from bench.leaderboard.pareto import ParetoPoint
from bench.reporting.fonts import font_family, plot_labels, plot_text

DPI = 110
_FRONT_COLOR = "#d62728"
_OTHER_COLOR = "#7f7f7f"
_MAX_EPOCH_TICKS = 15


@dataclass(frozen=True)
class PlotStyle:
    """How text is drawn: with a Hangul font (``font`` is its file) or romanised (``font`` is ``None``)."""

    font: Path | None

    @property
    def hangul(self) -> bool:
        """Whether Korean text can be drawn as it is."""
        return self.font is not None

    def labels(self, labels: Sequence[str]) -> list[str]:
        """Class labels as drawn (see :func:`plot_labels`)."""
        return [escaping.plot(label) for label in plot_labels(labels, self.hangul)]

    def text(self, text: str) -> str:
        """Free text as drawn (see :func:`plot_text`)."""
        return escaping.plot(plot_text(text, self.hangul))

    @contextmanager
    def fonts(self) -> Iterator[None]:
        """Matplotlib settings for the duration of one figure: DejaVu Sans, falling back to the Hangul font.

        DejaVu Sans stays first so that mathtext (log-axis ticks, the minus sign) keeps its glyphs;
        matplotlib takes each character missing from it from the next family.
        """
        settings: dict[str, Any] = {"font.size": 9, "axes.titlesize": 10}
        if self.font is not None:
            settings["font.family"] = ["DejaVu Sans", font_family(self.font)]
        with matplotlib.rc_context(settings):
            yield


def png_data_uri(figure: Figure) -> str:
    """``figure`` as a base64 PNG ``data:`` URI."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def heatmap(rows: Sequence[str], labels: Sequence[str], values: np.ndarray, style: PlotStyle) -> str:
    """Per-class F1 (``values``: rows × labels, NaN where missing) as an annotated heat map."""
    with style.fonts():
        figure = Figure(figsize=(2.8 + 0.75 * len(labels), 1.2 + 0.34 * len(rows)))
        axes = figure.add_subplot()
        image = axes.imshow(np.ma.masked_invalid(values), cmap="YlGnBu", vmin=0.0, vmax=1.0, aspect="auto")
        axes.set_xticks(range(len(labels)), style.labels(labels), rotation=30, ha="right")
        axes.set_yticks(range(len(rows)), [style.text(row) for row in rows])
        _annotate(axes, values, lambda value: f"{value:.2f}", dark=values >= 0.6)
        axes.set_title("test F1 per class")
        figure.colorbar(image, ax=axes, fraction=0.04, pad=0.02)
        return png_data_uri(figure)


def confusion(labels: Sequence[str], counts: Sequence[Sequence[int]], title: str, style: PlotStyle) -> str:
    """A confusion matrix (rows gold, columns predicted) as a PNG data URI; see :func:`confusion_figure`."""
    with style.fonts():
        return png_data_uri(confusion_figure(labels, counts, title, style))


def confusion_figure(labels: Sequence[str], counts: Sequence[Sequence[int]], title: str, style: PlotStyle) -> Figure:
    """A confusion matrix (rows gold, columns predicted): counts written, colour = share of the gold row."""
    matrix = np.asarray(counts, dtype=float)
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    drawn = style.labels(labels)
    with style.fonts():
        size = 1.6 + 0.42 * len(labels)
        figure = Figure(figsize=(size + 0.4, size))
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
        axes.set_xticks(range(len(labels)), drawn, rotation=45, ha="right")
        axes.set_yticks(range(len(labels)), drawn)
        axes.set_xlabel("predicted")
        axes.set_ylabel("gold")
        _annotate(axes, matrix, lambda value: f"{value:.0f}", dark=shares >= 0.55)
        axes.set_title(style.text(title))
        return figure


def learning_curves(curves: Sequence[tuple[str, Sequence[dict[str, float]]]], style: PlotStyle) -> str:
    """Training loss and validation macro-F1 per epoch, one line per ``(name, history)``."""
    with style.fonts():
        figure = Figure(figsize=(10, 3.6))
        loss_axes, f1_axes = figure.subplots(1, 2)
        for name, history in curves:
            epochs = [int(entry["epoch"]) + 1 for entry in history]
            label = style.text(name)
            loss_axes.plot(epochs, [entry.get("train_loss", np.nan) for entry in history], marker="o", label=label)
            f1_axes.plot(epochs, [entry.get("val_macro_f1", np.nan) for entry in history], marker="o", label=label)
        loss_axes.set(title="training loss", xlabel="epoch", ylabel="mean cross-entropy")
        f1_axes.set(title="validation macro-F1", xlabel="epoch", ylabel="macro-F1")
        epochs = sorted({int(entry["epoch"]) + 1 for _, history in curves for entry in history})
        for axes in (loss_axes, f1_axes):
            axes.grid(alpha=0.3)
            if len(epochs) <= _MAX_EPOCH_TICKS:
                axes.set_xticks(epochs)
            else:
                axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        f1_axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
        return png_data_uri(figure)


def pareto(points: Sequence[ParetoPoint], names: dict[str, str], latency_title: str, style: PlotStyle) -> str:
    """Test macro-F1 against latency; the Pareto front in red, joined as a staircase and named."""
    with style.fonts():
        figure = Figure(figsize=(7.5, 4.6))
        axes = figure.add_subplot()
        front = [point for point in points if point.optimal]
        others = [point for point in points if not point.optimal]
        axes.scatter(
            [p.latency_ms for p in others],
            [p.macro_f1 for p in others],
            color=_OTHER_COLOR,
            s=28,
            label="dominated",
            zorder=2,
        )
        axes.scatter(
            [p.latency_ms for p in front],
            [p.macro_f1 for p in front],
            color=_FRONT_COLOR,
            s=42,
            label="Pareto-optimal",
            zorder=3,
        )
        axes.step(
            [p.latency_ms for p in front],
            [p.macro_f1 for p in front],
            where="post",
            color=_FRONT_COLOR,
            alpha=0.5,
            zorder=1,
        )
        for point in front:
            axes.annotate(
                style.text(names.get(point.run_id, point.run_id)),
                (point.latency_ms, point.macro_f1),
                textcoords="offset points",
                xytext=(5, 4),
                fontsize=7,
            )
        latencies = [point.latency_ms for point in points]
        if latencies and max(latencies) > 20 * min(latencies):
            axes.set_xscale("log")
        axes.set(xlabel=latency_title, ylabel="test macro-F1", title="macro-F1 vs latency (up and left is better)")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8, loc="lower right")
        return png_data_uri(figure)


def _annotate(axes: Axes, values: np.ndarray, text: Any, dark: np.ndarray) -> None:
    """Write each finite cell's value, white on dark cells."""
    for (row, column), value in np.ndenumerate(values):
        if np.isfinite(value):
            color = "white" if dark[row, column] else "black"
            axes.text(column, row, text(value), ha="center", va="center", fontsize=7, color=color)
