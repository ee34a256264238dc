"""``bench report``: one self-contained HTML page of the leaderboard.

Per dataset fingerprint: the leaderboard of seed groups with bootstrap confidence
intervals, macro-F1 against latency with the Pareto front, a per-class F1 heat map,
confusion matrices, an error analysis of the best runs (per-class scores, confusion
matrix, misclassified sentences) and learning curves. Plots are inline PNG, the style sheet is
inline and there is no script, so the page works offline and can be mailed as one file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from bench.baselines import is_baseline
from bench.errors import ResultsError
from bench.escaping import html_text
from bench.leaderboard import stats
from bench.leaderboard.export import MISSING, TIED_MARK, TIED_NOTE, format_params, format_value
from bench.leaderboard.flags import FLAG_MARKER, legend
from bench.leaderboard.mistakes import Mistake, misclassified
from bench.leaderboard.pareto import ParetoPoint, pareto_points
from bench.leaderboard.records import RunRecord
from bench.leaderboard.store import Leaderboard
from bench.reporting import figures
from bench.reporting.figures import PlotStyle
from bench.reporting.fonts import find_hangul_font

MAX_CONFUSIONS = 6
MAX_CURVES = 8
MAX_ERROR_RUNS = 3  # configurations whose best run gets an error analysis
MAX_MISTAKES = 10  # misclassified examples shown per run
_NAME_LIMIT = 48
_LATENCY = "latency_ms_batch1"


@dataclass
class Section:
    """The finished runs of one dataset fingerprint, their groups and Pareto points."""

    dataset: str
    fingerprint: str
    groups: list[stats.GroupStats]
    runs: dict[str, RunRecord]
    points: list[ParetoPoint]
    mistakes: dict[str, list[Mistake]] = field(default_factory=dict)

    def best_run(self, group: stats.GroupStats) -> RunRecord:
        """The group's run with the highest test macro-F1."""
        return max((self.runs[run_id] for run_id in group.run_ids), key=lambda run: run.macro_f1 or 0.0)


def build_report(
    board: Leaderboard,
    *,
    style: PlotStyle | None = None,
    resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = 0,
    include_flagged: bool = False,
) -> str:
    """The report of every run in ``board`` as one HTML document.

    ``style`` defaults to the system's Hangul font if there is one (else romanised
    plot labels); flagged groups are marked and never best unless ``include_flagged``.
    :class:`ResultsError` when no run has finished.
    """
    records = board.runs()
    finished = [record for record in records if record.status == "finished" and record.macro_f1 is not None]
    if not finished:
        raise ResultsError(f"the leaderboard {board.url} has no finished runs; there is nothing to report")
    predictions = board.predictions_many((record.run_id for record in finished), probabilities=False)
    groups = stats.aggregate(finished, predictions, resamples=resamples, seed=seed, include_flagged=include_flagged)
    style = style or PlotStyle(find_hangul_font())
    by_id = {record.run_id: record for record in finished}
    points = pareto_points(finished, _LATENCY)
    sections = [
        Section(
            dataset=section[0].dataset,
            fingerprint=fingerprint,
            groups=section,
            runs={run_id: by_id[run_id] for group in section for run_id in group.run_ids},
            points=[point for point in points if point.fingerprint == fingerprint],
        )
        for fingerprint, section in stats.sections(groups).items()
    ]
    for section in sections:
        best = [section.best_run(group) for group in section.groups[:MAX_ERROR_RUNS]]
        stored = board.predictions_many(run.run_id for run in best)
        section.mistakes = {
            run.run_id: misclassified(stored[run.run_id], run.metrics.labels)
            for run in best
            if run.run_id in stored and run.metrics is not None
        }
    unfinished = [record for record in records if record.run_id not in by_id]
    return _page(sections, unfinished, style, board.url, resamples)


# ------------------------------------------------------------------ page


_CSS = """
body { font-family: system-ui, "Noto Sans KR", "Nanum Gothic", sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #333; padding-bottom: 0.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0 1.2em; font-size: 0.9em; }
th, td { padding: 0.3em 0.7em; border-bottom: 1px solid #ddd; vertical-align: top; }
thead th { border-bottom: 2px solid #333; background: #f6f6f6; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.text, th.text { text-align: left; }
tr.best td { font-weight: bold; } tr.baseline td { color: #555; font-style: italic; }
tr.flagged td { color: #a33; }
td.ids { font-family: ui-monospace, monospace; font-size: 0.85em; color: #555; }
details.errors { margin: 0.6em 0; } details.errors summary { cursor: pointer; font-weight: 600; }
table.mistakes td.text:last-child { max-width: 40em; }
.note, .meta { color: #555; font-size: 0.9em; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
figure { margin: 0; } figcaption { font-size: 0.85em; color: #555; text-align: center; }
img { max-width: 100%; height: auto; }
nav a { margin-right: 1em; }
"""


def _page(sections: list[Section], unfinished: list[RunRecord], style: PlotStyle, source: str, resamples: int) -> str:
    finished_runs = sum(len(section.runs) for section in sections)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = [
        "<h1>ko-emotion-bench report</h1>",
        (
            f'<p class="meta">{finished_runs} finished run(s) in {len(sections)} dataset(s), '
            f"{len(unfinished)} unfinished · leaderboard <code>{html_text(source)}</code> · generated {generated}</p>"
        ),
    ]
    if len(sections) > 1:
        links = " ".join(f'<a href="#{_anchor(section)}">{html_text(section.dataset)}</a>' for section in sections)
        body.append(f"<nav>{links}</nav>")
    for section in sections:
        body.append(_section(section, style, resamples))
    if unfinished:
        body.append(_unfinished(unfinished))
    body.append(_font_note(sections, style))
    return (
        '<!DOCTYPE html>\n<html lang="ko">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>ko-emotion-bench report</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(part for part in body if part)
        + "\n</body>\n</html>\n"
    )


def _section(section: Section, style: PlotStyle, resamples: int) -> str:
    parts = [
        f'<section id="{_anchor(section)}">',
        f"<h2>{html_text(section.dataset)} <small>(fingerprint {html_text(section.fingerprint[:12])})</small></h2>",
        "<h3>Leaderboard</h3>",
        _leaderboard_table(section),
        (
            f'<p class="note">Groups are runs that differ only in their seed. 95% CI: bootstrap over seeds and test '
            f"examples ({resamples} resamples); p vs best: paired bootstrap against the best group (★). "
            f"{html_text(TIED_NOTE)} "
            "Italic rows are reference baselines.</p>"
        ),
        _flag_note(section),
        _pareto_block(section, style),
        _per_class_block(section, style),
        _confusion_block(section, style),
        _errors_block(section),
        _curves_block(section, style),
        "</section>",
    ]
    return "\n".join(part for part in parts if part)


def _leaderboard_table(section: Section) -> str:
    settings = _settings(section.groups)
    header = [
        "Rank",
        "",
        "Encoder",
        "Head",
        "Setting",
        "n",
        "Macro-F1",
        "95% CI",
        "Accuracy",
        "p vs best",
        "Params",
        "Latency b1 (ms)",
        "Train (s)",
        "Runs",
    ]
    numeric = {"Rank", "n", "Macro-F1", "95% CI", "Accuracy", "p vs best", "Params", "Latency b1 (ms)", "Train (s)"}
    rows = []
    for group in section.groups:
        ci = MISSING if group.ci_low is None or group.ci_high is None else f"[{group.ci_low:.4f}, {group.ci_high:.4f}]"
        f1 = format_value(group.macro_f1_mean, "score") + (
            f" ± {group.macro_f1_std:.4f}" if group.macro_f1_std is not None else ""
        )
        mark = ("★" if group.best else "") + (f"{FLAG_MARKER} {', '.join(group.flags)}" if group.flags else "")
        cells = [
            str(group.rank),
            mark,
            group.encoder,
            group.head,
            settings[group.key] or MISSING,
            str(group.n),
            f1 + (TIED_MARK if group.indistinguishable_from_best else ""),
            ci,
            format_value(group.accuracy_mean, "score"),
            format_value(group.p_vs_best, "p"),
            format_value(group.efficiency.get("total_params"), "params"),
            format_value(group.efficiency.get(_LATENCY), "ms"),
            format_value(group.efficiency.get("train_seconds"), "seconds"),
            ", ".join(group.run_ids),
        ]
        classes = " ".join(
            name
            for name, on in (
                ("best", group.best),
                ("baseline", is_baseline(group.encoder)),
                ("flagged", bool(group.flags)),
            )
            if on
        )
        rows.append((classes, cells))
    table = _table(header, rows, numeric, {"Runs": "ids"}, table_class="leaderboard")
    for run_id in section.mistakes:  # the run ids of the error analysis link to it
        table = table.replace(html_text(run_id), f'<a href="#errors-{html_text(run_id)}">{html_text(run_id)}</a>', 1)
    return table


def _flag_note(section: Section) -> str:
    text = legend(flag for group in section.groups for flag in group.flags)
    if not text:
        return ""
    return f'<p class="note flags">{html_text(text)}. Flagged groups are never marked best.</p>'


def _pareto_block(section: Section, style: PlotStyle) -> str:
    if not section.points:
        return '<h3>Efficiency</h3>\n<p class="note">No run recorded a latency.</p>'
    names = {point.run_id: f"{point.encoder}/{point.head}" for point in section.points}
    image = figures.pareto(section.points, names, "latency at batch 1 (ms per example)", style)
    header = [
        "Run",
        "Encoder",
        "Head",
        "Seed",
        "Macro-F1",
        "Latency b1 (ms)",
        "Latency b64 (ms/ex)",
        "Params",
        "Pareto",
    ]
    rows = []
    for point in section.points:
        efficiency = stats.efficiency(section.runs[point.run_id])
        verdict = "★ optimal" if point.optimal else f"dominated by {point.dominated_by}"
        cells = [
            point.run_id,
            point.encoder,
            point.head,
            str(point.seed),
            format_value(point.macro_f1, "score"),
            format_value(point.latency_ms, "ms"),
            format_value(efficiency.get("latency_ms_batch64"), "ms"),
            format_value(efficiency.get("total_params"), "params"),
            verdict,
        ]
        rows.append(("best" if point.optimal else "", cells))
    numeric = {"Seed", "Macro-F1", "Latency b1 (ms)", "Latency b64 (ms/ex)", "Params"}
    return "\n".join(
        [
            "<h3>Efficiency: macro-F1 vs latency</h3>",
            _figure(image, "Test macro-F1 against latency at batch 1; red points form the Pareto front"),
            _table(header, rows, numeric, {"Run": "ids"}, table_class="pareto"),
            (
                '<p class="note">A run is Pareto-optimal when no other run is at least as fast and at least as good, '
                "and strictly better in one. Latency is the median forward time per example "
                "(baselines: vectorising and predicting) on this machine.</p>"
            ),
        ]
    )


def _per_class_block(section: Section, style: PlotStyle) -> str:
    labels = _labels(section)
    if not labels:
        return ""
    names = _group_names(section)
    values = np.full((len(section.groups), len(labels)), np.nan)
    for row, group in enumerate(section.groups):
        for column, label in enumerate(labels):
            scores = [
                run.metrics.per_class[label].f1
                for run in (section.runs[i] for i in group.run_ids)
                if run.metrics is not None and label in run.metrics.per_class
            ]
            if scores:
                values[row, column] = float(np.mean(scores))
    image = figures.heatmap([names[group.key] for group in section.groups], labels, values, style)
    header = ["Configuration", *labels]
    rows = [
        ("", [names[group.key], *(MISSING if np.isnan(v) else f"{v:.3f}" for v in values[row])])
        for row, group in enumerate(section.groups)
    ]
    return "\n".join(
        [
            "<h3>Per-class F1</h3>",
            _figure(image, "Test F1 per class for each configuration (mean over seeds)"),
            "<details><summary>Per-class F1 as a table</summary>",
            _table(header, rows, set(labels), {}, table_class="per-class"),
            "</details>",
        ]
    )


def _confusion_block(section: Section, style: PlotStyle) -> str:
    names = _group_names(section)
    images = []
    for group in section.groups[:MAX_CONFUSIONS]:
        run = section.best_run(group)
        if run.metrics is None or not run.metrics.confusion:
            continue
        title = f"{names[group.key]} ({run.run_id})"
        image = figures.confusion(run.metrics.labels, run.metrics.confusion, title, style)
        images.append(_figure(image, f"run {run.run_id}: rows gold, columns predicted"))
    if not images:
        return ""
    shown = min(len(section.groups), MAX_CONFUSIONS)
    return "\n".join(
        [
            "<h3>Confusion matrices</h3>",
            f'<p class="note">Best seed of the top {shown} configuration(s); colour is the share of the gold row.</p>',
            f'<div class="figures">{"".join(images)}</div>',
        ]
    )


def _errors_block(section: Section) -> str:
    """Per best run of the top configurations: per-class scores, the confusion matrix as numbers and the
    most confident mistakes (with their sentences where the run stored them)."""
    names = _group_names(section)
    parts = []
    for group in section.groups[:MAX_ERROR_RUNS]:
        run = section.best_run(group)
        if run.run_id not in section.mistakes or run.metrics is None:
            continue
        metrics, mistakes = run.metrics, section.mistakes[run.run_id]
        per_class = [
            ("", [label, f"{scores.precision:.4f}", f"{scores.recall:.4f}", f"{scores.f1:.4f}", str(scores.support)])
            for label, scores in (
                (label, metrics.per_class[label]) for label in metrics.labels if label in metrics.per_class
            )
        ]
        block = [
            (
                f'<details class="errors" id="errors-{html_text(run.run_id)}"><summary>{html_text(names[group.key])} '
                f"— run <code>{html_text(run.run_id)}</code>: {len(mistakes)} misclassified test example(s)</summary>"
            ),
            _table(
                ["Class", "Precision", "Recall", "F1", "Support"],
                per_class,
                {"Precision", "Recall", "F1", "Support"},
                {},
                table_class="class-scores",
            ),
        ]
        if metrics.confusion and len(metrics.confusion) == len(metrics.labels):
            rows = [("", [label, *map(str, row)]) for label, row in zip(metrics.labels, metrics.confusion, strict=True)]
            block.append(
                _table(["gold \\ predicted", *metrics.labels], rows, set(metrics.labels), {}, table_class="confusion")
            )
        if mistakes:
            rows = [
                (
                    "",
                    [
                        mistake.gold,
                        mistake.predicted,
                        format_value(mistake.confidence, "score"),
                        mistake.text if mistake.text is not None else mistake.example_id,
                    ],
                )
                for mistake in mistakes[:MAX_MISTAKES]
            ]
            texts = all(mistake.text is not None for mistake in mistakes)
            block.append(
                _table(
                    ["Gold", "Predicted", "Confidence", "Sentence" if texts else "Example id"],
                    rows,
                    {"Confidence"},
                    {},
                    table_class="mistakes",
                )
            )
            more = f"bench errors {run.run_id} lists all {len(mistakes)}" if len(mistakes) > MAX_MISTAKES else ""
            note = "Most confident mistakes first." + (f" <code>{html_text(more)}</code>." if more else "")
            if not texts:
                note += " This run was recorded before runs stored their test sentences: example ids instead."
            block.append(f'<p class="note">{note}</p>')
        block.append("</details>")
        parts.append("\n".join(block))
    if not parts:
        return ""
    return "\n".join(
        [
            "<h3>Error analysis</h3>",
            (
                f'<p class="note">Best seed of the top {len(parts)} configuration(s): scores per class, '
                "confusion matrix (rows gold, columns predicted) and misclassified test examples. "
                "Also on the command line: "
                "<code>bench show RUN</code>, <code>bench errors RUN</code>.</p>"
            ),
            *parts,
        ]
    )


def _curves_block(section: Section, style: PlotStyle) -> str:
    names = _group_names(section)
    curves = []
    for group in section.groups:
        run = section.best_run(group)
        history = [entry for entry in (run.metrics.history if run.metrics else []) if "epoch" in entry]
        if history:
            curves.append((names[group.key], history))
    if not curves:
        return '<h3>Learning curves</h3>\n<p class="note">No run recorded per-epoch history.</p>'
    image = figures.learning_curves(curves[:MAX_CURVES], style)
    return "\n".join(
        [
            "<h3>Learning curves</h3>",
            _figure(
                image,
                f"Best seed of the top {min(len(curves), MAX_CURVES)} trained configuration(s) "
                "(baselines have no epochs)",
            ),
        ]
    )


def _unfinished(records: Sequence[RunRecord]) -> str:
    header = ["Run", "Dataset", "Encoder", "Head", "Seed", "Status", "Error"]
    rows = [
        (
            "",
            [
                record.run_id,
                record.dataset,
                record.encoder,
                record.head,
                str(record.seed),
                record.status,
                (record.error or "").splitlines()[0][:160] if record.error else "",
            ],
        )
        for record in records
    ]
    return "\n".join(["<h2>Unfinished runs</h2>", _table(header, rows, {"Seed"}, {"Run": "ids"})])


def _font_note(sections: Sequence[Section], style: PlotStyle) -> str:
    if style.hangul:
        return f'<p class="note">Plot text drawn with {html_text(style.font.name if style.font else "")}.</p>'
    labels = list(dict.fromkeys(label for section in sections for label in _labels(section)))
    drawn = style.labels(labels)
    pairs = [
        f"{html_text(shown)} = {html_text(label)}" for shown, label in zip(drawn, labels, strict=True) if shown != label
    ]
    if not pairs:
        return ""
    return (
        '<p class="note">No font with Hangul glyphs was found on the machine that made this report, so the plots '
        "spell Korean in Revised Romanization (letter by letter): "
        + ", ".join(pairs)
        + ". Install fonts-nanum or fonts-noto-cjk (or pass <code>--font FILE</code>) for Hangul plots.</p>"
    )


# ------------------------------------------------------------------ helpers


def _labels(section: Section) -> list[str]:
    for group in section.groups:
        run = section.best_run(group)
        if run.metrics is not None and run.metrics.labels:
            return list(run.metrics.labels)
    return []


def _group_names(section: Section) -> dict[str, str]:
    """Short names of the groups for plots: rank, encoder / head and what sets trained groups apart."""
    settings = _settings(section.groups)
    names = {}
    for group in section.groups:
        text = "" if is_baseline(group.encoder) else settings[group.key]
        name = f"{group.rank}. {group.encoder} / {group.head}" + (f" [{text}]" if text else "")
        names[group.key] = name if len(name) <= _NAME_LIMIT else name[: _NAME_LIMIT - 3] + "..."
    return names


def _settings(groups: Sequence[stats.GroupStats]) -> dict[str, str]:
    """What sets each group apart: the hyperparameters that vary among trained groups; a baseline's own settings."""
    return {key: format_params(params) for key, params in stats.distinguishing_settings(groups).items()}


def _table(
    header: Sequence[str],
    rows: Iterable[tuple[str, Sequence[str]]],
    numeric: set[str],
    cell_classes: dict[str, str],
    table_class: str = "",
) -> str:
    """An HTML table; every cell is escaped."""

    def kind(column: str) -> str:
        return " ".join(filter(None, ("num" if column in numeric else "text", cell_classes.get(column))))

    head = "".join(f'<th class="{kind(column)}">{html_text(column)}</th>' for column in header)
    body = []
    for row_class, cells in rows:
        tds = "".join(
            f'<td class="{kind(column)}">{html_text(cell)}</td>' for column, cell in zip(header, cells, strict=True)
        )
        body.append(f'<tr class="{row_class}">{tds}</tr>' if row_class else f"<tr>{tds}</tr>")
    return (
        f'<table class="{table_class}">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(body)
        + "\n</tbody>\n</table>"
    )


def _figure(data_uri: str, caption: str) -> str:
    return (
        f'<figure><img src="{data_uri}" alt="{html_text(caption)}">'
        f"<figcaption>{html_text(caption)}</figcaption></figure>"
    )


def _anchor(section: Section) -> str:
    return html_text(f"dataset-{section.fingerprint[:12]}")
