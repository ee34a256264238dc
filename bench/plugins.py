"""Heads and encoders from outside the package: ``--plugin``, ``BENCH_PLUGINS`` and entry points.

A plugin is a Python file or an importable module that registers heads
(:func:`heads.register_head`) or encoders (:func:`encoders.register_encoder`)
when imported. Plugins come from ``--plugin FILE_OR_MODULE`` (repeatable), the
``BENCH_PLUGINS`` environment variable (``os.pathsep``-separated) and the entry
point groups :data:`ENTRY_POINT_GROUPS` of installed packages. Loading a plugin
adds it to ``BENCH_PLUGINS``, so worker and rank processes load the same ones.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
from collections.abc import Iterable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from bench.errors import BenchError, PluginError

ENVIRONMENT_VARIABLE = "BENCH_PLUGINS"
ENTRY_POINT_GROUPS = ("ko_emotion_bench.heads", "ko_emotion_bench.encoders")
_FILE_MODULE_PREFIX = "bench_plugin_"

# Plugin text as the user gave it → the module it was imported as (and the reverse).
_loaded: dict[str, str] = {}
_origin: dict[str, str] = {}
_configured = False


def import_package_modules(package: str, path: Iterable[str]) -> None:
    """Import every public module of ``package`` (a registry package), so each file registers itself."""
    for module in sorted(pkgutil.iter_modules(path), key=lambda info: info.name):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package}.{module.name}")


def load(specs: Sequence[str]) -> None:
    """Import each plugin (a ``.py`` file or a module name) once; :class:`PluginError` names a failing one."""
    for spec in specs:
        spec = spec.strip()
        if not spec or _key(spec) in _loaded:
            continue
        module = _import(spec)
        _loaded[_key(spec)] = module.__name__
        _origin.setdefault(module.__name__, _key(spec))
        _share_with_child_processes(_key(spec))


def load_configured() -> None:
    """Load the plugins of ``BENCH_PLUGINS`` and of installed entry points (once per process)."""
    global _configured
    if _configured:
        return
    _configured = True
    load(os.environ.get(ENVIRONMENT_VARIABLE, "").split(os.pathsep))
    for group in ENTRY_POINT_GROUPS:
        for entry_point in entry_points(group=group):
            if entry_point.value in _loaded:
                continue
            try:
                loaded = entry_point.load()
                if not isinstance(loaded, ModuleType):
                    loaded()
            except BenchError as error:
                raise PluginError(f"plugin {entry_point.value!r} (entry point {group}): {error}") from None
            except Exception as error:  # noqa: BLE001  any failure of foreign code is reported the same way
                raise PluginError(
                    f"plugin {entry_point.value!r} (entry point {group}) failed to load: {_describe(error)}"
                ) from None
            module = entry_point.module
            _loaded[entry_point.value] = module
            _origin.setdefault(module, module)


def plugin_of(module: str) -> str | None:
    """The plugin (file path or module name) that ``module`` was loaded from; ``None`` for the package's own."""
    if module in _origin:
        return _origin[module]
    top = module.partition(".")[0]
    return None if top in {"heads", "encoders", "bench"} else module


def _key(spec: str) -> str:
    """A file plugin as its absolute path (the same file given twice loads once); a module name as given."""
    return str(Path(spec).resolve()) if _is_file(spec) else spec


def _is_file(spec: str) -> bool:
    return spec.endswith(".py") or os.sep in spec or (os.altsep is not None and os.altsep in spec)


def _import(spec: str) -> ModuleType:
    try:
        if not _is_file(spec):
            return importlib.import_module(spec)
        path = Path(spec).resolve()
        if not path.is_file():
            raise PluginError(f"plugin {spec!r}: no such file")
        name = _FILE_MODULE_PREFIX + path.stem.replace("-", "_")
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise PluginError(f"plugin {spec!r}: not a Python file")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module
    except PluginError:
        raise
    except BenchError as error:
        raise PluginError(f"plugin {spec!r}: {error}") from None
    except Exception as error:  # noqa: BLE001  any failure of foreign code is reported the same way
        raise PluginError(f"plugin {spec!r} failed to load: {_describe(error)}") from None


def _describe(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _share_with_child_processes(key: str) -> None:
    present = [part for part in os.environ.get(ENVIRONMENT_VARIABLE, "").split(os.pathsep) if part.strip()]
    if key not in {_key(part.strip()) for part in present}:
        os.environ[ENVIRONMENT_VARIABLE] = os.pathsep.join([*present, key])
