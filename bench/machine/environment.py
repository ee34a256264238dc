"""What a run's row says about the machine: library versions, device, threads; and its peak memory."""

from __future__ import annotations

import platform
import resource
import sys
from importlib import metadata

# Distribution names of the libraries whose versions a run records (read without importing them).
RECORDED_LIBRARIES = {
    "torch": "torch",
    "transformers": "transformers",
    "lightning": "lightning",
    "scikit-learn": "scikit-learn",
}


def library_version(distribution: str) -> str:
    """The installed version of ``distribution``, or ``not installed``."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment(accelerator: str, devices: int = 1) -> dict[str, str]:
    """Library versions and the device(s) that ran the run (``accelerator`` is Lightning's cpu or gpu)."""
    import torch

    device_name = torch.cuda.get_device_name() if accelerator == "gpu" else (platform.processor() or platform.machine())
    return {
        "python": platform.python_version(),
        **{name: library_version(distribution) for name, distribution in RECORDED_LIBRARIES.items()},
        "device": device_name,
        "accelerator": accelerator,
        "threads": str(torch.get_num_threads()),
        "devices": str(devices),
        "platform": platform.platform(),
    }


def peak_memory_mb() -> float:
    """Peak GPU memory allocated when CUDA is in use, else the process's peak resident memory (MiB).

    Looks at torch only if this process has imported it (no GPU can be in use otherwise).
    """
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
