"""Measuring a run's model on its test split: classification scores and prediction latency."""
