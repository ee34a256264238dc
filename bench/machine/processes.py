"""Whether a process recorded in a run row is still alive on this host."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path


def process_alive(pid: int, started_at: str | None = None) -> bool:
    """Whether process ``pid`` runs on this host (not a zombie, and not a newer process reusing the pid).

    ``started_at`` (ISO time the run started) lets a pid reused by a process that
    started later count as gone; this check needs Linux ``/proc``.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        fields_after_name = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return True
    if fields_after_name[0] == "Z":
        return False
    if started_at is None:
        return True
    process_start = _boot_time() + int(fields_after_name[19]) / os.sysconf("SC_CLK_TCK")
    return process_start <= datetime.fromisoformat(started_at).timestamp() + 2.0


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return 0.0
