"""Training: optimizer coverage, schedule, batching, learning and determinism."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import lightning as L
import numpy as np
import pytest
import torch

from bench.config import RunConfig
from bench.data.types import DataOptions
from bench.leaderboard.store import Leaderboard
from bench.model.padding import PadCollator
from bench.preparation.datasets import prepare_dataset
from bench.training.batching import BucketBatchSampler
from bench.training.datamodule import default_eval_batch_size
from bench.training.fitting import build_trainer, prepare_run
from bench.training.module import linear_warmup_decay
from bench.training.runner import run_experiment
from heads import list_heads
from tests.conftest import tiny_config_pairs


def tiny_config(results_dir, **changes) -> RunConfig:
    base = RunConfig(
        encoder="scratch",
        head="linear",
        encoder_config=tiny_config_pairs(),
        train_limit=120,
        epochs=1,
        max_len=32,
        batch_size=16,
        lr=1e-3,
        results_dir=str(results_dir),
    )
    return base.with_updates(**changes)


@pytest.mark.parametrize("head", sorted(list_heads()))
def test_every_trainable_parameter_reaches_the_optimizer(results_dir, head):
    config = tiny_config(results_dir, head=head)
    prepared = prepare_run(config, prepare_dataset(config))
    grouped = {id(p) for group in prepared.module.parameter_groups() for p in group["params"]}
    named = dict(prepared.module.named_parameters())
    missing = [name for name, parameter in named.items() if id(parameter) not in grouped]
    assert not missing, f"parameters outside the optimizer: {missing}"
    assert any(name.startswith("encoder.") for name in named) and any(name.startswith("head.") for name in named)
    groups = prepared.module.parameter_groups()
    no_decay = {id(p) for group in groups if group["weight_decay"] == 0 for p in group["params"]}
    for name, parameter in named.items():
        if parameter.ndim < 2:
            assert id(parameter) in no_decay, f"{name} (bias/norm) must not be decayed"


@pytest.mark.parametrize(("precision", "kernel"), [("32", "fused"), ("16-mixed", "foreach")])
def test_cpu_training_uses_a_multi_tensor_adamw_and_small_eval_batches(results_dir, precision, kernel):
    """Fused AdamW, except under mixed precision with clipping (Lightning refuses that pair): multi-tensor there."""
    config = tiny_config(results_dir, device="cpu", precision=precision)
    prepared = prepare_run(config, prepare_dataset(config))
    trainer = build_trainer(config)
    assert trainer.gradient_clip_val
    trainer.fit(prepared.module, datamodule=prepared.datamodule)
    (optimizer,) = trainer.optimizers
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults[kernel] is True
    # On CPU the evaluation batch is the training batch or 32, not a GPU's 256.
    assert prepared.datamodule.eval_batch_size == 32
    assert default_eval_batch_size(64, "cpu") == 64 and default_eval_batch_size(16, "cuda") == 256


def test_frozen_encoder_trains_only_the_head(results_dir):
    config = tiny_config(results_dir, head="mlp", freeze_encoder=True, head_lr=1e-3)
    prepared = prepare_run(config, prepare_dataset(config))
    grouped = {id(p) for group in prepared.module.parameter_groups() for p in group["params"]}
    assert all(id(p) not in grouped for p in prepared.module.encoder.parameters())
    assert all(id(p) in grouped for p in prepared.module.head.parameters())


class ModesDuringTraining(L.Callback):
    """Records whether encoder and head were in training mode at each training step."""

    def __init__(self) -> None:
        self.modes: set[tuple[bool, bool]] = set()

    def on_train_batch_start(self, trainer, module, batch, batch_index) -> None:
        self.modes.add((module.encoder.training, module.head.training))


@pytest.mark.parametrize("freeze", [False, True])
def test_a_loaded_encoder_trains_with_dropout_and_a_frozen_one_stays_in_eval_mode(results_dir, freeze):
    """``from_pretrained`` returns a model in eval mode and Lightning keeps each module's mode: fine-tuning must
    switch the encoder to training mode (dropout on); a frozen encoder stays in eval mode."""
    config = tiny_config(results_dir, device="cpu", freeze_encoder=freeze, feature_cache=False)
    prepared = prepare_run(config, prepare_dataset(config))
    prepared.module.encoder.eval()  # as a loaded pretrained encoder arrives
    modes = ModesDuringTraining()
    trainer = build_trainer(config)
    trainer.callbacks.append(modes)
    trainer.fit(prepared.module, datamodule=prepared.datamodule)
    assert modes.modes == {(not freeze, True)}


def test_head_lr_is_separate(results_dir):
    config = tiny_config(results_dir, lr=2e-5, head_lr=1e-3)
    prepared = prepare_run(config, prepare_dataset(config))
    head_ids = {id(p) for p in prepared.module.head.parameters()}
    for group in prepared.module.parameter_groups():
        expected = 1e-3 if id(group["params"][0]) in head_ids else 2e-5
        assert group["lr"] == expected


def test_warmup_then_linear_decay():
    multiplier = linear_warmup_decay(warmup_steps=10, total_steps=100)
    values = [multiplier(step) for step in range(100)]
    assert values[0] < values[5] < values[9] <= 1.0
    assert max(values) == pytest.approx(1.0, abs=0.1)
    assert all(a >= b for a, b in zip(values[10:], values[11:]))
    assert values[-1] < 0.05


def test_bucket_sampler_covers_every_example_once_with_short_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 64, size=1000).tolist()
    sampler = BucketBatchSampler(lengths, 16, seed=7, pool_batches=10)
    first = list(sampler)
    second = list(sampler)
    for epoch in (first, second):
        flat = [index for batch in epoch for index in batch]
        assert sorted(flat) == list(range(1000))
    assert first != second, "each epoch must reshuffle"
    assert first == list(BucketBatchSampler(lengths, 16, seed=7, pool_batches=10)), "seeded"
    padded = sum(len(batch) * max(lengths[i] for i in batch) for batch in first)
    assert padded / sum(lengths) < 1.15, "bucketing should keep padding small"


def test_pad_collator_pads_right_with_the_pad_id():
    batch = PadCollator(pad_id=1)([(0, [2, 5, 3], 0), (1, [2, 3], 4)])
    assert batch["input_ids"].tolist() == [[2, 5, 3], [2, 3, 1]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [0, 4]


@pytest.mark.slow
def test_scratch_run_on_the_sample_data_learns(results_dir):
    """A small from-scratch encoder on the bundled sample data beats chance clearly."""
    small = (("hidden_size", 64), ("intermediate_size", 128), ("num_attention_heads", 2), ("num_hidden_layers", 2))
    config = RunConfig(
        encoder="scratch",
        head="mlp",
        encoder_config=small,
        epochs=10,
        lr=1e-3,
        batch_size=16,
        seed=1,
        results_dir=str(results_dir),
    )
    record = run_experiment(config, Leaderboard.for_results_dir(results_dir))
    assert record.status == "finished", record.error
    chance = 1 / len(record.metrics.labels)
    assert record.metrics.val_macro_f1 > chance + 0.2
    assert record.macro_f1 > chance + 0.15
    assert record.metrics.history[-1]["train_loss"] < record.metrics.history[0]["train_loss"]


def test_runs_are_deterministic_on_cpu(results_dir):
    boards = [Leaderboard.for_results_dir(results_dir / name) for name in ("a", "b")]
    first, second = (run_experiment(tiny_config(results_dir / n, head="cnn"), b) for n, b in zip("ab", boards))
    assert first.status == second.status == "finished"
    assert first.run_id == second.run_id
    assert boards[0].predictions(first.run_id).probabilities == boards[1].predictions(second.run_id).probabilities


def test_finished_run_is_skipped_unless_rerun(results_dir):
    leaderboard = Leaderboard.for_results_dir(results_dir)
    config = tiny_config(results_dir)
    first = run_experiment(config, leaderboard)
    again = run_experiment(config, leaderboard)
    assert again.run_id == first.run_id and again.updated_at == first.updated_at
    rerun = run_experiment(config, leaderboard, rerun=True)
    assert rerun.run_id == first.run_id and rerun.updated_at != first.updated_at


def test_split_does_not_depend_on_the_training_seed(results_dir):
    a = prepare_dataset(tiny_config(results_dir, seed=1))
    b = prepare_dataset(tiny_config(results_dir, seed=2))
    assert [e.uid for e in a.test] == [e.uid for e in b.test]
    assert a.fingerprint == b.fingerprint


def test_train_limit_is_stratified(results_dir):
    dataset = prepare_dataset(tiny_config(results_dir, train_limit=60))
    counts = Counter(example.label for example in dataset.train)
    assert sum(counts.values()) == 60
    assert max(counts.values()) - min(counts.values()) <= 1


def test_class_weighted_loss(results_dir):
    config = tiny_config(results_dir, class_weighted=True)
    balanced = prepare_dataset(config)
    rare = balanced.labels[0]
    rare_examples = [example for example in balanced.train if example.label == rare]
    train = [example for example in balanced.train if example.label != rare] + rare_examples[:2]
    dataset = replace(balanced, train=train)  # one class much rarer than the others
    prepared = prepare_run(config, dataset)
    weights = prepared.module.loss_fn.weight
    counts = Counter(example.label for example in train)
    expected = [len(train) / (len(dataset.labels) * counts[label]) for label in dataset.labels]
    assert weights is not None and weights.shape == (len(dataset.labels),)
    assert torch.allclose(weights, torch.tensor(expected), atol=1e-5)
    per_example = torch.tensor([float(counts[label]) for label in dataset.labels])
    assert torch.isclose((weights * per_example).sum() / len(train), torch.tensor(1.0), atol=1e-5)
    assert weights[0] > 2 * weights[1:].max()
    # Effect: a model that always predicts a common class is penalised more for the rare class's example.
    logits = torch.zeros(2, len(dataset.labels))
    logits[:, 1] = 3.0
    labels = torch.tensor([0, 1])
    weighted = prepared.module.loss_fn(logits, labels)
    unweighted = torch.nn.functional.cross_entropy(logits, labels)
    assert weighted > unweighted
    assert prepare_run(tiny_config(results_dir), dataset).module.loss_fn.weight is None


def test_nan_loss_is_recorded_as_failed(results_dir):
    config = tiny_config(results_dir, lr=1e30, grad_clip=0.0, warmup_ratio=0.0, epochs=2)
    record = run_experiment(config, Leaderboard.for_results_dir(results_dir))
    assert record.status == "failed"
    assert "loss became" in record.error


def test_default_config_is_valid_and_hash_ignores_location():
    a = RunConfig(results_dir="x", device="cpu")
    b = RunConfig(results_dir="y", device="auto")
    assert a.config_hash() == b.config_hash()
    assert RunConfig(seed=2).config_hash() != RunConfig(seed=1).config_hash()
    assert RunConfig.from_json(a.to_json()) == a
    assert RunConfig(data=DataOptions(split_seed=3)).config_hash() != RunConfig().config_hash()


def test_the_row_records_the_precision_used_phase_times_and_latency_once_per_shape(results_dir):
    """``--precision 16-mixed`` runs as bf16-mixed on a CPU (Lightning's choice): the row says so, beside the
    request."""
    board = Leaderboard.for_results_dir(results_dir)
    first = run_experiment(tiny_config(results_dir, precision="16-mixed", device="cpu"), board)
    assert first.status == "finished", first.error
    assert first.environment["precision"] == "bf16-mixed"
    assert first.environment["precision_requested"] == "16-mixed"
    timings = first.metrics.timings
    for phase in (
        "model_build",
        "tokenize",
        "first_step",
        "fit",
        "validation",
        "test",
        "latency",
        "artefacts",
        "leaderboard_start",
        "data_load",
    ):
        assert timings[f"{phase}_seconds"] >= 0, phase
    assert 0 < timings["first_step_seconds"] <= timings["fit_seconds"]
    assert timings["train_seconds"] <= timings["fit_seconds"]
    assert first.environment["latency"] == "measured"
    # Another seed has the same shape: its latency is the first run's, and says where it comes from.
    second = run_experiment(tiny_config(results_dir, seed=2, device="cpu"), board)
    assert second.environment["latency"] == f"measured by run {first.run_id}"
    assert second.environment["precision"] == "32-true" and second.environment["precision_requested"] == "auto"
    for key in ("latency_ms_batch1", "latency_ms_batch64"):
        assert second.metrics.timings[key] == first.metrics.timings[key] > 0
    # ``latency="always"`` measures anyway; another head is another shape.
    third = run_experiment(tiny_config(results_dir, seed=3, device="cpu"), board, latency="always")
    assert third.environment["latency"] == "measured"
    other_head = run_experiment(tiny_config(results_dir, head="mlp", device="cpu"), board)
    assert other_head.environment["latency"] == "measured"
