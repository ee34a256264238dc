"""Speed benchmarks (not tests): ``python -m benchmarks.throughput``."""
