"""The ``bench`` command line; each module registers its commands on :data:`bench.cli.app.app`.

Command modules are imported when their command runs (see :class:`bench.cli.app.LazyGroup`).
"""

from bench.cli.app import app, main

__all__ = ["app", "main"]
