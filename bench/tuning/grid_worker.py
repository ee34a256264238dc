"""One worker of a grid: claims points through the grid's Optuna study and runs them into the leaderboard.

Any number of workers (processes, machines) may run the same grid against one
storage at once; see :mod:`bench.tuning.coordination` for how they share it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightning as L
import optuna

from bench.config import RunConfig
from bench.data.types import SplitDataset
from bench.leaderboard.records import RunRecord
from bench.leaderboard.store import Leaderboard, RunConflictError
from bench.preparation.datasets import RunDatasets
from bench.training.runner import run_experiment
from bench.tuning import coordination
from bench.tuning.coordination import Action
from bench.tuning.storage import describe_study, fail_stale_trials, fail_trials_of_dead_runs, name_worker_process

EventKind = Literal["started", "finished", "failed", "existing", "skipped"]


@dataclass(frozen=True)
class GridEvent:
    """Something that happened to one point, for progress displays.

    ``started``: training begins; ``finished``/``failed``: it ended (``record``);
    ``existing``: the leaderboard already had it finished; ``skipped``: another
    worker holds it (``reason``).
    """

    kind: EventKind
    point: int
    config: RunConfig
    record: RunRecord | None = None
    reason: str | None = None


@dataclass
class GridOutcome:
    """What one worker did, and the points it left running in other workers."""

    ran: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    existing: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    running_elsewhere: set[int] = field(default_factory=set)


class GridRunFailed(Exception):
    """A point's run ended as failed (recorded in the leaderboard); its trial is marked failed."""


def open_grid_study(
    storage: optuna.storages.BaseStorage,
    name: str,
    points: Sequence[RunConfig],
    dataset: SplitDataset | RunDatasets,
    *,
    config_file: Path | None = None,
) -> optuna.Study:
    """Create or load the study of a grid and describe the grid in its user attributes (with the ``--config``
    file's name and content, when the grid was given one)."""
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
        load_if_exists=True,
    )
    attributes: dict[str, Any] = {
        "kind": "grid",
        "points": len(points),
        "dataset": dataset.name,
        "fingerprint": dataset.fingerprint,
    }
    if config_file is not None:
        attributes["config_file"] = {"path": str(config_file), "content": config_file.read_text(encoding="utf-8")}
    describe_study(study, attributes)
    return study


def finished_points(
    points: Sequence[RunConfig], leaderboard: Leaderboard, datasets: SplitDataset | RunDatasets
) -> set[int]:
    """Indices of the points with a finished leaderboard row on their dataset (their fold's, with ``--folds``)."""
    datasets = RunDatasets.coerce(datasets)
    done = {
        (record.config_hash, record.fingerprint)
        for fold in datasets.by_fold.values()
        for record in leaderboard.runs(status="finished", fingerprint=fold.fingerprint)
    }
    return {
        index
        for index, point in enumerate(points)
        if (point.config_hash(), datasets.dataset(point).fingerprint) in done
    }


class GridWorker:
    """Runs the points of one grid that no other worker has taken, until none is left.

    ``callbacks`` makes fresh Lightning callbacks (a progress bar) for each run;
    ``on_event`` is told about every point this worker touches.
    """

    def __init__(
        self,
        study: optuna.Study,
        points: Sequence[RunConfig],
        datasets: SplitDataset | RunDatasets,
        leaderboard: Leaderboard,
        *,
        callbacks: Callable[[], Sequence[L.Callback]] = tuple,
        on_event: Callable[[GridEvent], None] = lambda event: None,
    ) -> None:
        self.study = study
        self.points = [point.with_updates(study=study.study_name) for point in points]
        self.datasets = RunDatasets.coerce(datasets)
        self.leaderboard = leaderboard
        self.callbacks = callbacks
        self.on_event = on_event
        self.outcome = GridOutcome()

    def run(self) -> GridOutcome:
        """Claim and run points until the grid has nothing left for this worker."""
        fail_trials_of_dead_runs(self.study, self.leaderboard)  # so that their points count as settled: retried
        settled = {trial.number for trial in self.study.get_trials(deepcopy=False) if trial.state.is_finished()}
        n_points = len(self.points)
        while True:
            fail_stale_trials(self.study)
            trials = coordination.views(self.study.get_trials(deepcopy=False), n_points)
            finished = finished_points(self.points, self.leaderboard, self.datasets)
            step = coordination.next_step(trials, n_points, finished, settled)
            if step.action is Action.STOP:
                self.outcome.running_elsewhere = coordination.running_elsewhere(trials, finished)
                return self.outcome
            if step.action is Action.ENQUEUE:
                self.study.enqueue_trial({coordination.POINT: step.point})
            try:
                self.study.optimize(self._objective, n_trials=1, catch=(GridRunFailed,))
            except optuna.exceptions.UpdateFinishedTrialError:
                # Our heartbeat was so late that another worker failed our trial as dead (and enqueued a
                # retry, which finds this run finished in the leaderboard); carry on.
                continue

    def _objective(self, trial: optuna.Trial) -> float:
        name_worker_process(trial)
        trials = coordination.views(self.study.get_trials(deepcopy=False), len(self.points))
        point = next(t.point for t in trials if t.number == trial.number)
        if point is None:
            return self._skip(trial, None, "surplus ticket: every point was already handed out")
        holder = coordination.holder_of(trial.number, point, trials)
        if holder is not None:
            return self._skip(trial, point, f"trial {holder} holds this point")
        config = self.points[point].with_updates(trial=trial.number)
        trial.set_user_attr(coordination.POINT, point)
        trial.set_user_attr("config_hash", config.config_hash())
        trial.set_user_attr("encoder", config.encoder)
        trial.set_user_attr("head", config.head)
        trial.set_user_attr("seed", config.seed)
        if config.data.fold is not None:
            trial.set_user_attr("fold", config.data.fold)
        dataset = self.datasets.dataset(config)
        existing = self.leaderboard.find(config.config_hash(), dataset.fingerprint)
        if existing is not None and existing.status == "finished":
            self.outcome.existing.append(point)
            self.on_event(GridEvent("existing", point, config, existing))
            return self._value(trial, existing)
        self.on_event(GridEvent("started", point, config))
        try:
            record = run_experiment(config, self.leaderboard, dataset=dataset, callbacks=list(self.callbacks()))
        except RunConflictError as error:
            # The leaderboard says another process runs it (one this worker cannot see die): leave it to
            # that process, and count this trial as an attempt so that this worker does not retry it.
            self.outcome.skipped.append(point)
            self.on_event(GridEvent("skipped", point, config, reason=str(error)))
            raise GridRunFailed(str(error)) from None
        if record.status != "finished":
            self.outcome.failed.append(point)
            self.on_event(GridEvent("failed", point, config, record))
            trial.set_user_attr("run_id", record.run_id)
            trial.set_user_attr("error", record.error or record.status)
            raise GridRunFailed(record.error or record.status)
        self.outcome.ran.append(point)
        self.on_event(GridEvent("finished", point, config, record))
        return self._value(trial, record)

    def _value(self, trial: optuna.Trial, record: RunRecord) -> float:
        """Validation macro-F1 of the run (the grid study's objective); test macro-F1 as a user attribute."""
        trial.set_user_attr("run_id", record.run_id)
        if record.macro_f1 is not None:
            trial.set_user_attr("test_macro_f1", record.macro_f1)
        if record.val_macro_f1 is None:
            raise GridRunFailed(f"run {record.run_id} has no validation macro-F1")
        return record.val_macro_f1

    def _skip(self, trial: optuna.Trial, point: int | None, reason: str) -> float:
        trial.set_user_attr(coordination.SKIPPED, reason)
        if point is not None:
            self.outcome.skipped.append(point)
            self.on_event(GridEvent("skipped", point, self.points[point], reason=reason))
        raise optuna.TrialPruned(reason)
