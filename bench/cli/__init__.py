"""The ``bench`` command line; each module registers its commands on :data:`bench.cli.app.app`."""

from bench.cli import data, encoders, heads, leaderboard, run, tune  # noqa: F401  (registers commands)
from bench.cli.app import app, main

__all__ = ["app", "main"]
