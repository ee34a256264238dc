"""The search-space type shared by heads, encoders and ``bench tune``.

A :class:`Param` is one searched hyperparameter (a float or int range, or a
choice). Heads declare one per hyperparameter, run settings one each
(:mod:`bench.settings`), encoder registry entries may set their own ranges;
``bench tune`` samples them (:mod:`bench.tuning.spaces`).
"""

from __future__ import annotations

from bench.params import Param

__all__ = ["Param"]
