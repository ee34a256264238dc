"""ko-emotion-bench: compare Korean encoders and classification heads on emotion data."""

__version__ = "0.1.0"
