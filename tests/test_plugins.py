"""A new head and a new encoder, written once, work everywhere: as plugins and as files in the package.

Each scenario runs in its own Python process (plugins register globally): a driver
calls the ``bench`` CLI in-process for every command and prints each command's
output after a marker line with its exit code.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench import plugins
from bench.errors import PluginError
from heads import list_heads
from tests.conftest import ROOT, bench

# A head as a plugin (or a file in heads/) writes it: declarations once, keyword-only __init__.
HEAD_SOURCE = '''
"""Masked mean and max of the token states, concatenated, scaled, then one linear layer."""

import torch
from torch import nn

from bench.search_space import Param
from heads import Head, Hyperparameter, dropout, register_head
from heads.pooling import masked_max, masked_mean


@register_head("meanmax")
class MeanMaxHead(Head):
    description = "Masked mean and max of the token states, concatenated; dropout; Linear."
    hyperparameters = (
        dropout(),
        Hyperparameter("scale", 1.0, "Factor on the pooled vector.", low=0.0, search=Param.real(0.5, 2.0)),
    )

    def __init__(self, *, hidden_size: int, num_labels: int, dropout: float, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * hidden_size, num_labels)

    def forward(self, features):
        states, mask = features.token_states, features.attention_mask
        pooled = torch.cat([masked_mean(states, mask), masked_max(states, mask)], dim=1)
        return self.classifier(self.dropout(self.scale * pooled))
'''

# An encoder that is no transformers model: hashed characters, an embedding and a GRU, with its own tokenizer.
ENCODER_SOURCE = '''
"""Hashed characters, an embedding and a GRU; its registry entry says how to rebuild it."""

from torch import nn

from encoders import (
    BuiltEncoder, EncoderOutput, Encoding, TextEncoder, TextTokenizer,
    register_encoder, register_tokenizer_loader, write_tokenizer_marker,
)

BUCKETS = 500  # ids 0-3 are [PAD] [UNK] [CLS] [SEP]


class CharTokenizer(TextTokenizer):
    pad_id, vocab_size = 0, BUCKETS + 4

    def tokenize(self, text):
        return [character for character in text if not character.isspace()]

    def encode(self, text, pair=None, max_len=None):
        pieces = ["[CLS]", *self.tokenize(text), "[SEP]"][: max_len or None]
        ids = [2 if p == "[CLS]" else 3 if p == "[SEP]" else 4 + ord(p) % BUCKETS for p in pieces]
        return Encoding(ids, [0] * len(ids), pieces)

    def encode_batch(self, texts, max_len):
        return [self.encode(text, max_len=max_len).ids for text in texts]

    def save(self, directory):
        write_tokenizer_marker(directory, "char-hash", {})


register_tokenizer_loader("char-hash", lambda directory, marker: CharTokenizer())


class CharGRU(TextEncoder):
    def __init__(self, hidden_size: int = 24) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.embed = nn.Embedding(CharTokenizer.vocab_size, hidden_size, padding_idx=0)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)

    def forward(self, input_ids, attention_mask):
        states, _ = self.gru(self.embed(input_ids))
        return EncoderOutput(states, attention_mask.bool(), states[:, 0])

    def architecture(self):
        return {"hidden_size": self.hidden_size}


@register_encoder(
    "char-gru",
    description="Hashed characters, an embedding and a GRU, trained from scratch",
    tokenizer=lambda request: CharTokenizer(),
    rebuild=lambda architecture: CharGRU(**architecture),
    pretrained=False,
)
def create_char_gru(request):
    return BuiltEncoder(CharGRU(), CharTokenizer(), "char-gru (random init)")
'''

# Runs ``bench`` commands in this process; "{RUN_ID}" is the run id the last `bench run` printed.
DRIVER = """
import contextlib, io, json, re, sys
from bench.cli import main

commands = json.loads(open(sys.argv[1], encoding="utf-8").read())
print("@@@ bench package", __import__("bench").__file__, flush=True)
run_id = ""
for argv in commands:
    argv = [arg.replace("{RUN_ID}", run_id) for arg in argv]
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        try:
            main(argv)
            code = 0
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    output = buffer.getvalue()
    found = re.search(r"run ([0-9a-f]{12})", output)
    if argv[0] == "run" and found:
        run_id = found.group(1)
    print(f"@@@ {argv[0]} {code}", flush=True)
    print(output, flush=True)
"""
TEXT = "오늘 정말 행복해"
TRAIN = ["--data", "sample", "--train-limit", "60", "--max-len", "32", "--device", "cpu"]


def commands(results: Path, model: Path, plugin: list[str]) -> list[list[str]]:
    """Every command that lists, builds or loads heads and encoders, with the new head on the new encoder."""
    common = [*plugin, *TRAIN, "--results", str(results)]
    return [
        ["heads", *plugin],
        ["encoders", *plugin],
        ["run", "-e", "char-gru", "-h", "meanmax", "--epochs", "1", "--batch-size", "16", "--no-progress", *common],
        [
            "grid",
            "--encoders",
            "char-gru",
            "--heads",
            "meanmax,linear",
            "--head-param",
            "scale=0.5",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--no-progress",
            *common,
        ],
        ["tune", "-e", "char-gru", "-h", "meanmax", "--dry-run", *common],
        ["export-model", str(model), "--run", "{RUN_ID}", "--results", str(results), *plugin],
        ["predict", "--model", str(model), "--json", *plugin, TEXT],
    ]


def start_driver(tmp_path: Path, argv_lists: list[list[str]], env: dict[str, str]) -> subprocess.Popen[str]:
    """Start the driver on ``argv_lists`` in a fresh Python process."""
    (tmp_path / "driver.py").write_text(DRIVER, encoding="utf-8")
    (tmp_path / "commands.json").write_text(json.dumps(argv_lists), encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "commands.json")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def outputs(process: subprocess.Popen[str]) -> dict[str, tuple[int, str]]:
    """Exit code and output of each command the driver ran, by command name."""
    stdout, _ = process.communicate(timeout=900)
    assert process.returncode == 0, stdout[-3000:]
    parts = re.split(r"^@@@ (\S+) (.*)$", stdout, flags=re.MULTILINE)
    found: dict[str, tuple[int, str]] = {}
    for name, code, text in zip(parts[1::3], parts[2::3], parts[3::3], strict=True):
        found[name] = (int(code) if code.isdigit() else 0, code if name == "bench" else text)
    return found


def check_every_command(found: dict[str, tuple[int, str]], model: Path) -> None:
    """The new head and encoder are listed, trained, gridded, tuned, exported and predicted with."""
    for name in ("heads", "encoders", "run", "grid", "tune", "export-model", "predict"):
        assert found[name][0] == 0, f"bench {name}: {found[name][1][-2000:]}"
    assert "meanmax" in found["heads"][1] and "scale=1.0 (at least 0)" in found["heads"][1]
    assert "char-gru" in found["encoders"][1] and "0.0005 (from scratch)" in found["encoders"][1]
    assert "finished" in found["run"][1]
    assert "2 ran" in found["grid"][1]
    tune = found["tune"][1]
    # head parameters are spelled head.NAME
    assert "head.scale" in tune and "[0.5, 2]" in tune and "[0.0001, 0.002] log" in tune
    card = json.loads((model / "model.json").read_text(encoding="utf-8"))
    assert card["encoder"] == "char-gru" and card["model_type"] == "CharGRU"
    assert card["encoder_config"] == {"hidden_size": 24}
    assert card["head_params"] == {"dropout": 0.1, "scale": 1.0}
    prediction = json.loads(found["predict"][1].strip().splitlines()[-1])
    assert prediction["text"] == TEXT and prediction["label"] in card["labels"]


def child_env(python_path: list[Path], **extra: str) -> dict[str, str]:
    """The environment of a fresh process that imports the package from ``python_path``, with no plugins set."""
    env = {key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", plugins.ENVIRONMENT_VARIABLE}}
    paths = os.pathsep.join(map(str, python_path))
    return {**env, "PYTHONPATH": paths, "COLUMNS": "220", "OMP_NUM_THREADS": "1", **extra}


def test_new_head_and_encoder_work_as_plugins_and_as_package_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # As plugins: the head through --plugin on each command, the encoder through BENCH_PLUGINS.
    plugin_dir = tmp_path / "my-plugins"
    plugin_dir.mkdir()
    head_file, encoder_file = plugin_dir / "meanmax_head.py", plugin_dir / "char_gru.py"
    head_file.write_text(HEAD_SOURCE, encoding="utf-8")
    encoder_file.write_text(ENCODER_SOURCE, encoding="utf-8")
    as_plugins = tmp_path / "as-plugins"
    as_plugins.mkdir()
    plugin_model = as_plugins / "model"
    plugin_commands = commands(as_plugins / "results", plugin_model, ["--plugin", str(head_file)])
    driver_a = start_driver(as_plugins, plugin_commands, child_env([ROOT], BENCH_PLUGINS=str(encoder_file)))

    # As files in the package: a copy of the package with the same two files added, and a head from an entry point.
    package = tmp_path / "package"
    for name in ("bench", "encoders", "heads"):
        shutil.copytree(ROOT / name, package / name, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "heads" / "meanmax.py").write_text(HEAD_SOURCE, encoding="utf-8")
    (package / "encoders" / "char_gru.py").write_text(ENCODER_SOURCE, encoding="utf-8")
    site = tmp_path / "site"
    (site / "ep_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "ep_plugin-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-plugin\nVersion: 0.1\n")
    (site / "ep_plugin-0.1.dist-info" / "entry_points.txt").write_text("[ko_emotion_bench.heads]\nep = ep_heads\n")
    (site / "ep_heads.py").write_text(
        textwrap.dedent("""
        from heads import register_head
        from heads.linear import LinearHead

        register_head("ep-linear")(type("EntryPointLinear", (LinearHead,), {"description": "From an entry point."}))
    """)
    )
    in_package = tmp_path / "in-package"
    in_package.mkdir()
    package_model = in_package / "model"
    driver_b = start_driver(in_package, commands(in_package / "results", package_model, []), child_env([package, site]))

    found_a, found_b = outputs(driver_a), outputs(driver_b)
    check_every_command(found_a, plugin_model)
    check_every_command(found_b, package_model)
    assert str(package) in found_b["bench"][1]
    assert "ep-linear" in found_b["heads"][1]
    card_a = json.loads((plugin_model / "model.json").read_text(encoding="utf-8"))
    assert card_a["plugins"] == {"head": str(head_file.resolve()), "encoder": str(encoder_file.resolve())}
    assert json.loads((package_model / "model.json").read_text(encoding="utf-8"))["plugins"] == {}

    # Without the plugin, predict names the plugin the model needs.
    code, _, err = bench(capsys, "predict", "--model", str(plugin_model), TEXT)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "meanmax" in err and f"--plugin {head_file.resolve()}" in err


def test_child_processes_load_the_same_plugins(tmp_path: Path) -> None:
    head_file = tmp_path / "meanmax_head.py"
    head_file.write_text(HEAD_SOURCE, encoding="utf-8")
    script = (
        "import os, subprocess, sys\n"
        "from bench import plugins\n"
        f"plugins.load([{str(head_file)!r}])\n"
        "child = 'import heads; print(\"meanmax\" in heads.list_heads())'\n"
        "print(subprocess.run([sys.executable, '-c', child], capture_output=True, text=True).stdout.strip())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=child_env([ROOT]), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import no_such_module_here\n", "failed to load: ModuleNotFoundError: No module named 'no_such_module_here'"),
        ("raise RuntimeError('broken on purpose')\n", "failed to load: RuntimeError: broken on purpose"),
        (
            "from heads import register_head\nfrom heads.linear import LinearHead\n\n"
            "register_head('linear')(type('Again', (LinearHead,), {}))\n",
            "head 'linear' is already registered (by heads.linear)",
        ),
        (
            "from encoders import register_encoder\n"
            "register_encoder('scratch', description='', tokenizer=print, rebuild=print)(print)\n",
            "encoder 'scratch' is already registered (by encoders.scratch)",
        ),
        (
            "from encoders import register_encoder\n"
            "register_encoder('tfidf', description='', tokenizer=print, rebuild=print)(print)\n",
            "encoder 'tfidf' is the name of the tfidf baseline (a reference row); choose another name",
        ),
    ],
    ids=["missing-import", "raises", "duplicate-head", "duplicate-encoder", "baseline-name"],
)
def test_a_broken_plugin_is_a_one_line_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str, message: str
) -> None:
    plugin = tmp_path / "broken_plugin.py"
    plugin.write_text(source, encoding="utf-8")
    code, _, err = bench(capsys, "heads", "--plugin", str(plugin))
    assert code == 2
    assert err.count("\n") == 1 and str(plugin) in err and message in err
    assert "Again" not in {cls.__name__ for cls in list_heads().values()}


def test_unknown_plugins_are_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(PluginError, match="no_such_plugin_module"):
        plugins.load(["no_such_plugin_module"])
    code, _, err = bench(capsys, "encoders", "--plugin", "missing/plugin.py")
    assert code == 2 and "missing/plugin.py" in err and "no such file" in err


def test_a_head_must_take_its_declared_hyperparameters() -> None:
    from heads import Head, Hyperparameter, register_head

    class Forgetful(Head):
        hyperparameters = (Hyperparameter("width", 8, "Width.", low=1),)

        def __init__(self, *, hidden_size: int, num_labels: int) -> None:
            super().__init__()

        def forward(self, features):  # pragma: no cover - never built
            raise NotImplementedError

    with pytest.raises(TypeError, match="width"):
        register_head("forgetful")(Forgetful)
    assert "forgetful" not in list_heads()
