"""Data profiles for the regulator export that never carry an identifier of a customer.

Entity and id columns, and any text column that looks like an identifier (a distinct value on
(nearly) every row), are left out: their "top values" would be raw customer or application ids.
They are listed by name only, with the reason, so the reader knows what was withheld.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from riskops.specs import ModelSpec

TOP_VALUES = 10
UNIQUE_SHARE = 0.95  # a text column with this share of distinct values is an identifier
MIN_ROWS_FOR_UNIQUENESS = 20  # below this, every column of a tiny frame looks unique


def identifier_columns(frame: pd.DataFrame, spec: ModelSpec) -> dict[str, str]:
    """Column → why it is an identifier: named in the spec, or unique-per-row text."""
    named = {
        spec.entity_column: "spec.entity_column",
        spec.data.id_column: "spec.data.id_column",
    }
    found = {str(c): why for c, why in named.items() if c is not None and c in frame.columns}
    declared = set(spec.feature_columns) | set(spec.protected_attributes) | {spec.target}
    for name in frame.columns:
        series = frame[name]
        if str(name) in found or str(name) in declared or pd.api.types.is_numeric_dtype(series):
            continue
        if pd.api.types.is_datetime64_any_dtype(series):
            continue
        present = series.dropna()
        many = len(present) >= MIN_ROWS_FOR_UNIQUENESS or len(present) == len(frame) > 1
        if many and present.astype(str).nunique() >= UNIQUE_SHARE * len(present):
            found[str(name)] = "unique-per-row text (looks like an identifier)"
    return found


def _entry(series: pd.Series) -> dict[str, Any]:
    entry: dict[str, Any] = {"dtype": str(series.dtype), "nulls": int(series.isna().sum())}
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        # The range only: single instants could single out one application.
        present = series.dropna()
        return entry | {
            "min": present.min().isoformat() if len(present) else None,
            "max": present.max().isoformat() if len(present) else None,
        }
    if pd.api.types.is_bool_dtype(series.dtype) or not pd.api.types.is_numeric_dtype(series):
        counts = series.astype(str).where(series.notna()).value_counts().head(TOP_VALUES)
        entry["top"] = {str(k): int(v) for k, v in counts.items()}
        return entry
    described = series.describe()
    return entry | {k: float(described[k]) for k in ("mean", "std", "min", "50%", "max")}


def profile_frame(frame: pd.DataFrame, spec: ModelSpec) -> dict[str, Any]:
    """Counts, nulls, moments and top categories per column; identifiers withheld by name."""
    withheld = identifier_columns(frame, spec)
    columns = {str(n): _entry(frame[n]) for n in frame.columns if str(n) not in withheld}
    return {
        "rows": len(frame),
        "columns": columns,
        "withheld_identifier_columns": withheld,
    }
