"""Collectives between the ranks of a distributed run; plain values outside one."""

from __future__ import annotations

from typing import Any

import torch.distributed as dist


def world_size() -> int:
    """Ranks in the current process group (1 outside distributed training)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_objects(value: Any) -> list[Any]:
    """``value`` of every rank, in rank order (``[value]`` outside distributed training)."""
    if world_size() == 1:
        return [value]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def abort_process_group() -> None:
    """Make collectives waiting on a dead rank fail instead of hanging."""
    if dist.is_available() and dist.is_initialized():
        try:
            dist.distributed_c10d._abort_process_group()
        except (RuntimeError, AttributeError, NotImplementedError):
            pass


def destroy_process_group() -> None:
    """Leave the process group, if this process is in one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
