"""Search-space ranges shared by heads, encoders and ``bench tune``.

A :class:`Param` is one searched hyperparameter (a float or int range, or a
choice). Heads declare one per hyperparameter, run settings one each
(:mod:`bench.settings`), encoder registry entries may register their own;
``bench tune`` samples them.
"""

from __future__ import annotations

from bench.params import Param  # noqa: F401  (re-exported: heads and plugins import it from here)


def standard_space(*, random_init: bool = False) -> dict[str, Param]:
    """The ``bench tune`` ranges the run settings declare (:mod:`bench.settings`): the usual fine-tuning
    ranges of pretrained base-size transformers, or (``random_init``) those of random weights — large
    learning rates, many epochs. An encoder gets these unless it registers its own."""
    from bench.config import SETTINGS  # the settings declare their ranges with Param, defined above

    spaces = {
        name: (declared.search_scratch or declared.search) if random_init else declared.search
        for name, declared in SETTINGS.items()
        if declared is not None
    }
    return {name: space for name, space in spaces.items() if space is not None}


def __getattr__(name: str) -> dict[str, Param]:
    """``PRETRAINED_SPACE`` and ``FROM_SCRATCH_SPACE``: :func:`standard_space` for each kind of weights."""
    if name == "PRETRAINED_SPACE":
        return standard_space()
    if name == "FROM_SCRATCH_SPACE":
        return standard_space(random_init=True)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
