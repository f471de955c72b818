"""Single-row scoring latency of a scoring callable: p50 and p99 against the spec's budget.

The callable is called in-process with one-row frames prepared beforehand (so building the frame
is not timed), after a warm-up, ``calls`` times, each timed with ``time.perf_counter_ns``. This
is the model's own cost; network, serialisation and queueing of the service come on top.
"""

from __future__ import annotations

import fcntl
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from riskops.validation.results import GateResult, ScoreFn, crashed, measured

DEFAULT_CALLS = 300
DEFAULT_WARMUP = 20


@contextmanager
def _host_lock() -> Iterator[None]:
    """One latency measurement at a time on this host (an flock on a file in the temp dir)."""
    path = Path(tempfile.gettempdir()) / "riskops-latency.lock"
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def measure_latency(
    score: ScoreFn, frame: pd.DataFrame, *, calls: int = DEFAULT_CALLS, warmup: int = DEFAULT_WARMUP
) -> dict[str, float]:
    """Milliseconds per one-row call: p50, p90, p99, mean, max, and the number of calls."""
    if calls < 1 or not len(frame):
        raise ValueError(f"need calls >= 1 and at least one row, got {calls} and {len(frame)}")
    singles = [frame.iloc[[i]] for i in range(min(len(frame), calls))]
    timings = np.empty(calls, dtype=np.int64)
    with _host_lock():  # validations running at once must not time each other
        for i in range(warmup):
            score(singles[i % len(singles)])
        for i in range(calls):
            row = singles[i % len(singles)]
            start = time.perf_counter_ns()
            score(row)
            timings[i] = time.perf_counter_ns() - start
    ms = timings / 1e6
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "max_ms": float(ms.max()),
        "calls": float(calls),
        "warmup": float(warmup),
    }


def latency_gate(
    score: ScoreFn,
    frame: pd.DataFrame,
    *,
    max_p99_ms: float,
    calls: int = DEFAULT_CALLS,
    warmup: int = DEFAULT_WARMUP,
) -> GateResult:
    """p99 single-row latency of ``score`` must be at most ``max_p99_ms``."""
    try:
        stats = measure_latency(score, frame, calls=calls, warmup=warmup)
    except Exception as error:
        return crashed("latency.p99", error)
    return measured(
        "latency.p99",
        stats["p99_ms"],
        max_p99_ms,
        "<=",
        f"The p99 single-row scoring latency over {calls} in-process calls, in milliseconds "
        f"(p50 {stats['p50_ms']:.3g} ms)",
        evidence=stats,
    )
