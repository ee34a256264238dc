"""Classification heads: one file per head, each registered with :func:`register_head`."""

from heads.base import Head
from heads.registry import create_head, head_class, list_heads, register_head, resolve_head_params

# Importing a head module registers it.
from heads import bilstm, cnn, layernorm_mlp, linear, mlp  # noqa: E402,F401  isort: skip

__all__ = ["Head", "create_head", "head_class", "list_heads", "register_head", "resolve_head_params"]
