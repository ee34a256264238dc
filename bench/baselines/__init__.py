"""Reference rows for the leaderboard: TF-IDF + logistic regression, and the majority class.

Both train on the same split as every run (``--train-limit`` included), are tested
on the same test examples and are recorded with full :class:`RunMetrics`, so they
rank, aggregate and compare like trained encoders:

* ``tfidf`` / ``logreg``: TF-IDF over character n-grams inside word boundaries
  (``char_wb``, 1–4, sublinear tf, n-grams of at least two training texts) and a
  multinomial logistic regression whose ``C`` is the grid value with the best
  validation macro-F1 (the grid sweep is the run's ``history``, one entry per ``C``).
* ``majority`` / ``constant``: always the most frequent training label, with the
  training label distribution as probabilities: the floor any model must beat.

Their parameter counts are the numbers the classifier stores (coefficients and
intercepts; the class prior). ``train_seconds`` covers vectorising and fitting every
``C`` of the grid; latencies time vectorising plus predicting, per example.

Names and configs are here; fitting (:func:`bench.baselines.fitting.run_baseline`)
imports scikit-learn only when used. A baseline row goes through the same lifecycle
as a training run (:mod:`bench.recording.lifecycle`).
"""

from bench.baselines.specs import (
    BASELINE_ENCODERS,
    BASELINES,
    DEFAULT_C_GRID,
    TFIDF_SETTINGS,
    applicable_params,
    baseline_config,
    chosen_c,
    format_c_grid,
    is_baseline,
)

__all__ = [
    "BASELINES",
    "BASELINE_ENCODERS",
    "DEFAULT_C_GRID",
    "TFIDF_SETTINGS",
    "applicable_params",
    "baseline_config",
    "chosen_c",
    "format_c_grid",
    "is_baseline",
]
