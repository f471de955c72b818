"""Rows of a frame as scoring requests: the JSON records the service's schema expects."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd


def request_records(frame: pd.DataFrame, fields: Sequence[str] | None = None) -> list[dict]:
    """``frame``'s rows (only ``fields`` when given) as request records: times as ISO-8601
    text, missing values (NaN, NaT, None) as null."""
    rows = frame[list(fields)] if fields is not None else frame
    out = []
    for row in rows.to_dict(orient="records"):
        record: dict[str, Any] = {}
        for name, value in row.items():
            if isinstance(value, pd.Timestamp):
                value = value.isoformat()
            elif value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
                value = None
            record[name] = value
        out.append(record)
    return out
