"""Files: why a path is not a usable file, and atomic writes whose leftovers (``kill -9``) the next writer sweeps."""

from __future__ import annotations

import errno
import os
import socket
import tempfile
import time
from pathlib import Path

from bench.errors import ResultsError

# A temporary file is named ``.<target>.<host>.<pid>.<random>.tmp``. The next writer of the same target
# removes those of processes gone from this host, and any older than this (other hosts, reused process ids).
STALE_AFTER_S = 24 * 3600
_SUFFIX = ".tmp"


def file_problem(path: Path) -> str | None:
    """Why ``path`` is not a readable regular file (a loop, a broken link, a folder, ...), or ``None``."""
    try:
        path.resolve(strict=True)
    except (RuntimeError, OSError) as error:
        if isinstance(error, RuntimeError) or getattr(error, "errno", None) == errno.ELOOP:
            return "a symbolic link loop"
        if path.is_symlink():
            return f"a broken symbolic link (its target {os.readlink(path)} does not exist)"
        if isinstance(error, FileNotFoundError):
            return "no such file"
        return f"unreadable ({error.strerror or error})"
    if path.is_dir():
        return "a directory, not a file"
    if not path.is_file():
        return "not a regular file"
    if not os.access(path, os.R_OK):
        return "not readable (permission denied)"
    return None


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a synced temporary file in the same folder and a rename.

    Temporary files that earlier writers of ``path`` left behind when they were killed
    are removed first; those of writers still running are left alone.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_temporaries(path)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=_prefix(path), suffix=_SUFFIX)
    except OSError as error:
        raise ResultsError(f"cannot write {path}: {error.strerror or error}") from None
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except OSError as error:
        raise ResultsError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def sweep_temporaries(path: Path, stale_after_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the temporary files of killed writers of ``path``; returns those removed."""
    removed: list[Path] = []
    host = _host()
    now = time.time()
    for candidate in path.parent.glob(f".{_glob_escape(path.name)}.*{_SUFFIX}"):
        owner_host, pid = _owner(candidate, path)
        try:
            age = now - candidate.lstat().st_mtime
        except OSError:
            continue  # removed meanwhile (by its writer's rename or another sweeper)
        dead = owner_host == host and pid is not None and not _alive(pid)
        if not (dead or age > stale_after_s) or not candidate.is_file():
            continue
        try:
            candidate.unlink()
        except FileNotFoundError:
            continue
        removed.append(candidate)
    return removed


def _prefix(path: Path) -> str:
    return f".{path.name}.{_host()}.{os.getpid()}."


def _host() -> str:
    return socket.gethostname().replace(".", "_")


def _owner(candidate: Path, path: Path) -> tuple[str | None, int | None]:
    """The host and process id written into a temporary file's name (``None`` when it has none)."""
    middle = candidate.name[len(path.name) + 2 : -len(_SUFFIX)]
    parts = middle.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return None, None
    return parts[0], int(parts[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _glob_escape(name: str) -> str:
    return "".join(f"[{character}]" if character in "*?[" else character for character in name)
