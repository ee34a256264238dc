"""Speed benchmarks of ko-emotion-bench (not tests): ``python -m benchmarks`` → results/BENCHMARKS.md.

One module per measurement, each exposing ``NAME``, ``estimate_seconds(settings)`` and
``measure(context) -> Part`` (:mod:`benchmarks.context`, :mod:`benchmarks.report`); the CLI
(:mod:`benchmarks.cli`) runs the chosen ones, records the load during each, and
:mod:`benchmarks.report` writes them as one section.
"""
