"""``bench tune``: an Optuna study (seeded TPE, pruning on validation macro-F1) whose trials are leaderboard runs."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import lightning as L
import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState
from optuna_integration import PyTorchLightningPruningCallback

from bench.config import RunConfig
from bench.data.types import SplitDataset
from bench.errors import UsageError
from bench.leaderboard.records import RunRecord
from bench.leaderboard.store import Leaderboard, run_key
from bench.preparation.datasets import RunDatasets, fold_configs
from bench.training.runner import run_experiment
from bench.tuning.spaces import SearchSpace
from bench.tuning.storage import describe_study

PrunerName = Literal["median", "hyperband", "none"]
MONITOR = "val_macro_f1"
# Trials in these states count towards ``--trials``; failed ones do not.
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)


class TrialRunFailed(Exception):
    """A trial's run ended as failed (recorded in the leaderboard); the trial is marked failed."""


WORKER_SEED_STRIDE = 1_000_003  # more trials than any study holds: worker seeds never overlap


def tune_study_name(encoder: str, head: str, fingerprint: str) -> str:
    """``tune-<encoder>-<head>-<first 12 characters of the dataset fingerprint>``."""
    return f"tune-{encoder}-{head}-{fingerprint[:12]}"


def make_pruner(name: PrunerName) -> optuna.pruners.BasePruner:
    """Median (after 5 trials, from the second epoch on), Hyperband over epochs, or no pruning."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise UsageError(f"--pruner must be median, hyperband or none, got {name!r}")


def open_tune_study(
    storage: optuna.storages.BaseStorage,
    name: str,
    base: RunConfig,
    dataset: SplitDataset | RunDatasets,
    *,
    pruner: PrunerName,
    sampler_seed: int,
    worker: int = 0,
) -> optuna.Study:
    """Create or resume the study ``name``, maximising validation macro-F1 with a seeded TPE sampler.

    The sampler's seed is ``sampler_seed`` plus the number of trials the study
    already has plus ``worker`` × :data:`WORKER_SEED_STRIDE`, so a resumed study does
    not replay the random start-up trials it has already run, and parallel workers
    never share a seed (with a stride of 1, a worker that starts after another's
    first trial would take that worker's seed and sample its trial again).
    """
    study = optuna.create_study(
        storage=storage, study_name=name, direction="maximize", pruner=make_pruner(pruner), load_if_exists=True
    )
    describe_study(
        study,
        {
            "kind": "tune",
            "encoder": base.encoder,
            "head": base.head,
            "dataset": dataset.name,
            "fingerprint": dataset.fingerprint,
        },
    )
    seed = sampler_seed + len(study.get_trials(deepcopy=False)) + worker * WORKER_SEED_STRIDE
    study.sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    return study


def counted_trials(study: optuna.Study) -> int:
    """Trials that completed or were pruned (what ``--trials`` counts)."""
    return len(study.get_trials(deepcopy=False, states=COUNTED))


@dataclass
class TuneObjective:
    """Samples a configuration from ``space``, runs it into the leaderboard, returns its validation macro-F1.

    Each run is linked to the study and trial number; the trial keeps the run id,
    config hash, full config and test macro-F1 as user attributes. With ``--folds``
    (``dataset`` holds every fold) the trial runs every fold and its value is the
    mean validation macro-F1 over the folds (test macro-F1 likewise; ``run_ids``
    lists the folds' runs). Such trials are not pruned.
    """

    base: RunConfig
    space: SearchSpace
    dataset: SplitDataset | RunDatasets
    leaderboard: Leaderboard
    study_name: str
    prune: bool = True
    callbacks: Callable[[], Sequence[L.Callback]] = tuple
    on_start: Callable[[int, RunConfig], None] = lambda number, config: None

    def __call__(self, trial: optuna.Trial) -> float:
        datasets = RunDatasets.coerce(self.dataset)
        config = self.base.with_updates(**self.space.sample(trial), study=self.study_name, trial=trial.number)
        folds = fold_configs(config)
        run_ids = [run_key(fold.config_hash(), datasets.dataset(fold).fingerprint) for fold in folds]
        trial.set_user_attr("config_hash", config.config_hash())
        trial.set_user_attr("run_id", run_ids[0])
        if len(folds) > 1:
            trial.set_user_attr("run_ids", run_ids)
        trial.set_user_attr("config", config.to_json())
        self.on_start(trial.number, config)
        records = []
        for fold in folds:
            pruning = (
                [PyTorchLightningPruningCallback(trial, monitor=MONITOR)] if self.prune and len(folds) == 1 else []
            )
            record = run_experiment(
                fold, self.leaderboard, dataset=datasets.dataset(fold), callbacks=[*pruning, *self.callbacks()]
            )
            if record.status != "finished" or record.val_macro_f1 is None:
                error = record.error or f"run {record.run_id} ended {record.status}"
                trial.set_user_attr("error", error)
                raise TrialRunFailed(error)
            records.append(record)
        tests = [record.macro_f1 for record in records if record.macro_f1 is not None]
        if tests:
            trial.set_user_attr("test_macro_f1", statistics.fmean(tests))
        trial.set_user_attr("flags", sorted({flag for record in records for flag in record.flags}))
        return statistics.fmean(record.val_macro_f1 for record in records if record.val_macro_f1 is not None)


def run_trials(
    study: optuna.Study,
    objective: TuneObjective,
    total: int,
    after_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] = lambda study, trial: None,
) -> int:
    """Run trials until ``total`` have completed or been pruned in the study (all workers together).

    One call runs at most ``total`` minus those already counted, so failures end
    it too; ``after_trial`` sees each trial as it ends. Returns how many trials it started.
    """
    remaining = total - counted_trials(study)
    if remaining <= 0:
        return 0
    before = len(study.get_trials(deepcopy=False))
    study.optimize(
        objective,
        n_trials=remaining,
        catch=(TrialRunFailed,),
        callbacks=[MaxTrialsCallback(total, states=COUNTED), after_trial],
    )
    return len(study.get_trials(deepcopy=False)) - before


def best_trial(study: optuna.Study, include_flagged: bool = False) -> optuna.trial.FrozenTrial | None:
    """The completed trial with the highest validation macro-F1 whose run is not flagged (collapsed, below the
    majority row) unless ``include_flagged``; ``None`` when there is none."""
    completed = [
        trial
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if trial.value is not None and (include_flagged or not trial.user_attrs.get("flags"))
    ]
    return max(completed, key=lambda trial: (trial.value, -trial.number), default=None)


def best_config(
    study: optuna.Study, base: RunConfig, include_flagged: bool = False
) -> tuple[optuna.trial.FrozenTrial, RunConfig]:
    """The best completed trial and its RunConfig (with this machine's results directory, device and workers)."""
    best = best_trial(study, include_flagged)
    if best is None:
        if best_trial(study, include_flagged=True) is not None:
            raise UsageError(
                f"every completed trial of study {study.study_name!r} is flagged (collapsed or below the majority "
                "row; see bench leaderboard); run more trials, or pass --include-flagged to confirm the best of them"
            )
        raise UsageError(
            f"study {study.study_name!r} has no completed trial yet; run more trials before --confirm-seeds"
        )
    config = RunConfig.from_json(best.user_attrs["config"])
    return best, config.with_updates(
        results_dir=base.results_dir, device=base.device, devices=base.devices, num_workers=base.num_workers
    )


def confirm_seeds(
    study: optuna.Study,
    base: RunConfig,
    seeds: Sequence[int],
    dataset: SplitDataset | RunDatasets,
    leaderboard: Leaderboard,
    *,
    callbacks: Callable[[], Sequence[L.Callback]] = tuple,
    on_start: Callable[[RunConfig], None] = lambda config: None,
    include_flagged: bool = False,
) -> list[RunRecord]:
    """Re-run the best trial's configuration with each seed (on every fold with ``--folds``); runs are linked to
    the study and the best trial.

    The best trial skips flagged ones unless ``include_flagged``.
    """
    best, config = best_config(study, base, include_flagged)
    datasets = RunDatasets.coerce(dataset)
    records: list[RunRecord] = []
    for seed in seeds:
        for seeded in fold_configs(config.with_updates(seed=seed, study=study.study_name, trial=best.number)):
            on_start(seeded)
            records.append(
                run_experiment(seeded, leaderboard, dataset=datasets.dataset(seeded), callbacks=list(callbacks()))
            )
    return records
