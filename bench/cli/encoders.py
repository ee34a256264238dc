"""``bench encoders`` (the registered encoders) and ``bench tokenize`` (pieces and ids of texts)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Annotated

import typer

from bench.cli.app import app, console
from bench.cli.leaderboard import Columns, Wide
from bench.cli.options import EncoderPath, Plugins, TrustRemoteCode
from bench.cli.tables import Column, FitTable, parse_columns, print_table
from bench.escaping import terminal
from encoders import EncoderEntry, EncoderRequest, create_tokenizer, list_encoders


def format_parameter_count(count: int | None) -> str:
    """``92186880`` → ``"92.2M"``; ``None`` (not countable offline) → ``"—"``."""
    if count is None:
        return "—"
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= scale:
            return f"{count / scale:.1f}{suffix}"
    return str(count)


@app.command("encoders")
def encoders_command(plugin: Plugins = None, wide: Wide = False, columns: Columns = None) -> None:
    """List the registered encoders with their hub ids, parameter counts and default learning rates."""
    print_table(console, encoders_table(list_encoders()), wide=wide, columns=parse_columns(columns))


def encoders_table(entries: Iterable[EncoderEntry]) -> FitTable:
    """The encoders as a table: names, hub ids and sizes never cut; the description shortened to fit."""
    table = FitTable(
        "encoders",
        [
            Column("name", style="bold"),
            Column("hub id", priority=1),
            Column("parameters", "right", priority=2),
            Column("defaults", priority=4),
            Column("description", priority=3, free_text=True, min_width=20),
        ],
    )
    for entry in entries:
        count = entry.parameter_count() if entry.parameter_count is not None else None
        table.add_row(
            entry.name,
            entry.hub_id or "—",
            format_parameter_count(count),
            describe_learning_rates(entry),
            entry.description,
        )
    return table


def describe_learning_rates(entry: EncoderEntry) -> str:
    """``3e-05 (random init 0.0005)`` for a pretrained encoder, with its head rate and batch size where it sets
    them (``1e-4, head 1e-3, batch 16 (random init 0.0005)``); the from-scratch rate for one that has no weights."""
    if not entry.pretrained:
        return f"{entry.default_lr():g} (from scratch)"
    defaults = entry.run_defaults()
    pretrained = ", ".join(
        [f"{defaults['lr']:g}"]
        + ([f"head {defaults['head_lr']:g}"] if "head_lr" in defaults else [])
        + ([f"batch {defaults['batch_size']}"] if entry.pretrained_batch_size is not None else [])
    )
    return f"{pretrained} (random init {entry.default_lr(random_init=True):g})"


@app.command("tokenize")
def tokenize_command(
    texts: Annotated[list[str], typer.Argument(help="Texts to tokenize.", show_default=False)],
    encoder: Annotated[str, typer.Option("--encoder", "-e", help="Encoder whose tokenizer to use.")],
    encoder_path: EncoderPath = None,
    trust_remote_code: TrustRemoteCode = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per text: text, pieces, ids.")] = False,
    plugin: Plugins = None,
) -> None:
    """Show the pieces and ids (with special tokens) an encoder's tokenizer gives each text."""
    tokenizer = create_tokenizer(EncoderRequest(encoder, path=encoder_path, trust_remote_code=trust_remote_code))
    for text in texts:
        encoding = tokenizer.encode(text)
        if as_json:
            record = {"text": text, "pieces": encoding.pieces, "ids": encoding.ids}
            console.out(json.dumps(record, ensure_ascii=False), highlight=False)
            continue
        console.print(terminal(text, style="bold"))
        console.print(terminal("  pieces: " + " ".join(encoding.pieces)), soft_wrap=True)
        console.print(terminal("  ids:    " + " ".join(map(str, encoding.ids))), soft_wrap=True)
