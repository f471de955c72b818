"""Warm-up rows: the start of a dataset, where velocity windows cannot be full yet.

A row in the first 7 days of a dataset sees at most a partial 7-day history, and an entity's
first row has no "time since previous"; training on those rows teaches the model a cold-start
distribution that production (with full history) never shows. They are left out of training
and of the holdout, and the count is reported.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def warmup_seconds(plan: dict[str, Any]) -> int:
    """The longest velocity window of a feature plan (0 when it has none)."""
    windows = [
        int(d["window_seconds"])
        for d in plan.get("definitions", [])
        if d.get("kind") == "velocity" and d.get("window_seconds")
    ]
    return max(windows, default=0)


def drop_warmup(frame: pd.DataFrame, plan: dict[str, Any]) -> tuple[pd.DataFrame, int]:
    """Rows after the warm-up period, and how many were dropped."""
    column, seconds = plan.get("timestamp_column"), warmup_seconds(plan)
    if not column or not seconds or column not in frame.columns or frame.empty:
        return frame, 0
    times = pd.to_datetime(frame[column], utc=True)
    keep = times >= times.min() + pd.Timedelta(seconds=seconds)
    return frame.loc[keep], int((~keep).sum())
