"""Errors a user can fix: the CLI prints them on one line and exits with code 2."""


class BenchError(Exception):
    """Base class of every error caused by input, configuration or environment."""

    exit_code = 2


class UsageError(BenchError):
    """A bad command-line value: unknown encoder or head, invalid hyperparameter."""


class DataError(BenchError):
    """A data file that cannot be used; the message names the file, row or column."""


class EncoderUnavailableError(BenchError):
    """Encoder weights or tokenizer files cannot be found (offline, missing folder)."""


class ResultsError(BenchError):
    """The results directory or database cannot be used."""


class Terminated(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM, e.g. by a job scheduler) during a run.

    A kind of :class:`KeyboardInterrupt`, so it stops a run, a grid or a study the way Ctrl-C does.
    """


class PluginError(BenchError):
    """A plugin (``--plugin``, ``BENCH_PLUGINS``, an installed entry point) that cannot be loaded."""
