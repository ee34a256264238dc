"""``--config FILE`` of ``bench grid`` and ``bench tune``: a TOML or YAML file of option values.

The keys are the command's option names (``max-len`` or ``max_len``, ``bucketing = false``),
so every declared setting works in the file without more code. The file's values become the command's
defaults (click's ``default_map``): an option given on the command line overrides the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import tomllib
import typer
import yaml

from bench.errors import UsageError

SUFFIXES = (".toml", ".yaml", ".yml")
# Options a file cannot set: the file itself, and what only the command line or the program gives.
_NOT_IN_FILE = frozenset({"config", "help", "plugin"})


def read_config_file(path: Path) -> dict[str, Any]:
    """The mapping in a ``.toml``/``.yaml``/``.yml`` file; :class:`UsageError` naming the file otherwise."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UsageError(f"--config {path}: expected a .toml, .yaml or .yml file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot read --config file {path}: {error.strerror or error}") from None
    try:
        data = tomllib.loads(text) if suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise UsageError(f"--config file {path} is not valid {suffix[1:].upper()}: {first_line}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"--config file {path}: expected a mapping of option name to value")
    return data


def option_defaults(command: Any, ctx: typer.Context, path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """The file's values by parameter name, converted to what the options take and checked."""
    params = {
        _key(flag): param
        for param in command.params
        if param.param_type_name == "option" and not param.hidden and param.name not in _NOT_IN_FILE
        for flag in (*param.opts, param.name or "")
        if flag.startswith("--") or flag == param.name
    }
    defaults: dict[str, Any] = {}
    for key, value in data.items():
        param = params.get(_key(str(key)))
        if param is None or param.name is None:
            raise UsageError(
                f"--config file {path}: unknown key {key!r} (the keys are the options of bench "
                f"{command.name}, e.g. max_len or max-len)"
            )
        converted = _option_value(param, value, path, str(key))
        try:
            param.get_runtime_param().coerce(converted, param=param, ctx=ctx)
        except typer.BadParameter as error:
            raise UsageError(f"--config file {path}, key {key!r}: {error.message}") from None
        defaults[param.name] = converted
    return defaults


def _key(name: str) -> str:
    return name.lstrip("-").replace("_", "-").lower()


def _option_value(param: Any, value: Any, path: Path, key: str) -> Any:
    """A file value in the form the option takes: a list joined with commas for a comma-list option, a table
    of ``NAME = value`` for a repeatable ``KEY=VALUE`` option, a list for a repeatable one."""
    where = f"--config file {path}, key {key!r}"
    if param.is_flag:
        if not isinstance(value, bool):
            raise UsageError(f"{where}: expected true or false, got {value!r}")
        return value
    if isinstance(value, dict):
        if not param.multiple:
            raise UsageError(f"{where}: expected a value, got a table")
        return [f"{name}={json.dumps(item)}" for name, item in value.items()]
    if param.multiple:
        items = value if isinstance(value, list) else [value]
        return [json.dumps(item) if isinstance(item, (list, dict)) else str(item) for item in items]
    if isinstance(value, list):
        if any(isinstance(item, (list, dict)) for item in value):
            raise UsageError(f"{where}: expected a list of values, got {value!r}")
        return ",".join(str(item) for item in value)
    return value


def _load(ctx: typer.Context, path: Path | None) -> Path | None:
    """Set the command's defaults from ``--config FILE`` before the other options are read."""
    if path is None:
        return None
    defaults = option_defaults(ctx.command, ctx, path, read_config_file(path))
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return path


ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="TOML or YAML file of option values (keys: the option names, e.g. epochs = 2 or max-len = 64; "
        "a list for a comma-separated option); "
        "options on the command line override it.",
        callback=_load,
        is_eager=True,
    ),
]
