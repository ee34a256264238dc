"""Masking and pooling over the time axis, shared by the heads.

Masks are ``(batch, time)`` and true (or 1) on real tokens; states are
``(batch, time, features)``. Padded positions never influence a result.
"""

from __future__ import annotations

import torch


def as_bool_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """``attention_mask`` (bool or 0/1 of any dtype) as a bool tensor."""
    return attention_mask if attention_mask.dtype == torch.bool else attention_mask != 0


def lengths_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Number of real tokens per row, shape ``(batch,)``, dtype ``long``."""
    return as_bool_mask(attention_mask).sum(dim=1)


def mask_from_lengths(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Bool mask ``(batch, max_len)``, true on the first ``lengths[i]`` positions of row ``i``."""
    positions = torch.arange(max_len, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


def zero_padding(states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """``states`` with every padded position set to exactly zero (NaN or inf there included)."""
    return states.masked_fill(~as_bool_mask(attention_mask).unsqueeze(-1), 0.0)


def masked_mean(states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``states`` over real positions, ``(batch, features)``; zero for a row without tokens."""
    counts = lengths_from_mask(attention_mask).clamp(min=1).unsqueeze(-1).to(states.dtype)
    return zero_padding(states, attention_mask).sum(dim=1) / counts


def masked_max(states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Maximum of ``states`` over real positions, ``(batch, features)``; padding never wins, zero for an empty row."""
    mask = as_bool_mask(attention_mask)
    maxima = states.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)
    return torch.where(mask.any(dim=1, keepdim=True), maxima, torch.zeros_like(maxima))
