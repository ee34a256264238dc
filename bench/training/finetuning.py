"""Fine-tuning an encoder: its input length checked, top layers re-initialised, AdamW parameter groups.

The groups give the encoder and the head their learning rates, with layer-wise decay and no weight
decay on biases and norms.

With ``layer_lr_decay`` below 1 the encoder's layer groups (:meth:`TextEncoder.layer_groups`, from the
embeddings up to the top layer) train at ``lr × layer_lr_decay**i`` for the group ``i`` steps below the
top; the head trains at ``head_lr``. Parameters that do not train (a frozen encoder) are left out.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from bench.config import RunConfig
from bench.errors import UsageError
from encoders.base import TextEncoder


def prepare_encoder(encoder: TextEncoder, config: RunConfig) -> None:
    """Check ``--max-len`` against the encoder's positions, then re-initialise its top ``reinit_layers`` layers."""
    limit = encoder.max_tokens()
    if limit is not None and config.max_len > limit:
        raise UsageError(f"--max-len {config.max_len} is more than encoder {config.encoder!r} takes ({limit} tokens)")
    if config.reinit_layers:
        encoder.reinitialise_top_layers(config.reinit_layers)


def _decays(module: nn.Module) -> dict[int, bool]:
    """Whether each parameter of ``module`` gets weight decay: matrices yes; biases, norms (and 1-d tensors) no."""
    return {
        id(parameter): parameter.ndim >= 2 and "norm" not in name.lower()
        for name, parameter in module.named_parameters()
    }


def _split(
    parameters: list[nn.Parameter], decays: dict[int, bool], lr: float, weight_decay: float
) -> list[dict[str, Any]]:
    trainable = [parameter for parameter in parameters if parameter.requires_grad]
    return [
        {
            "params": [parameter for parameter in trainable if decays[id(parameter)]],
            "lr": lr,
            "weight_decay": weight_decay,
        },
        {"params": [parameter for parameter in trainable if not decays[id(parameter)]], "lr": lr, "weight_decay": 0.0},
    ]


def optimizer_groups(
    encoder: TextEncoder,
    head: nn.Module,
    *,
    lr: float,
    head_lr: float,
    weight_decay: float,
    layer_lr_decay: float = 1.0,
) -> list[dict[str, Any]]:
    """The AdamW groups (non-empty ones only): per encoder layer group and for the head, with and without decay."""
    decays = _decays(encoder)
    layer_groups = encoder.layer_groups() if layer_lr_decay != 1.0 else [list(encoder.parameters())]
    top = len(layer_groups) - 1
    groups: list[dict[str, Any]] = []
    for index, parameters in enumerate(layer_groups):
        groups += _split(parameters, decays, lr * layer_lr_decay ** (top - index), weight_decay)
    groups += _split(list(head.parameters()), _decays(head), head_lr, weight_decay)
    return [group for group in groups if group["params"]]
