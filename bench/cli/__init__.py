"""The ``bench`` command line; each module registers its commands on :data:`bench.cli.app.app`."""

from bench.cli import (  # noqa: F401  (registers commands)
    baseline,
    data,
    encoders,
    heads,
    leaderboard,
    predict,
    report,
    run,
    tune,
)
from bench.cli.app import app, main

__all__ = ["app", "main"]
