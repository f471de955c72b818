"""The benchmark's frames: 15 numeric and 5 categorical (12 values) columns, and a shifted copy.

numpy and pandas only: imported by the child processes of every contender, in every venv.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NUMERIC = [f"num_{i:02d}" for i in range(15)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
VALUES = [f"v{j:02d}" for j in range(12)]
# The shifted copy moves these columns (the rest are drawn from the same distribution).
SHIFTED_NUMERIC = NUMERIC[:4]
SHIFTED_CATEGORICAL = CATEGORICAL[:2]


def frame(rows: int, seed: int, shifted: bool = False) -> pd.DataFrame:
    """``rows`` rows; with ``shifted`` four numeric and two categorical columns move."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    base = np.linspace(1, 3, 12)
    for i, name in enumerate(NUMERIC):
        move = shifted and name in SHIFTED_NUMERIC
        if i % 3 == 0:
            out[name] = rng.normal(0.6 if move else 0.0, 1.0, rows)
        elif i % 3 == 1:
            out[name] = rng.lognormal(0.0, 1.6 if move else 1.0, rows)
        else:
            out[name] = rng.exponential(8.0 if move else 5.0, rows)
    for name in CATEGORICAL:
        weights = base[::-1] if shifted and name in SHIFTED_CATEGORICAL else base
        out[name] = rng.choice(VALUES, rows, p=weights / weights.sum()).astype(object)
    return pd.DataFrame(out)


def chunks(rows: int, seed: int, chunk_rows: int = 500_000):
    """The same distribution as :func:`frame`, generated chunk by chunk (flat memory)."""
    done = 0
    while done < rows:
        n = min(chunk_rows, rows - done)
        yield frame(n, seed + done)
        done += n
