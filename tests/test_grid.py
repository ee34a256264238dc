"""Grid expansion, the claim protocol of grid workers, and the per-GPU launcher — no training, no GPU."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from bench.cli.options import head_param_values
from bench.cli.parallel import number_list
from bench.config import RunConfig
from bench.data.types import DataReport, SplitDataset
from bench.errors import UsageError
from bench.leaderboard.records import RunMetrics
from bench.leaderboard.store import Leaderboard, RunConflictError, run_key, sqlite_url
from bench.tuning import coordination, grid_worker
from bench.tuning.coordination import Action, Step, TrialView
from bench.tuning.grid import GridAxes, expand_grid, grid_study_name, varying_fields
from bench.tuning.grid_worker import GridWorker, open_grid_study
from bench.tuning.storage import WORKER_PROCESS, open_storage
from bench.tuning.workers import WorkerSpec, parse_gpus, run_workers, worker_specs

W, R, C, F, P = TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED


# ------------------------------------------------------------------------------------------- expansion


def test_grid_is_the_cross_product_in_an_order_independent_of_the_command_line():
    base = RunConfig(epochs=1)
    axes = GridAxes(
        encoders=("scratch",),
        heads=("mlp", "linear"),
        seeds=(2, 1),
        hyperparameters={"lr": (3e-5, 1e-5)},
        head_params={"hidden_dim": (256, 128)},
    )
    points = expand_grid(base, axes)
    # linear has no hidden_dim: 2 seeds × 2 lr × (1 linear + 2 mlp widths) = 12 points.
    assert len(points) == 12
    assert len({point.config_hash() for point in points}) == 12
    assert {point.head_kwargs.get("hidden_dim") for point in points if point.head == "linear"} == {None}
    assert [point.seed for point in points] == [1] * 6 + [2] * 6
    assert all(point.epochs == 1 for point in points)
    reordered = GridAxes(
        encoders=("scratch",),
        heads=("linear", "mlp"),
        seeds=(1, 2),
        hyperparameters={"lr": (1e-5, 3e-5)},
        head_params={"hidden_dim": (128, 256)},
    )
    assert [p.config_hash() for p in expand_grid(base, reordered)] == [p.config_hash() for p in points]
    assert grid_study_name(points, "fp") == grid_study_name(expand_grid(base, reordered), "fp")
    assert grid_study_name(points, "fp") != grid_study_name(points[:-1], "fp")
    assert varying_fields(points) == ["lr", "head.hidden_dim"]


@pytest.mark.parametrize(
    ("axes", "needle"),
    [
        (GridAxes(("scratch",), ("linear",), ()), "--seeds needs at least one value"),
        (GridAxes(("nope",), ("linear",), (1,)), "unknown encoder 'nope'"),
        (GridAxes(("scratch",), ("transformer",), (1,)), "unknown head 'transformer'"),
        (GridAxes(("scratch",), ("linear",), (1,), head_params={"lstm_hidden": (64,)}), "none of the heads linear"),
        (GridAxes(("scratch",), ("mlp",), (1,), head_params={"hidden_dim": ("wide",)}), "hidden_dim"),
        (GridAxes(("scratch",), ("linear",), (1,), hyperparameters={"lr": (-1.0,)}), "--lr must be a positive number"),
        (GridAxes(("scratch",), ("linear",), (1,), encoder_paths={"kobert": "/x"}), "not in --encoders"),
    ],
)
def test_bad_grids_are_one_line_usage_errors(axes, needle):
    with pytest.raises(UsageError, match=needle.replace("(", r"\(")) as error:
        expand_grid(RunConfig(), axes)
    assert "\n" not in str(error.value)


def test_list_options_parse_numbers_json_and_values_with_commas():
    assert number_list("1e-5, 3e-5", "--lr", float) == (1e-5, 3e-5)
    assert number_list(None, "--lr", float) is None
    with pytest.raises(UsageError, match="--seeds: 'x' is not an integer"):
        number_list("1,x", "--seeds", int)
    with pytest.raises(UsageError, match="comma-separated list"):
        number_list("1,,2", "--seeds", int)
    parsed = head_param_values(
        ["hidden_dim=128,256", 'kernel_sizes=["2,3","3,4,5"]', "head.activation=gelu"], lists=True
    )
    assert parsed == {"hidden_dim": (128, 256), "kernel_sizes": ("2,3", "3,4,5"), "activation": ("gelu",)}
    with pytest.raises(UsageError, match="KEY=V1,V2"):
        head_param_values(["hidden_dim"], lists=True)
    # One parser: bench run's single values keep commas inside a value, and head.NAME is NAME.
    assert head_param_values(["head.kernel_sizes=2,3", "dropout=0.2"]) == {"kernel_sizes": "2,3", "dropout": 0.2}


# ------------------------------------------------------------------------------------------ claiming


def views(*specs: tuple) -> list[TrialView]:
    """TrialViews from (number, state, point[, skipped]) tuples."""
    return [TrialView(number, state, point, *rest) for number, state, point, *rest in specs]


def test_tickets_then_waiting_trials_are_claimed_first():
    assert coordination.next_step([], 3, set(), set()) == Step(Action.CLAIM)
    assert coordination.next_step(views((0, R, 0), (1, C, 1)), 3, {1}, set()) == Step(Action.CLAIM)
    waiting = views((0, C, 0), (1, F, 1), (2, C, 2), (3, W, 1))
    assert coordination.next_step(waiting, 3, {0, 2}, set()) == Step(Action.CLAIM)


def test_points_that_failed_before_the_worker_started_are_retried_not_those_failing_meanwhile():
    trials = views((0, C, 0), (1, F, 1), (2, F, 2))
    # Trial 1 ended before this worker started; trial 2 failed while it ran.
    assert coordination.next_step(trials, 3, {0}, {0, 1}) == Step(Action.ENQUEUE, 1)
    assert coordination.next_step(trials + views((3, C, 1)), 3, {0, 1}, {0, 1}) == Step(Action.STOP)


def test_a_deleted_leaderboard_row_makes_a_completed_point_run_again():
    trials = views((0, C, 0), (1, C, 1))
    assert coordination.next_step(trials, 2, {0}, {0, 1}) == Step(Action.ENQUEUE, 1)
    assert coordination.next_step(trials, 2, {0, 1}, {0, 1}) == Step(Action.STOP)


def test_live_points_are_left_to_their_worker_and_skipped_trials_do_not_count():
    trials = views((0, R, 0), (1, C, 1), (2, P, 1, True))
    assert coordination.next_step(trials, 2, {1}, {1, 2}) == Step(Action.STOP)
    assert coordination.running_elsewhere(trials, {1}) == {0}
    only_skipped = views((0, C, 0), (1, P, 1, True))
    assert coordination.next_step(only_skipped, 2, {0}, {0, 1}) == Step(Action.ENQUEUE, 1)


def test_the_lowest_numbered_live_trial_holds_a_point():
    trials = views((0, C, 0), (1, F, 1), (3, W, 1), (4, R, 1), (5, R, 1))
    assert coordination.holder_of(5, 1, trials) == 3
    assert coordination.holder_of(3, 1, trials) is None
    assert coordination.holder_of(4, 0, trials) is None
    skipped = views((3, P, 1, True), (4, R, 1))
    assert coordination.holder_of(4, 1, skipped) is None


def test_point_of_tickets_enqueued_trials_and_retries():
    def frozen(number: int, system_attrs: dict) -> optuna.trial.FrozenTrial:
        trial = optuna.trial.create_trial(state=W, system_attrs=system_attrs)
        trial.number = number
        return trial

    assert coordination.point_of(frozen(2, {}), 3) == 2
    assert coordination.point_of(frozen(7, {}), 3) is None
    assert coordination.point_of(frozen(7, {"fixed_params": {"point": 1}}), 3) == 1
    assert coordination.point_of(frozen(8, {"failed_trial": 2, "retry_history": [2, 5]}), 3) == 2
    assert coordination.point_of(frozen(9, {"failed_trial": 4}), 3) is None


# ------------------------------------------------------------------------- workers sharing a study


@pytest.fixture
def fake_training(monkeypatch):
    """Replace training with a short sleep that records a finished run; returns the list of runs started."""
    started: list[str] = []
    lock = threading.Lock()

    def run_experiment(config, leaderboard, *, dataset, callbacks=(), rerun=False):
        with lock:
            started.append(config.config_hash())
        run_id = leaderboard.start_run(config, dataset.fingerprint, dataset.name, {})
        time.sleep(0.05)
        leaderboard.finish_run(run_id, RunMetrics(0.5, 0.5, 0.5, [], {}, []))
        return leaderboard.get_run(run_id)

    monkeypatch.setattr(grid_worker, "run_experiment", run_experiment)
    return started


def tiny_dataset() -> SplitDataset:
    return SplitDataset("stub", ("a", "b"), [], [], [], "f" * 16, DataReport())


def test_concurrent_workers_run_every_point_exactly_once(tmp_path: Path, fake_training):
    points = [RunConfig(seed=seed, results_dir=str(tmp_path)) for seed in range(12)]
    dataset = tiny_dataset()
    url = sqlite_url(tmp_path / "optuna.db")
    board_url = sqlite_url(tmp_path / "leaderboard.db")
    name = grid_study_name(points, dataset.fingerprint)
    outcomes = []

    def worker() -> None:
        study = open_grid_study(open_storage(url, retry_dead_workers=True), name, points, dataset)
        outcomes.append(GridWorker(study, points, dataset, Leaderboard(board_url)).run())

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 3, "a worker raised"
    assert sorted(fake_training) == sorted(point.config_hash() for point in points)
    assert sorted(index for outcome in outcomes for index in outcome.ran) == list(range(12))
    board = Leaderboard(board_url)
    assert {record.seed for record in board.runs(status="finished")} == set(range(12))
    assert all(record.study == name for record in board.runs())


def test_a_dead_workers_point_is_picked_up_and_run_once(tmp_path: Path, fake_training):
    points = [RunConfig(seed=seed, results_dir=str(tmp_path)) for seed in range(3)]
    dataset = tiny_dataset()
    url = sqlite_url(tmp_path / "optuna.db")
    name = grid_study_name(points, dataset.fingerprint)
    storage = open_storage(url, retry_dead_workers=True, heartbeat_s=1, grace_s=1)
    study = open_grid_study(storage, name, points, dataset)
    with pytest.warns(UserWarning, match="Heartbeat"):
        dead = study.ask()  # ticket 0, claimed by a worker that then dies without finishing
    storage.record_heartbeat(dead._trial_id)
    time.sleep(2.2)
    board = Leaderboard(sqlite_url(tmp_path / "leaderboard.db"))
    outcome = GridWorker(study, points, dataset, board).run()
    assert sorted(outcome.ran) == [0, 1, 2]
    assert sorted(fake_training) == sorted(point.config_hash() for point in points)
    states = {trial.number: trial.state for trial in study.get_trials()}
    assert states[0] == F and Counter(states.values())[C] == 3


def test_a_point_whose_worker_died_before_its_run_started_is_retried_at_once(tmp_path: Path, fake_training):
    points = [RunConfig(seed=seed, results_dir=str(tmp_path)) for seed in range(2)]
    dataset = tiny_dataset()
    storage = open_storage(sqlite_url(tmp_path / "optuna.db"), retry_dead_workers=True)
    study = open_grid_study(storage, grid_study_name(points, dataset.fingerprint), points, dataset)
    ended = subprocess.Popen(["true"])  # noqa: S607 - a process that has ended: its pid names no live process
    ended.wait()
    with pytest.warns(UserWarning, match="Heartbeat"):
        dead = study.ask()  # ticket 0: claimed, named, then its worker was killed before it had a leaderboard row
        alive = study.ask()  # ticket 1: held by a live worker (this process)
    dead.set_user_attr(WORKER_PROCESS, [socket.gethostname(), ended.pid])
    alive.set_user_attr(WORKER_PROCESS, [socket.gethostname(), os.getpid()])
    time.sleep(0.2)
    board = Leaderboard(sqlite_url(tmp_path / "leaderboard.db"))
    outcome = GridWorker(study, points, dataset, board).run()
    assert outcome.ran == [0] and outcome.running_elsewhere == {1}
    states = {trial.number: trial.state for trial in study.get_trials()}
    assert states[0] == F and states[1] == R


def test_finished_points_in_the_leaderboard_are_not_run_again(tmp_path: Path, fake_training):
    points = [RunConfig(seed=seed, results_dir=str(tmp_path)) for seed in range(3)]
    dataset = tiny_dataset()
    board = Leaderboard(sqlite_url(tmp_path / "leaderboard.db"))
    run_id = board.start_run(points[1], dataset.fingerprint, dataset.name, {})
    board.finish_run(run_id, RunMetrics(0.7, 0.7, 0.7, [], {}, []))
    study = open_grid_study(open_storage(sqlite_url(tmp_path / "optuna.db")), "grid-x", points, dataset)
    outcome = GridWorker(study, points, dataset, board).run()
    assert sorted(outcome.ran) == [0, 2] and outcome.existing == [1]
    assert run_key(points[1].config_hash(), dataset.fingerprint) == run_id
    assert points[1].config_hash() not in fake_training


def test_a_point_the_leaderboard_says_runs_elsewhere_is_left_alone(tmp_path: Path, monkeypatch):
    points = [RunConfig(seed=seed, results_dir=str(tmp_path)) for seed in range(3)]
    dataset = tiny_dataset()
    attempts: list[int] = []

    def run_experiment(config, leaderboard, *, dataset, callbacks=(), rerun=False):
        attempts.append(config.seed)
        if config.seed == 1:
            raise RunConflictError("run abc is already running in process 7 on another-host")
        run_id = leaderboard.start_run(config, dataset.fingerprint, dataset.name, {})
        leaderboard.finish_run(run_id, RunMetrics(0.5, 0.5, 0.5, [], {}, []))
        return leaderboard.get_run(run_id)

    monkeypatch.setattr(grid_worker, "run_experiment", run_experiment)
    storage = open_storage(sqlite_url(tmp_path / "optuna.db"), retry_dead_workers=True)
    board = Leaderboard(sqlite_url(tmp_path / "leaderboard.db"))
    study = open_grid_study(storage, "grid-conflict", points, dataset)
    outcome = GridWorker(study, points, dataset, board).run()
    assert (sorted(outcome.ran), outcome.skipped, sorted(attempts)) == ([0, 2], [1], [0, 1, 2])
    again = GridWorker(study, points, dataset, board).run()
    assert again.skipped == [1] and sorted(attempts) == [0, 1, 1, 2], "a later worker tries it once more"


# ------------------------------------------------------------------------------------ one per GPU


class FakeProcess:
    """A worker that exits with ``code`` after ``polls`` polls."""

    def __init__(self, polls: int, code: int) -> None:
        self.polls, self.code = polls, code
        self.signals: list[int] = []

    def poll(self) -> int | None:
        self.polls -= 1
        return self.code if self.polls < 0 else None

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)

    def wait(self, timeout: float | None = None) -> int:
        return self.code


def test_one_worker_per_gpu_sees_only_its_gpu(tmp_path: Path):
    specs = worker_specs(parse_gpus("0,2"), ["grid", "--seeds", "1,2"], tmp_path, {"PATH": "/bin"}, pass_index=True)
    assert [spec.env["CUDA_VISIBLE_DEVICES"] for spec in specs] == ["0", "2"]
    assert [spec.args[-2:] for spec in specs] == [("--worker-index", "0"), ("--worker-index", "1")]
    assert specs[0].command[1:3] == ["-c", "from bench.cli import main; main()"]
    assert specs[0].command[3:6] == ["grid", "--seeds", "1,2"]
    assert specs[0].env["PATH"] == "/bin" and specs[0].log_path.parent == tmp_path
    plain = worker_specs(["1"], ["grid"], tmp_path, {}, pass_index=False)
    assert plain[0].args == ("grid",)
    for bad in ("0,x", "1,1"):
        with pytest.raises(UsageError, match="--gpus"):
            parse_gpus(bad)


def test_the_scheduler_waits_for_every_worker_and_returns_their_exit_codes(tmp_path: Path):
    specs = worker_specs(["0", "1"], ["grid"], tmp_path, {}, pass_index=False)
    processes = {"0": FakeProcess(1, 0), "1": FakeProcess(3, 1)}
    polled: list[list[int | None]] = []
    codes = run_workers(specs, lambda spec: processes[spec.gpu], on_poll=polled.append, sleep=lambda s: None)
    assert codes == [0, 1]
    assert polled[0] == [None, None] and polled[-1] == [0, 1]


def test_ctrl_c_is_passed_on_to_the_workers(tmp_path: Path):
    specs = worker_specs(["0"], ["grid"], tmp_path, {}, pass_index=False)
    process = FakeProcess(10, 130)

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_workers(specs, lambda spec: process, sleep=interrupt)
    assert process.signals == [2]


def test_a_worker_repeats_exactly_the_options_given(monkeypatch, tmp_path: Path):
    from bench.cli import grid as grid_module
    from bench.cli import parallel
    from bench.cli.app import main

    launched: list[list[WorkerSpec]] = []

    def launch(specs, on_poll):
        launched.append(list(specs))
        return [0] * len(specs)

    monkeypatch.setattr(parallel, "run_workers", launch)
    monkeypatch.setattr(grid_module, "print_grid_summary", lambda *args: None)
    results = str(tmp_path / "results")
    main(
        [
            "grid",
            "--heads",
            "linear",
            "--seeds",
            "1,2",
            "--lr",
            "1e-4",
            "--dedupe",
            "--encoder-config",
            "hidden_size=32",
            "--encoder-config",
            "num_hidden_layers=1",
            "--gpus",
            "0,1",
            "--threads",
            "3",
            "--no-progress",
            "--results",
            results,
        ]
    )
    (specs,) = launched
    assert [spec.gpu for spec in specs] == ["0", "1"]
    assert all(spec.args == specs[0].args for spec in specs)
    assert list(specs[0].args) == [
        "grid",
        "--heads",
        "linear",
        "--seeds",
        "1,2",
        "--lr",
        "1e-4",
        "--dedupe",
        "--encoder-config",
        "hidden_size=32",
        "--encoder-config",
        "num_hidden_layers=1",
        "--results",
        results,
        "--no-progress",
        "--threads",
        "3",
    ]


def test_local_workers_share_the_cores_unless_threads_are_given(monkeypatch, tmp_path: Path):
    from bench.cli import options as opt
    from bench.cli.parallel import LocalWorkers

    monkeypatch.setattr(opt.os, "sched_getaffinity", lambda pid: set(range(8)))
    values = {"gpus": None, "workers": None, "threads": None}
    one = LocalWorkers(values, devices=1)
    assert one.threads == 8 and one.slots == [None] and not one.spawn
    two = LocalWorkers({**values, "workers": 2}, devices=1)
    assert two.slots == [None, None] and two.threads == 4 and two.spawn
    assert LocalWorkers({**values, "gpus": "0,1,2,3"}, devices=2).threads == 2  # 2 workers x 2 DDP ranks
    assert LocalWorkers({**values, "workers": 16}, devices=1).threads == 1
    assert LocalWorkers({**values, "workers": 2, "threads": 3}, devices=1).threads == 3
    with pytest.raises(UsageError, match="--workers 3 with --gpus 0,1"):
        LocalWorkers({**values, "workers": 3, "gpus": "0,1"}, devices=1)
    specs = worker_specs([None, None], ["grid"], tmp_path, {"CUDA_VISIBLE_DEVICES": "5"}, pass_index=False)
    assert [spec.env["CUDA_VISIBLE_DEVICES"] for spec in specs] == ["5", "5"]  # this machine's devices, as they are
    assert [spec.log_path.name for spec in specs] == ["worker-0.log", "worker-1.log"]


def test_the_study_storage_defaults_beside_the_leaderboard(tmp_path: Path):
    from bench.tuning.storage import study_storage_url

    server = "postgresql://bench@db/bench"
    assert study_storage_url(None, None, tmp_path) == f"sqlite:///{tmp_path.resolve() / 'optuna.db'}"
    assert study_storage_url(None, server, tmp_path) == server  # one database holds both
    board = tmp_path / "shared" / "board.db"
    assert (
        study_storage_url(None, f"sqlite:///{board}", tmp_path) == f"sqlite:///{board.parent.resolve() / 'optuna.db'}"
    )
    assert study_storage_url("sqlite:///elsewhere.db", server, tmp_path) == "sqlite:///elsewhere.db"
    with pytest.raises(UsageError, match="invalid --study-storage URL"):
        study_storage_url("::", None, tmp_path)
