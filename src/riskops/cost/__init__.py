"""Cost per run: what a flow run used (CPU-seconds, peak memory, wall time, rows) and what it
would cost at the prices of :class:`~riskops.cost.settings.CostSettings`.

``meter`` measures, ``prices`` turns usage into money, ``table`` keeps one row per run,
``report`` sums them, ``hook`` is the one context manager every flow wraps itself in.
"""
