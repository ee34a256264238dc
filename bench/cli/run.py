"""``bench run``: one configuration, trained, tested and recorded."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch.callbacks import RichProgressBar
from rich.table import Table

from bench.cli import options as opt
from bench.cli.app import app, console
from bench.leaderboard.records import RunRecord
from bench.leaderboard.store import Leaderboard
from bench.training.runner import run_experiment

D = opt.DEFAULTS


@app.command()
def run(
    encoder: opt.Encoder = D.encoder,
    head: opt.Head = D.head,
    data: opt.Data = D.data.source,
    text_col: opt.TextCol = None,
    label_col: opt.LabelCol = None,
    sheet: opt.Sheet = None,
    text: opt.TextField = D.data.text_field,
    labels: opt.Labels = D.data.label_scheme,
    label_map: opt.LabelMap = None,
    split_seed: opt.SplitSeed = D.data.split_seed,
    dedupe: opt.Dedupe = False,
    drop_unknown: opt.DropUnknown = False,
    encoder_path: opt.EncoderPath = None,
    encoder_config: opt.EncoderConfig = None,
    random_init: opt.RandomInit = False,
    freeze_encoder: opt.FreezeEncoder = False,
    trust_remote_code: opt.TrustRemoteCode = False,
    head_param: opt.HeadParam = None,
    dropout: opt.Dropout = None,
    epochs: opt.Epochs = D.epochs,
    train_limit: opt.TrainLimit = None,
    max_len: opt.MaxLen = D.max_len,
    batch_size: opt.BatchSize = D.batch_size,
    lr: opt.Lr = None,
    head_lr: opt.HeadLr = None,
    weight_decay: opt.WeightDecay = D.weight_decay,
    warmup_ratio: opt.Warmup = D.warmup_ratio,
    grad_clip: opt.GradClip = D.grad_clip,
    class_weighted: opt.ClassWeighted = False,
    patience: opt.Patience = None,
    seed: opt.Seed = D.seed,
    results: opt.Results = Path(D.results_dir),
    device: opt.Device = D.device,
    devices: opt.Devices = D.devices,
    precision: opt.Precision = D.precision,
    num_workers: opt.NumWorkers = D.num_workers,
    bucketing: opt.Bucketing = D.bucketing,
    token_cache: opt.TokenCache = D.token_cache,
    feature_cache: opt.FeatureCache = D.feature_cache,
    compile: opt.Compile = D.compile,
    oom_retry: opt.OomRetry = False,
    rerun: bool = False,
    progress: bool = True,
) -> None:
    """Train ENCODER + HEAD on DATA, test the best epoch, record the run in the leaderboard."""
    config = opt.run_config(locals())
    leaderboard = Leaderboard.for_results_dir(config.results_path)
    callbacks = [RichProgressBar(leave=True)] if progress and console.is_terminal else []
    record = run_experiment(config, leaderboard, callbacks=callbacks, rerun=rerun)
    print_run(record)
    if record.status != "finished":
        raise SystemExit(1)


def print_run(record: RunRecord) -> None:
    """One run's outcome as a small table."""
    table = Table(title=f"run {record.run_id}", show_header=False)
    table.add_row("encoder / head", f"{record.encoder} / {record.head}")
    table.add_row("dataset", f"{record.dataset} ({record.fingerprint[:12]})")
    table.add_row("status", record.status)
    if record.status == "finished" and record.metrics is not None:
        metrics = record.metrics
        table.add_row("test macro-F1", f"{metrics.macro_f1:.4f}")
        table.add_row("test accuracy", f"{metrics.accuracy:.4f}")
        table.add_row("val macro-F1 (best epoch)", f"{metrics.val_macro_f1:.4f} (epoch {metrics.best_epoch})")
        table.add_row("parameters (trainable)", f"{metrics.total_params:,} ({metrics.trainable_params:,})")
        table.add_row("train samples/s", f"{metrics.timings.get('train_samples_per_second', 0):.1f}")
        if any(metrics.truncated.values()):
            splits = ", ".join(f"{split} {count}" for split, count in metrics.truncated.items() if count)
            table.add_row("texts cut to --max-len", splits)
    elif record.error:
        table.add_row("error", record.error)
    console.print(table)
