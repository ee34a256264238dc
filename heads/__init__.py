"""Classification heads: one file per head, each registered with :func:`register_head`.

Every module in this folder is imported, so a new head file registers itself
with no other edit; heads from outside the package come as plugins (``--plugin``).
"""

from bench.plugins import import_package_modules
from heads.base import Head
from heads.hyperparameters import Hyperparameter, dropout
from heads.registry import create_head, head_class, list_heads, register_head, resolve_head_params

import_package_modules(__name__, __path__)

__all__ = [
    "Head",
    "Hyperparameter",
    "create_head",
    "dropout",
    "head_class",
    "list_heads",
    "register_head",
    "resolve_head_params",
]
