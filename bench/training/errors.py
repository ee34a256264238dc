"""How training fails: errors the runner records, the DDP launcher forwards and the OOM retry reacts to."""

from __future__ import annotations

import torch

from bench.recording.lifecycle import RunFailure


class NonFiniteLossError(RunFailure):
    """The training loss became NaN or infinite."""


class EvaluationOutOfMemoryError(torch.OutOfMemoryError):
    """Out of (GPU) memory while validating or testing, not while training."""


class OutOfMemoryAtBatch(RunFailure):
    """Training ran out of (GPU) memory at a batch size no retry could go below."""
