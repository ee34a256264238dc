"""One typed, hashable configuration per run."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from bench.data.folds import check_fold_options
from bench.data.types import DataOptions
from bench.errors import UsageError
from bench.machine.devices import DEVICE_HELP, is_device_name
from bench.params import Param
from bench.settings import (
    MODEL,
    SPEED,
    STORAGE,
    TRACKING,
    Setting,
    at_least,
    declaration,
    in_unit_interval,
    path_text,
    positive,
    setting,
)

# The fields the weights identity is computed from.
_WEIGHT_FIELDS = ("encoder", "encoder_path", "random_init")

# Settings marked ``identity=False`` say where or how fast a run happens, not what it computes.
# ``encoder_path`` is where the weights lie; what they are is ``weights`` (see bench/weights.py).
# ``devices`` splits the same global batch over data-parallel ranks. The caches and torch.compile
# give the same numbers up to floating-point noise (the frozen-encoder path rounds features to
# float16 with or without the feature cache); ``bucketing`` is hashed: it changes which examples
# share a batch, hence the training trajectory.
_PRECISIONS = ("auto", "32", "bf16-mixed", "16-mixed")


def _in_identity(
    values: dict[str, Any], left_out: frozenset[str], omitted_at_default: dict[str, Any]
) -> dict[str, Any]:
    """The entries of ``values`` that are part of a run's identity (those declared ``identity=False`` left out,
    and those declared ``identity_at_default=False`` while they hold their default)."""
    return {
        key: value
        for key, value in values.items()
        if key not in left_out and not (key in omitted_at_default and value == omitted_at_default[key])
    }


def _pairs(values: list[str] | None) -> tuple[tuple[str, Any], ...]:
    return sort_params(parse_pairs(values, "--encoder-config"))


def _trackers(names: list[str] | None) -> tuple[str, ...]:
    """The ``--logger`` values, each once (the command checks them: :func:`bench.cli.options.run_config`)."""
    return tuple(dict.fromkeys(names or ()))


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training run; each field is declared once (:mod:`bench.settings`).

    ``head_params`` holds the head's own hyperparameters (``dropout`` among
    them) as sorted ``(name, value)`` pairs so the config stays hashable; the
    identity and the stored JSON hold them with every default filled in, so a
    default spelled out or left out is the same configuration.
    ``weights`` left at ``None`` becomes the weights identity of ``encoder``,
    ``encoder_path`` and ``random_init`` (:func:`bench.weights.weights_identity`);
    it replaces the machine-local ``encoder_path`` in the hash.
    ``lr`` left at ``None`` becomes the encoder's default learning rate for its
    weights (pretrained, ``random_init`` or from scratch), and is recorded as such;
    ``num_workers`` at ``None`` is chosen per device (none on CPU, a few on a GPU);
    ``threads`` at ``None`` leaves torch's CPU thread count as it is.
    ``devices`` > 1 trains with DDP over that many devices; ``batch_size`` stays the
    global batch, split evenly over them.
    """

    encoder: str = setting(
        "scratch", "--encoder", "-e", panel=MODEL, help="Encoder name or hf:<model-id> (`bench encoders` lists them)."
    )
    head: str = setting(
        "linear", "--head", "-h", panel=MODEL, help="Head name (`bench heads` lists them with their hyperparameters)."
    )
    head_params: tuple[tuple[str, Any], ...] = setting(
        (), help="The head's hyperparameters, set with --head-param head.NAME=VALUE (or NAME=VALUE)."
    )
    data: DataOptions = setting(default_factory=DataOptions, help="The data options (bench.data.types.DataOptions).")  # noqa: RUF009 (a dataclasses.field)
    encoder_path: str | None = setting(
        None,
        "--encoder-path",
        panel=MODEL,
        identity=False,
        cli_type=Path | None,
        convert=path_text,
        help="Local HF-style folder instead of the hub.",
    )
    random_init: bool = setting(
        False, "--random-init", panel=MODEL, help="Random weights from the config (tokenizer still real)."
    )
    freeze_encoder: bool = setting(False, "--freeze-encoder", panel=MODEL, help="Train the head only.")
    trust_remote_code: bool = setting(
        False, "--trust-remote-code", panel=MODEL, help="Allow hub code for hf: encoders (off by default)."
    )
    encoder_config: tuple[tuple[str, Any], ...] = setting(
        (),
        "--encoder-config",
        panel=MODEL,
        cli_type=list[str] | None,
        convert=_pairs,
        help="KEY=VALUE override of the encoder's config (repeatable).",
    )
    epochs: int = setting(
        3,
        "--epochs",
        help="Training epochs.",
        grid=True,
        search=Param.integer(2, 5),
        search_scratch=Param.integer(4, 12),
        check=at_least(1),
        requirement="must be at least 1",
    )
    train_limit: int | None = setting(
        None,
        "--train-limit",
        help="Train on a stratified subset of N examples.",
        check=at_least(1),
        requirement="must be at least 1",
    )
    max_len: int = setting(
        128,
        "--max-len",
        help="Maximum tokens per text.",
        grid=True,
        search=Param.choice(64, 128),
        check=at_least(8),
        requirement="must be at least 8",
    )
    batch_size: int | None = setting(
        None,
        "--batch-size",
        help="Training batch size (default: the encoder's for its weights, 32 unless `bench encoders` says otherwise).",
        grid=True,
        search=Param.choice(16, 32, 64),
        search_scratch=Param.choice(32, 64),
        check=at_least(1),
        requirement="must be at least 1",
    )
    lr: float | None = setting(
        None,
        "--lr",
        grid=True,
        search=Param.real(1e-5, 1e-4, log=True),
        search_scratch=Param.real(1e-4, 2e-3, log=True),
        check=positive,
        requirement="must be a positive number",
        help="Encoder learning rate (default: the encoder's own for its weights: pretrained, --random-init or from "
        "scratch; `bench encoders` lists them).",
    )
    head_lr: float | None = setting(
        None,
        "--head-lr",
        help="Head learning rate (default: --lr; without --lr, the encoder's head rate for its published weights "
        "where it sets one).",
        grid=True,
        search=Param.real(1e-5, 1e-3, log=True),
        search_scratch=Param.real(1e-4, 3e-3, log=True),
        check=positive,
        requirement="must be a positive number",
    )
    weight_decay: float = setting(
        0.01,
        "--weight-decay",
        help="AdamW weight decay (not on biases/norms).",
        grid=True,
        search=Param.real(0.0, 0.1),
        check=at_least(0),
        requirement="must be >= 0",
    )
    warmup_ratio: float = setting(
        0.1,
        "--warmup-ratio",
        help="Share of steps with linear warmup.",
        grid=True,
        search=Param.real(0.0, 0.2),
        check=in_unit_interval,
        requirement="must be in [0, 1)",
    )
    layer_lr_decay: float = setting(
        1.0,
        "--layer-lr-decay",
        identity_at_default=False,
        grid=True,
        check=lambda value: math.isfinite(value) and 0 < value <= 1,
        requirement="must be in (0, 1]",
        help="Layer-wise learning-rate decay: encoder layer i from the top trains at lr × decay^i, the embeddings "
        "lowest (1 = off).",
    )
    reinit_layers: int = setting(
        0,
        "--reinit-layers",
        identity_at_default=False,
        check=at_least(0),
        requirement="must be >= 0",
        help="Re-initialise the top N encoder layers before fine-tuning (0 = off).",
    )
    grad_clip: float = setting(
        1.0, "--grad-clip", help="Gradient norm clipping (0 = off).", check=at_least(0), requirement="must be >= 0"
    )
    class_weighted: bool = setting(
        False, "--class-weighted", help="Inverse-frequency class weights in the loss (multi-label: BCE pos_weight)."
    )
    per_label_threshold: bool = setting(
        False,
        "--per-label-threshold",
        help="Multi-label: tune one decision threshold per label on validation (default: one for all).",
    )
    patience: int | None = setting(
        None,
        "--patience",
        help="Early stopping after N epochs without improvement.",
        check=at_least(1),
        requirement="must be at least 1",
    )
    seed: int = setting(1, "--seed", help="Training seed.")
    precision: str = setting(
        "auto",
        "--precision",
        check=lambda value: value in _PRECISIONS,
        requirement="must be auto, 32, bf16-mixed or 16-mixed",
        help="auto (bf16-mixed on a capable GPU, else 32), 32, bf16-mixed, 16-mixed.",
    )
    device: str = setting(
        "auto",
        "--device",
        identity=False,
        help="auto, cpu or cuda[:N].",
        check=is_device_name,
        requirement=f"must be {DEVICE_HELP}",
    )
    devices: int = setting(
        1,
        "--devices",
        identity=False,
        check=at_least(1),
        requirement="must be at least 1",
        help="Data-parallel devices (DDP) for each run; --batch-size is the global batch, split over them.",
    )
    num_workers: int | None = setting(
        None,
        "--num-workers",
        identity=False,
        check=at_least(0),
        requirement="must be >= 0",
        help="DataLoader worker processes (default: none on CPU, a few on a GPU).",
    )
    threads: int | None = setting(
        None,
        "--threads",
        panel=SPEED,
        identity=False,
        check=at_least(1),
        requirement="must be >= 1",
        help="CPU threads of each training process "
        "(default: the cores available divided by the local worker processes).",
    )
    bucketing: bool = setting(
        True,
        "--bucketing/--no-bucketing",
        panel=SPEED,
        help="Batch texts of similar length "
        "(less padding; changes batch composition, so it is part of the run's identity).",
    )
    token_cache: bool = setting(
        True,
        "--token-cache/--no-token-cache",
        panel=SPEED,
        identity=False,
        help="Reuse token ids cached under <results>/cache/tokens.",
    )
    feature_cache: bool = setting(
        True,
        "--feature-cache/--no-feature-cache",
        panel=SPEED,
        identity=False,
        help="With --freeze-encoder: run the encoder once and train the head from its cached outputs "
        "(<results>/cache/features).",
    )
    compile: bool = setting(
        False,
        "--compile",
        panel=SPEED,
        identity=False,
        help="torch.compile the encoder (pays off on GPUs for long runs).",
    )
    oom_retry: bool = setting(
        False,
        "--oom-retry",
        identity=False,
        help="On GPU out-of-memory, retry with half the batch and twice the gradient accumulation "
        "(same effective batch).",
    )
    results_dir: str = setting(
        "results",
        "--results",
        panel=STORAGE,
        identity=False,
        option="results",
        cli_type=Path,
        convert=str,
        help="Results directory: leaderboard.db, runs, cache, logs.",
    )
    study: str | None = setting(None, identity=False, help="The Optuna study a trial belongs to (set by bench tune).")
    trial: int | None = setting(None, identity=False, help="The trial's number in its study (set by bench tune).")
    weights: str | None = setting(None, help="The weights identity (bench.weights), computed when left out.")
    # Experiment trackers (bench.tracking): where a run is also reported, not what it computes.
    loggers: tuple[str, ...] = setting(
        (),
        "--logger",
        panel=TRACKING,
        identity=False,
        cli_type=list[str] | None,
        convert=_trackers,
        help="Also report each run to tensorboard, mlflow, wandb or csv (repeatable).",
    )
    logger_dir: str | None = setting(
        None,
        "--logger-dir",
        panel=TRACKING,
        identity=False,
        cli_type=Path | None,
        convert=path_text,
        help="Folder for TensorBoard/CSV/W&B files and the default MLflow store (default: <results>/trackers).",
    )
    mlflow_uri: str | None = setting(
        None,
        "--mlflow-uri",
        panel=TRACKING,
        identity=False,
        help="MLflow tracking server or store (default: MLFLOW_TRACKING_URI, else sqlite:///<logger-dir>/mlflow.db).",
    )

    def __post_init__(self) -> None:
        if self.lr is None or self.batch_size is None:  # a recorded run has both: no registry lookup
            from encoders import run_defaults

            defaults = run_defaults(self.encoder, random_init=self.random_init)
            if self.lr is not None:
                defaults.pop("head_lr", None)  # a run that sets --lr trains its head at that rate unless --head-lr
            for name, value in defaults.items():
                if getattr(self, name) is None:
                    object.__setattr__(self, name, value)
        validate(self)
        if self.weights is None:
            from bench.weights import weights_identity

            identity = weights_identity(self.encoder, self.encoder_path, self.random_init, self.results_path / "cache")
            object.__setattr__(self, "weights", identity)

    @property
    def head_kwargs(self) -> dict[str, Any]:
        """``head_params`` as a dict."""
        return dict(self.head_params)

    def canonical_head_params(self) -> tuple[tuple[str, Any], ...]:
        """``head_params`` with the head's defaults filled in and values converted to their types.

        Reference rows (no registered head) and parameters the head no longer accepts
        are kept as given: such a config fails when it is built, not when it is hashed.
        """
        from heads import list_heads, resolve_head_params

        if self.head not in list_heads():
            return self.head_params
        try:
            return sort_params(resolve_head_params(self.head, self.head_kwargs))
        except UsageError:
            return self.head_params

    def identity(self, resolve_defaults: bool = True) -> dict[str, Any]:
        """The fields that determine the result, as plain JSON-able values.

        ``resolve_defaults`` fills in the head's defaults (this loads the head registry); a config
        read back from the leaderboard already holds them, so reading commands pass ``False``.
        The fold scheme (``data.folds``, ``data.fold``, ``data.folds_test``) is left out: the
        folds of one configuration share its hash, and the dataset fingerprint names the fold.
        """
        values = asdict(self)
        head_params = self.canonical_head_params() if resolve_defaults else self.head_params
        values["head_params"] = [list(pair) for pair in head_params]
        values["data"] = _in_identity(values["data"], DATA_NOT_IN_HASH, DATA_OMITTED_AT_DEFAULT)
        return _in_identity(dict(sorted(values.items())), NOT_IN_HASH, OMITTED_AT_DEFAULT)

    def config_hash(self) -> str:
        """SHA-256 (hex, 16 chars) of :meth:`identity` in canonical JSON."""
        canonical = json.dumps(self.identity(), sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    def canonical(self) -> RunConfig:
        """This configuration with the head's defaults filled in (what the leaderboard stores); same hash."""
        return replace(self, head_params=self.canonical_head_params())

    def to_json(self) -> str:
        """All fields as JSON."""
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False, default=str)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        """Inverse of :meth:`to_json`."""
        values = json.loads(text)
        values["data"] = DataOptions(**values["data"])
        for key in ("head_params", "encoder_config"):
            values[key] = tuple((name, value) for name, value in values[key])
        values["loggers"] = tuple(values.get("loggers", ()))
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})

    def with_updates(self, **changes: Any) -> RunConfig:
        """A copy with ``changes`` applied (``head_params`` given as a dict is sorted).

        Changing the encoder, its folder or ``random_init`` recomputes ``weights``.
        """
        for key in ("head_params", "encoder_config"):
            if isinstance(changes.get(key), dict):
                changes[key] = sort_params(changes[key])
        if "weights" not in changes and any(
            key in changes and changes[key] != getattr(self, key) for key in _WEIGHT_FIELDS
        ):
            changes["weights"] = None
        return replace(self, **changes)

    @property
    def results_path(self) -> Path:
        """``results_dir`` as a path."""
        return Path(self.results_dir)


def sort_params(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A dict of hyperparameters as sorted, hashable pairs."""
    return tuple(sorted(params.items()))


def validate(config: RunConfig) -> None:
    """Raise :class:`UsageError` naming the first invalid setting (each field's declared check), then the
    checks that relate two settings."""
    for name, declared in SETTINGS.items():
        problem = declared.problem(getattr(config, name)) if declared is not None else None
        if problem is not None:
            raise UsageError(problem)
    checks: list[tuple[bool, str]] = [
        (
            config.reinit_layers == 0 or not config.freeze_encoder,
            "--reinit-layers needs a trained encoder, not --freeze-encoder (re-initialised layers would stay random)",
        ),
        (
            config.devices < 1 or config.batch_size % config.devices == 0,
            f"--batch-size {config.batch_size} is not divisible by --devices {config.devices} "
            "(the batch is global, split evenly over the devices)",
        ),
        (
            config.devices == 1 or ":" not in config.device,
            f"--device {config.device} names one GPU; with --devices {config.devices} "
            "choose GPUs with CUDA_VISIBLE_DEVICES or --gpus",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise UsageError(message)
    check_fold_options(config.data)
    dropout = dict(config.head_params).get("dropout")
    if dropout is not None and not 0 <= float(dropout) < 1:
        raise UsageError(f"--dropout must be in [0, 1), got {dropout}")


def parse_pairs(pairs: list[str] | None, option: str) -> dict[str, Any]:
    """``["k=v", ...]`` → dict; values parsed as JSON where they are JSON (numbers, lists), else strings."""
    return {key: json_or_text(raw) for key, raw in split_pairs(pairs, option)}


def split_pairs(pairs: list[str] | None, option: str, form: str = "KEY=VALUE") -> list[tuple[str, str]]:
    """``["k=v", ...]`` → ``[("k", "v"), ...]``; :class:`UsageError` naming ``option`` and ``form`` for a pair
    without a key."""
    split = []
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} expects {form}, got {pair!r}")
        split.append((key.strip(), raw))
    return split


def json_or_text(text: str) -> Any:
    """``text`` parsed as JSON where it is JSON (numbers, lists, true/false), else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


# Every field's declaration, in field order.
SETTINGS: dict[str, Setting] = {field.name: declaration(field) for field in fields(RunConfig)}  # type: ignore[misc]
# Fields left out of the run identity (and the config hash). A field without a declaration (which
# tests/test_settings.py refuses) counts as part of the identity.
NOT_IN_HASH = frozenset(name for name, declared in SETTINGS.items() if declared is not None and not declared.identity)
# The data options' declarations (:class:`bench.data.types.DataOptions`), and those outside the run's identity
# (the fold scheme: the folds of one configuration share its hash, the dataset fingerprint names the fold).
DATA_SETTINGS: dict[str, Setting] = {field.name: declaration(field) for field in fields(DataOptions)}  # type: ignore[misc]
DATA_NOT_IN_HASH = frozenset(name for name, declared in DATA_SETTINGS.items() if not declared.identity)
DATA_OMITTED_AT_DEFAULT: dict[str, Any] = {
    field.name: field.default for field in fields(DataOptions) if not DATA_SETTINGS[field.name].identity_at_default
}
# Fields left out of the identity while they hold their default (``identity_at_default=False``), with that default.
OMITTED_AT_DEFAULT: dict[str, Any] = {
    field.name: field.default
    for field in fields(RunConfig)
    if (declared := SETTINGS[field.name]) is not None and not declared.identity_at_default
}
