"""Pieces of ``benchmarks/serving.py``: the model, the load generator, the contenders."""
