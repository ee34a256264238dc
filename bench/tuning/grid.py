"""A grid: the cross product of encoders, heads, seeds and hyperparameter values, as RunConfigs."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.config import SETTINGS, RunConfig, sort_params
from bench.errors import UsageError
from encoders import check_encoder_name, list_encoders
from heads import head_class, list_heads, resolve_head_params

# RunConfig fields a grid may list several values for (declared ``grid=True``), with the option that sets them.
GRID_FIELDS: dict[str, str] = {
    name: declared.flag for name, declared in SETTINGS.items() if declared is not None and declared.grid
}


@dataclass(frozen=True)
class GridAxes:
    """The values of every axis of a grid.

    ``hyperparameters`` maps RunConfig fields (see :data:`GRID_FIELDS`) to their
    values; ``head_params`` maps head hyperparameters (``dropout`` among them) to
    theirs. A head hyperparameter applies to the heads that have it.
    ``encoder_paths`` maps an encoder name to a local folder.
    """

    encoders: tuple[str, ...]
    heads: tuple[str, ...]
    seeds: tuple[int, ...]
    hyperparameters: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    head_params: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    encoder_paths: Mapping[str, str] = field(default_factory=dict)


def expand_grid(base: RunConfig, axes: GridAxes) -> list[RunConfig]:
    """Every point of the grid, validated, without duplicates, in a canonical order.

    The order depends only on the set of values of each axis (not on the order they
    were given in), so workers started with the same grid agree on it: seeds
    outermost, then encoders, heads and the hyperparameters, each sorted.
    """
    check_axes(axes)
    hyper_names = sorted(axes.hyperparameters)
    hyper_values = [_sorted_unique(axes.hyperparameters[name]) for name in hyper_names]
    points: dict[str, RunConfig] = {}
    for seed, encoder, head in itertools.product(
        _sorted_unique(axes.seeds), _sorted_unique(axes.encoders), _sorted_unique(axes.heads)
    ):
        own = {name: values for name, values in sorted(axes.head_params.items()) if name in head_class(head).defaults}
        own_names = list(own)
        for hyper in itertools.product(*hyper_values):
            for head_values in itertools.product(*(_sorted_unique(own[name]) for name in own_names)):
                head_params = {**base.head_kwargs, **dict(zip(own_names, head_values))}
                config = base.with_updates(
                    encoder=encoder,
                    head=head,
                    seed=seed,
                    encoder_path=axes.encoder_paths.get(encoder, base.encoder_path),
                    head_params=sort_params(head_params),
                    **dict(zip(hyper_names, hyper)),
                )
                resolve_head_params(head, head_params)
                points.setdefault(config.config_hash(), config)
    return list(points.values())


def check_axes(axes: GridAxes) -> None:
    """Raise :class:`UsageError` for an empty axis, an unknown encoder or head, or an unusable head parameter."""
    for name, values in (("--encoders", axes.encoders), ("--heads", axes.heads), ("--seeds", axes.seeds)):
        if not values:
            raise UsageError(f"{name} needs at least one value")
    for encoder in axes.encoders:
        check_encoder_name(encoder)
    for head in axes.heads:
        head_class(head)
    for name, values in axes.hyperparameters.items():
        if name not in GRID_FIELDS:
            raise UsageError(f"a grid cannot vary {name!r}; it can vary: {', '.join(GRID_FIELDS)}")
        if not values:
            raise UsageError(f"{GRID_FIELDS[name]} needs at least one value")
    for name, values in axes.head_params.items():
        owners = [head for head in axes.heads if name in head_class(head).defaults]
        if not owners:
            raise UsageError(f"--head-param {name}: none of the heads {', '.join(axes.heads)} has this hyperparameter")
        if not values:
            raise UsageError(f"--head-param {name} needs at least one value")
    unknown_paths = sorted(set(axes.encoder_paths) - set(axes.encoders))
    if unknown_paths:
        raise UsageError(f"--encoder-path names encoder {unknown_paths[0]!r}, which is not in --encoders")


def resolve_encoders(names: Sequence[str]) -> tuple[str, ...]:
    """Encoder names with ``all`` expanded to every registered encoder (not patterns: ``hf:<model-id>`` needs an id)."""
    if "all" in names:
        return tuple(entry.name for entry in list_encoders() if entry.pattern_prefix is None)
    return tuple(names)


def resolve_heads(names: Sequence[str]) -> tuple[str, ...]:
    """Head names with ``all`` expanded to every registered head."""
    if "all" in names:
        return tuple(list_heads())
    return tuple(names)


def grid_hash(points: Sequence[RunConfig], fingerprint: str) -> str:
    """12 hex characters naming a grid: its points' config hashes, in order, and the dataset fingerprint."""
    canonical = json.dumps([fingerprint, [point.config_hash() for point in points]])
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def grid_study_name(points: Sequence[RunConfig], fingerprint: str) -> str:
    """The Optuna study that coordinates the workers of a grid."""
    return f"grid-{grid_hash(points, fingerprint)}"


def varying_fields(points: Sequence[RunConfig]) -> list[str]:
    """Names of the hyperparameters (RunConfig fields and ``head.<name>``) that differ between points,
    and ``fold`` for the folds of a cross-validated grid."""
    names: list[str] = ["fold"] if any(point.data.fold is not None for point in points) else []
    for name in GRID_FIELDS:
        if len({getattr(point, name) for point in points}) > 1:
            names.append(name)
    head_names = sorted({name for point in points for name, _ in point.head_params})
    for name in head_names:
        if len({json.dumps(point.head_kwargs.get(name), default=str) for point in points}) > 1:
            names.append(f"head.{name}")
    return names


def field_value(point: RunConfig, name: str) -> Any:
    """The value of a name from :func:`varying_fields` in ``point`` (``None`` for a head without it)."""
    if name.startswith("head."):
        return point.head_kwargs.get(name.removeprefix("head."))
    if name == "fold":
        return point.data.fold
    return getattr(point, name)


def _sorted_unique(values: Sequence[Any]) -> list[Any]:
    unique = list(dict.fromkeys(values))
    try:
        return sorted(unique)
    except TypeError:
        return sorted(unique, key=lambda value: json.dumps(value, default=str))
