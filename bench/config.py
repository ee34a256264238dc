"""One typed, hashable configuration per run."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from bench.data.folds import check_fold_options
from bench.data.types import DataOptions
from bench.errors import UsageError
from bench.runtime.devices import DEVICE_HELP, is_device_name

# Fields that say where or how fast a run happens, not what it computes. ``encoder_path`` is
# where the weights lie; what they are is ``weights`` (see bench/weights.py). ``devices`` splits
# the same global batch over data-parallel ranks. The caches and
# torch.compile give the same numbers up to floating-point noise (the frozen-encoder path
# rounds features to float16 with or without the feature cache); ``bucketing`` is hashed:
# it changes which examples share a batch, hence the training trajectory.
_NOT_IN_HASH = frozenset(
    {
        "results_dir", "encoder_path", "device", "devices", "num_workers", "threads", "oom_retry", "study", "trial",
        "token_cache", "feature_cache", "compile", "loggers", "logger_dir", "mlflow_uri",
    }
)

# Fields added after runs were recorded, with the value every earlier run had: left out of the hash at
# that value, so the runs recorded before them keep their identity.
_HASHED_UNLESS = {"layer_lr_decay": 1.0, "reinit_layers": 0}

# Data fields of the fold scheme: described by the dataset fingerprint, not the config hash.
_FOLD_FIELDS = frozenset({"folds", "fold", "folds_test"})

# The fields the weights identity is computed from.
_WEIGHT_FIELDS = ("encoder", "encoder_path", "random_init")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training run.

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

    encoder: str = "scratch"
    head: str = "linear"
    head_params: tuple[tuple[str, Any], ...] = ()
    data: DataOptions = field(default_factory=DataOptions)
    encoder_path: str | None = None
    random_init: bool = False
    freeze_encoder: bool = False
    trust_remote_code: bool = False
    encoder_config: tuple[tuple[str, Any], ...] = ()
    epochs: int = 3
    train_limit: int | None = None
    max_len: int = 128
    batch_size: int = 32
    lr: float | None = None
    head_lr: float | None = None
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    # Fine-tuning a pretrained encoder (bench.training.finetuning): encoder layer i from the top trains at
    # lr × layer_lr_decay**i (embeddings lowest); the top reinit_layers layers start from random weights.
    layer_lr_decay: float = 1.0
    reinit_layers: int = 0
    grad_clip: float = 1.0
    class_weighted: bool = False
    per_label_threshold: bool = False
    patience: int | None = None
    seed: int = 1
    precision: str = "auto"
    device: str = "auto"
    devices: int = 1
    num_workers: int | None = None
    threads: int | None = None
    bucketing: bool = True
    token_cache: bool = True
    feature_cache: bool = True
    compile: bool = False
    oom_retry: bool = False
    results_dir: str = "results"
    study: str | None = None
    trial: int | None = None
    weights: str | None = None
    # Experiment trackers (bench.tracking): where a run is also reported, not what it computes.
    loggers: tuple[str, ...] = ()
    logger_dir: str | None = None
    mlflow_uri: str | None = None

    def __post_init__(self) -> None:
        if self.lr is None:
            from encoders import default_learning_rate

            object.__setattr__(self, "lr", default_learning_rate(self.encoder, random_init=self.random_init))
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
        values["data"] = {key: value for key, value in values["data"].items() if key not in _FOLD_FIELDS}
        return {
            key: values[key]
            for key in sorted(values)
            if key not in _NOT_IN_HASH and not (key in _HASHED_UNLESS and values[key] == _HASHED_UNLESS[key])
        }

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
    """Raise :class:`UsageError` naming the first invalid hyperparameter."""
    checks: list[tuple[bool, str]] = [
        (config.epochs >= 1, f"--epochs must be at least 1, got {config.epochs}"),
        (config.batch_size >= 1, f"--batch-size must be at least 1, got {config.batch_size}"),
        (config.max_len >= 8, f"--max-len must be at least 8, got {config.max_len}"),
        (_positive(config.lr), f"--lr must be a positive number, got {config.lr}"),
        (config.head_lr is None or _positive(config.head_lr), f"--head-lr must be a positive number, got {config.head_lr}"),
        (config.weight_decay >= 0, f"--weight-decay must be >= 0, got {config.weight_decay}"),
        (0 <= config.warmup_ratio < 1, f"--warmup-ratio must be in [0, 1), got {config.warmup_ratio}"),
        (_fraction(config.layer_lr_decay), f"--layer-lr-decay must be in (0, 1], got {config.layer_lr_decay}"),
        (config.reinit_layers >= 0, f"--reinit-layers must be >= 0, got {config.reinit_layers}"),
        (config.reinit_layers == 0 or not config.freeze_encoder, "--reinit-layers needs a trained encoder, not --freeze-encoder (re-initialised layers would stay random)"),
        (config.grad_clip >= 0, f"--grad-clip must be >= 0, got {config.grad_clip}"),
        (config.train_limit is None or config.train_limit >= 1, f"--train-limit must be at least 1, got {config.train_limit}"),
        (config.patience is None or config.patience >= 1, f"--patience must be at least 1, got {config.patience}"),
        (config.num_workers is None or config.num_workers >= 0, f"--num-workers must be >= 0, got {config.num_workers}"),
        (config.threads is None or config.threads >= 1, f"--threads must be >= 1, got {config.threads}"),
        (config.precision in {"auto", "32", "bf16-mixed", "16-mixed"}, f"--precision must be auto, 32, bf16-mixed or 16-mixed, got {config.precision!r}"),
        (is_device_name(config.device), f"--device must be {DEVICE_HELP}, got {config.device!r}"),
        (config.devices >= 1, f"--devices must be at least 1, got {config.devices}"),
        (config.devices < 1 or config.batch_size % config.devices == 0, f"--batch-size {config.batch_size} is not divisible by --devices {config.devices} (the batch is global, split evenly over the devices)"),
        (config.devices == 1 or ":" not in config.device, f"--device {config.device} names one GPU; with --devices {config.devices} choose GPUs with CUDA_VISIBLE_DEVICES or --gpus"),
    ]
    for ok, message in checks:
        if not ok:
            raise UsageError(message)
    check_fold_options(config.data)
    dropout = dict(config.head_params).get("dropout")
    if dropout is not None and not 0 <= float(dropout) < 1:
        raise UsageError(f"--dropout must be in [0, 1), got {dropout}")


def _fraction(value: float) -> bool:
    return math.isfinite(value) and 0 < value <= 1


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0
