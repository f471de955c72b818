"""Helpers of benchmarks/monitoring.py: data, contenders' child scripts, bench venvs."""
