"""``--device auto|cpu|cuda[:N]``: parsed in one place, resolved for Lightning and for plain torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.errors import UsageError

if TYPE_CHECKING:
    import torch

DEVICE_HELP = "auto, cpu or cuda[:N]"


@dataclass(frozen=True)
class DeviceChoice:
    """A parsed ``--device``: ``kind`` is auto, cpu or cuda; ``index`` the GPU of ``cuda:N``."""

    kind: str
    index: int | None = None


def parse_device(text: str) -> DeviceChoice:
    """``"cuda:1"`` → ``DeviceChoice("cuda", 1)``; :class:`UsageError` for anything but auto, cpu, cuda[:N]."""
    kind, colon, index = text.partition(":")
    if kind in {"auto", "cpu"} and not colon:
        return DeviceChoice(kind)
    if kind == "cuda" and (not colon or index.isdigit()):
        return DeviceChoice("cuda", int(index) if index else None)
    raise UsageError(f"--device must be {DEVICE_HELP}, got {text!r}")


def is_device_name(text: str) -> bool:
    """Whether ``text`` is a valid ``--device`` (:func:`parse_device` accepts it)."""
    try:
        parse_device(text)
    except UsageError:
        return False
    return True


def _require_cuda(text: str, count: int = 1) -> None:
    import torch

    if not torch.cuda.is_available():
        raise UsageError(f"--device {text} was asked for but no CUDA GPU is available")
    if count > torch.cuda.device_count():
        raise UsageError(f"--devices {count} was asked for but {torch.cuda.device_count()} CUDA GPUs are visible")


def _concrete(choice: DeviceChoice) -> DeviceChoice:
    """``auto`` made cuda when a GPU is visible, else cpu."""
    if choice.kind != "auto":
        return choice
    import torch

    return DeviceChoice("cuda" if torch.cuda.is_available() else "cpu")


def lightning_devices(device: str, count: int = 1) -> tuple[str, list[int] | int]:
    """Lightning ``accelerator`` and ``devices`` for ``--device`` and ``--devices count``."""
    choice = _concrete(parse_device(device))
    if choice.kind == "cpu":
        return "cpu", count
    _require_cuda(device, count)
    return "gpu", [choice.index] if choice.index is not None else count


def torch_device(device: str) -> torch.device:
    """The one ``torch.device`` that ``--device`` names (``cuda`` is the current GPU)."""
    import torch

    choice = _concrete(parse_device(device))
    if choice.kind == "cpu":
        return torch.device("cpu")
    _require_cuda(device)
    return torch.device("cuda", choice.index) if choice.index is not None else torch.device("cuda")


def resolve_precision(precision: str, accelerator: str) -> str:
    """Lightning precision for ``--precision``: ``auto`` → bf16-mixed on a GPU that supports it, else 32-true."""
    if precision != "auto":
        return "32-true" if precision == "32" else precision
    import torch

    if accelerator == "gpu" and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"
