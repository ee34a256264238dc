"""``bench data inspect``: rows, labels, drops, duplicates and text lengths of a data source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from bench.cli import options as opt
from bench.cli.app import add_row, app, console
from bench.config import DATA_SETTINGS, SETTINGS
from bench.data import SplitDataset, inspect_dataset, load_dataset
from bench.data.split import SPLITS
from bench.errors import UsageError
from bench.escaping import markup, terminal

if TYPE_CHECKING:
    from encoders import TextTokenizer

D = opt.DEFAULTS

data_app = typer.Typer(help="Look at data sources before training on them.", no_args_is_help=True)
app.add_typer(data_app, name="data")

Source = Annotated[str, typer.Argument(help=DATA_SETTINGS["source"].help)]
# The same --encoder and --max-len as a run's (bench.config declares them): the encoder whose tokenizer
# counts the tokens (only characters are counted without one), and the token budget of a text.
InspectEncoder = Annotated[
    str | None,
    typer.Option(
        *SETTINGS["encoder"].flags,
        help=f"{SETTINGS['encoder'].help} Counts tokens with its tokenizer.",  # type: ignore[union-attr]
        rich_help_panel=opt.MODEL,
    ),
]
InspectMaxLen = opt.setting_option("max_len")
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]


@data_app.command("inspect")
@opt.with_options(opt.data_options_of([name for name in opt.DATA_FIELDS if name != "source"]))
def inspect(
    source: Source = D.data.source,
    encoder: InspectEncoder = None,
    encoder_path: opt.EncoderPath = None,
    max_len: InspectMaxLen = D.max_len,
    as_json: AsJson = False,
    plugin: opt.Plugins = None,
    **options: Any,
) -> None:
    """Load SOURCE as a run would and show rows and labels per split, dropped rows and text lengths."""
    problem = SETTINGS["max_len"].problem(max_len)  # type: ignore[union-attr]
    if problem is not None:
        raise UsageError(problem)
    data_options = opt.data_options({**options, "data": source})
    dataset = load_dataset(data_options)
    tokenizer = _tokenizer(encoder, encoder_path, dataset) if encoder or encoder_path else None
    summary = inspect_dataset(dataset, tokenizer, max_len)
    if as_json:
        console.out(json.dumps(summary, ensure_ascii=False), highlight=False)
        return
    _render(summary, encoder)


def _tokenizer(encoder: str | None, encoder_path: Path | None, dataset: SplitDataset) -> TextTokenizer:
    from encoders import EncoderRequest, create_tokenizer  # the encoder registry imports torch: only when asked

    if encoder is None:
        raise UsageError("--encoder-path needs --encoder to say which tokenizer family the folder holds")
    return create_tokenizer(
        EncoderRequest(
            name=encoder,
            path=encoder_path,
            train_texts=[example.text for example in dataset.train],
            cache_dir=Path(D.results_dir) / "cache",  # where `bench run` keeps derived tokenizers by default
        )
    )


def _render(summary: dict[str, Any], encoder: str | None) -> None:
    console.print(
        Text.assemble(
            terminal(summary["name"], style="bold"),
            f"  fingerprint {summary['fingerprint'][:16]}  encoding {summary['encoding'] or 'n/a'}"
            f"  {len(summary['classes'])} classes",
        )
    )
    console.print(terminal(f"Split: {summary['split_rule']}"))
    if "labels_per_example" in summary:
        per_example = summary["labels_per_example"]
        console.print(
            f"Multi-label: {per_example['mean']:.2f} labels per example on average, at most "
            f"{per_example['max']}; the table counts examples with each label"
        )
    counts = Table(title="Rows per split and label")
    counts.add_column("label")
    for name in (*SPLITS, "total"):
        counts.add_column(name, justify="right")
    for label in summary["classes"]:
        row = [summary["labels"][name].get(label, 0) for name in SPLITS]
        add_row(counts, label, *(str(value) for value in (*row, sum(row))))
    totals = [summary["rows"][name] for name in SPLITS]
    counts.add_row("[bold]all[/bold]", *(f"[bold]{value}[/bold]" for value in (*totals, sum(totals))))
    console.print(counts)
    if summary["dialogues"]:
        dialogues = summary["dialogues"]
        console.print(
            "Dialogues (utterances): "
            + ", ".join(f"{name} {dialogues[name]} ({summary['rows'][name]})" for name in SPLITS)
        )

    dropped = Table(title="Rows dropped")
    dropped.add_column("reason")
    dropped.add_column("rows", justify="right")
    for reason, count in summary["dropped"].items():
        add_row(dropped, reason, str(count))
    if summary["dropped"]:
        console.print(dropped)
    else:
        console.print("No rows dropped.")
    duplicates = summary["duplicates"]
    console.print(
        f"Duplicate texts: {duplicates['within_train']} repeated within train, "
        f"{duplicates['train_test']} test texts also in train."
    )

    lengths = Table(title="Text length")
    for column in ("unit", "mean", "p95", "max", f"over {summary['max_len']}"):
        lengths.add_column(column, justify="right" if column != "unit" else "left")
    chars = summary["length"]["chars"]
    lengths.add_row(
        "characters", f"{chars['mean']:.1f}", f"{chars['p95']:.0f}", str(chars["max"]), f"{chars['over_max_len']:.1%}"
    )
    tokens = summary["length"].get("tokens")
    if tokens is not None:
        add_row(
            lengths,
            f"tokens ({encoder})",
            f"{tokens['mean']:.1f}",
            f"{tokens['p95']:.0f}",
            str(tokens["max"]),
            f"{tokens['over_max_len']:.1%}",
        )
    console.print(lengths)
    for warning in summary["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {markup(warning)}", highlight=False)
