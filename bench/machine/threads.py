"""CPU threads of a training process (``--threads``)."""

from __future__ import annotations


def set_threads(count: int | None) -> None:
    """Use ``count`` threads in torch's intra-op and inter-op pools and in BLAS/OpenMP pools; ``None`` keeps them.

    The inter-op pool can be sized only before its first use; a later call leaves it as it is.
    """
    if count is None:
        return
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(count)
    try:
        torch.set_num_interop_threads(count)
    except RuntimeError:
        pass  # inter-op work already ran in this process: its pool keeps the size it started with
    threadpool_limits(count)
