"""``--devices N``: one run as Lightning DDP over N ranks, rank 0 in this process, ranks 1… started by the runner.

On CPU the ranks use the gloo backend, so the launching, sharding, gathering and
failure handling run here exactly as they do over GPUs (NCCL) on a GPU machine.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch.utils.data import BatchSampler, RandomSampler

from bench.config import RunConfig
from bench.errors import UsageError
from bench.leaderboard.store import Leaderboard
from bench.training.batching import BucketBatchSampler, ShardedBatchSampler, eval_batches, shard
from bench.training.distributed import WORKER_MODULE, WorkerFailed, WorkerProcess, ready_file, worker_error
from bench.training.errors import NonFiniteLossError
from bench.training.runner import halve_batch
from bench.tuning.workers import gpu_groups, parse_gpus, worker_specs
from tests.conftest import ROOT, bench, tiny_config_args
from tests.test_reliability import CLI

TINY_RUN = [
    "--encoder",
    "scratch",
    "--head",
    "mlp",
    *tiny_config_args(),
    "--train-limit",
    "160",
    "--max-len",
    "32",
    "--batch-size",
    "16",
    "--lr",
    "0.002",
    "--device",
    "cpu",
    "--no-progress",
]


# ------------------------------------------------------------------------------------------- sharding


def test_training_shards_split_every_global_batch_between_the_ranks():
    batches = [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11]]
    shards = [shard(batches, rank, 2) for rank in range(2)]
    assert shards == [[[0, 2, 4], [6, 8, 10], [11]], [[1, 3, 5], [7, 9], [11]]]
    for step, batch in enumerate(batches[:2]):
        assert sorted(shards[0][step] + shards[1][step]) == batch, "the ranks' parts make the global batch"


def test_sharded_sampler_draws_one_epoch_for_all_ranks_and_follows_the_epoch():
    lengths = np.random.default_rng(0).integers(3, 40, size=203)
    single = BucketBatchSampler(lengths, 8, seed=5)
    samplers = [ShardedBatchSampler(BucketBatchSampler(lengths, 8, seed=5), rank, 2) for rank in range(2)]
    for epoch in (0, 1):
        single.set_epoch(epoch)
        for sampler in samplers:
            sampler.set_epoch(epoch)
        parts = [list(sampler) for sampler in samplers]
        assert [len(part) for part in parts] == [len(samplers[0])] * 2 == [len(single)] * 2
        whole = list(single)
        for step, batch in enumerate(whole):
            assert sorted(parts[0][step] + parts[1][step]) == sorted(batch), "same global batches as one process"
    # An unseeded shuffle's generator is drawn once per epoch, as a one-process loader draws it.
    data = list(range(40))
    one = BatchSampler(RandomSampler(data, generator=torch.Generator().manual_seed(1)), 8, drop_last=False)
    two = [
        ShardedBatchSampler(
            BatchSampler(RandomSampler(data, generator=torch.Generator().manual_seed(1)), 8, drop_last=False), rank, 2
        )
        for rank in range(2)
    ]
    for _ in range(3):
        expected = [sorted(batch) for batch in itertools.islice(one, len(one))]
        parts = [list(sampler) for sampler in two]
        assert [sorted(a + b) for a, b in zip(*parts, strict=True)] == expected


@pytest.mark.parametrize("by_length", [True, False])
def test_evaluation_shards_cover_every_example_once(by_length: bool):
    lengths = np.random.default_rng(1).integers(3, 40, size=101)
    parts = [eval_batches(lengths, 16, by_length=by_length, rank=rank, world=4) for rank in range(4)]
    seen = sorted(index for part in parts for batch in part for index in batch)
    assert seen == list(range(101))
    assert all(part for part in parts), "every rank has examples"
    if by_length:
        for part in parts:
            flat = [index for batch in part for index in batch]
            assert list(lengths[flat]) == sorted(lengths[flat])
    whole = eval_batches(lengths, 16, by_length=True)
    assert [index for batch in whole for index in batch] == list(np.argsort(lengths, kind="stable"))


def test_oom_retry_halves_the_global_batch_keeping_it_divisible():
    assert halve_batch(32, 1) == 16
    assert halve_batch(32, 2) == 16
    assert halve_batch(24, 4) == 12
    assert halve_batch(4, 4) == 4, "one example per device is the floor"


# ------------------------------------------------------------------------------------------- options


def test_devices_are_not_part_of_the_run_identity():
    assert RunConfig(batch_size=32).config_hash() == RunConfig(batch_size=32, devices=4).config_hash()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--devices", "3"], "--batch-size 16 is not divisible by --devices 3"),
        (["--devices", "0"], "--devices must be at least 1"),
    ],
)
def test_bad_devices_are_one_line_errors(capsys, results_dir: Path, extra: list[str], message: str):
    code, out, err = bench(capsys, "run", *TINY_RUN, *extra, "--results", str(results_dir))
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert Leaderboard.for_results_dir(results_dir).runs() == []


def test_devices_with_one_named_gpu_is_an_error():
    with pytest.raises(UsageError, match="names one GPU"):
        RunConfig(device="cuda:1", devices=2)


def test_tune_on_several_devices_needs_the_pruner_off(capsys, results_dir: Path):
    code, out, err = bench(capsys, "tune", *TINY_RUN, "--devices", "2", "--trials", "1", "--results", str(results_dir))
    assert code == 2 and "--pruner none" in err


def test_gpus_are_grouped_per_worker_by_devices(tmp_path: Path):
    groups = gpu_groups(parse_gpus("0,1,2,3"), 2)
    assert groups == ["0,1", "2,3"]
    specs = worker_specs(groups, ["grid", "--devices", "2"], tmp_path, {}, pass_index=False)
    assert [spec.env["CUDA_VISIBLE_DEVICES"] for spec in specs] == ["0,1", "2,3"]
    assert specs[1].log_path.name == "worker-1-gpu2-3.log"
    assert gpu_groups(["0", "1"], 1) == ["0", "1"]
    with pytest.raises(UsageError, match="not a multiple of --devices 2"):
        gpu_groups(["0", "1", "2"], 2)


# ------------------------------------------------------------------------------------------- real DDP on CPU


# Rank r's k-th batch is the r-th half of the single process's k-th batch (length-bucketed as usual) and
# DDP averages the two halves' gradients: without dropout, the same training up to rounding.
EXACT = [
    "--dropout",
    "0",
    "--encoder-config",
    "hidden_dropout_prob=0",
    "--encoder-config",
    "attention_probs_dropout_prob=0",
    "--epochs",
    "3",
]


@pytest.mark.slow
def test_two_cpu_ranks_train_exactly_like_one_process_and_record_one_row(capsys, tmp_path: Path):
    records = {}
    for devices in (1, 2):
        results = tmp_path / f"devices{devices}"
        code, out, err = bench(capsys, "run", *TINY_RUN, *EXACT, "--devices", str(devices), "--results", str(results))
        assert code == 0, out + err
        (record,) = Leaderboard.for_results_dir(results).runs()
        records[devices] = Leaderboard.for_results_dir(results).get_run(record.run_id, with_predictions=True)
    one, two = records[1], records[2]
    assert two.status == "finished" and two.environment["devices"] == "2" and one.environment["devices"] == "1"
    assert one.config_hash == two.config_hash, "--devices is not part of the run identity"
    assert one.metrics is not None and two.metrics is not None
    assert one.metrics.predictions is not None and two.metrics.predictions is not None
    assert two.metrics.predictions.example_ids == one.metrics.predictions.example_ids, "each test example once"
    assert np.allclose(two.metrics.predictions.probabilities, one.metrics.predictions.probabilities, atol=1e-4)
    for epoch_one, epoch_two in zip(one.metrics.history, two.metrics.history, strict=True):
        assert epoch_two["val_loss"] == pytest.approx(epoch_one["val_loss"], abs=1e-4)
        assert epoch_two["train_loss"] == pytest.approx(epoch_one["train_loss"], abs=1e-4)
    assert two.macro_f1 == pytest.approx(one.macro_f1)
    # Rank 1 has ended, this process left the process group and the environment as they were.
    assert not dist.is_initialized()
    assert "LOCAL_RANK" not in os.environ and "MASTER_PORT" not in os.environ
    assert (tmp_path / "devices2" / "logs" / "ddp" / two.run_id / "rank1.log").exists()


@pytest.mark.slow
def test_a_grid_runs_each_point_on_two_ranks_in_one_process(capsys, results_dir: Path):
    code, out, err = bench(
        capsys,
        "grid",
        "--encoders",
        "scratch",
        "--heads",
        "linear,mlp",
        *TINY_RUN[4:],
        "--epochs",
        "1",
        "--devices",
        "2",
        "--results",
        str(results_dir),
    )
    assert code == 0, out + err
    records = Leaderboard.for_results_dir(results_dir).runs()
    assert sorted(record.head for record in records) == ["linear", "mlp"]
    assert all(record.status == "finished" and record.environment["devices"] == "2" for record in records)


def rank_processes(results: Path) -> list[int]:
    """Pids of worker ranks whose command line names ``results``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if WORKER_MODULE.encode() in command and any(str(results).encode() in part for part in command):
            pids.append(int(entry.name))
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the rank process through /proc (Linux)")
@pytest.mark.parametrize("when", ["starting", "training"])
def test_a_killed_rank_fails_the_run_naming_it_instead_of_hanging(results_dir: Path, when: str):
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CLI,
            "run",
            *TINY_RUN,
            "--devices",
            "2",
            "--epochs",
            "1000",
            "--results",
            str(results_dir),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if when == "starting" and rank_processes(results_dir):
                break  # rank 1 is still importing: rank 0 waits for it before the (uninterruptible) rendezvous
            if when == "training" and list(results_dir.glob("logs/ddp/*/rank1.ready")):
                # Rank 1 joins the process group within a second of being ready, even on a loaded machine within
                # 20 s (were it killed before joining, rank 0 would wait out the rendezvous timeout); then it trains.
                time.sleep(20)
                break
            time.sleep(0.05)
        (pid,) = rank_processes(results_dir)
        os.kill(pid, signal.SIGKILL)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, out + err
    (record,) = Leaderboard.for_results_dir(results_dir).runs()
    assert record.status == "failed"
    assert record.error is not None and "rank 1 ended with signal 9" in record.error


@pytest.mark.parametrize(
    ("recorded", "expected", "text"),
    [
        (
            {"type": "OutOfMemoryError", "message": "CUDA out of memory"},
            torch.OutOfMemoryError,
            "rank 2: CUDA out of memory",
        ),
        (
            {"type": "NonFiniteLossError", "message": "training loss became nan"},
            NonFiniteLossError,
            "rank 2: training loss",
        ),
        ({"type": "ValueError", "message": "bad"}, WorkerFailed, "rank 2: ValueError: bad"),
    ],
)
def test_a_workers_error_is_raised_in_rank_0_as_what_it_was(tmp_path: Path, recorded, expected, text):
    """Out of memory on any rank reaches --oom-retry; a NaN loss reads as one; anything else names the rank."""
    error_path = tmp_path / "rank2.error.json"
    error_path.write_text(json.dumps(recorded))
    worker = WorkerProcess(2, subprocess.Popen([sys.executable, "-c", "pass"]), error_path, tmp_path / "rank2.log")
    worker.process.wait()
    error = worker_error(worker, 1)
    assert type(error) is expected and text in str(error)
    assert ready_file(error_path).name == "rank2.ready"
