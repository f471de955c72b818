"""The holdout: the last share of time when the spec has a clock, else a stratified sample."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from riskops.specs import ModelSpec


@dataclass(frozen=True)
class Split:
    """Training and holdout rows of one feature frame, and how they were chosen."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    description: dict[str, Any]


def target01(values: pd.Series, spec: ModelSpec) -> np.ndarray:
    """Map the spec's target labels to 0/1 (1 = ``spec.positive_label``); refuse other values."""
    known = spec.resolved_target_values
    valid = values.isin(known).to_numpy()
    if not valid.all():
        bad = values[~valid]
        shown = sorted({repr(v) for v in bad.head(1000)})[:5]
        raise ValueError(
            f"target {spec.target!r}: {len(bad)} rows hold values outside {known}: "
            f"{', '.join(shown)} (first rows: {list(bad.index[:5])})"
        )
    return (values == spec.positive_label).to_numpy().astype(np.int8)


def time_boundary_mask(times: np.ndarray, share: float) -> tuple[np.ndarray, Any]:
    """Rows at or after the time that leaves ``share`` of the rows after it; ties stay together."""
    n = len(times)
    cut = n - max(1, math.ceil(n * share))
    boundary = np.sort(times, kind="stable")[cut]
    return times >= boundary, boundary


def stratified_mask(y: np.ndarray, share: float, seed: int) -> np.ndarray:
    """A seeded random ``share`` of the rows, with the class balance of ``y`` kept."""
    positions = np.arange(len(y))
    stratify = y if 0 < int(y.sum()) < len(y) else None
    _, chosen = train_test_split(
        positions, test_size=share, random_state=seed, shuffle=True, stratify=stratify
    )
    mask = np.zeros(len(y), dtype=bool)
    mask[chosen] = True
    return mask


def frame_digest(frame: pd.DataFrame) -> str:
    """Short content hash of a frame's rows (order and values), to prove rows were re-used."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()[:32]


def _rate(y: np.ndarray) -> float:
    return float(y.mean()) if len(y) else float("nan")


def _iso(moment: Any) -> str | None:
    return None if moment is None or pd.isna(moment) else pd.Timestamp(moment).isoformat()


def holdout_split(
    frame: pd.DataFrame, spec: ModelSpec, *, test_share: float = 0.2, seed: int = 42
) -> Split:
    """Split ``frame`` into train and holdout: by time with a timestamp column, else stratified."""
    if not 0 < test_share < 1:
        raise ValueError(f"test_share must be in (0, 1), got {test_share}")
    if len(frame) < 2:
        raise ValueError(f"need at least 2 rows to split, got {len(frame)}")
    y = target01(frame[spec.target], spec)
    column = spec.timestamp_column
    boundary = None
    if column:
        if column not in frame.columns:
            raise ValueError(f"timestamp column {column!r} is missing from the features")
        times = pd.to_datetime(frame[column], utc=True)
        if times.isna().any():
            rows = list(frame.index[times.isna().to_numpy()][:5])
            raise ValueError(f"timestamp column {column!r} has missing values (rows {rows})")
        # naive UTC datetime64: sorting tz-aware values would go through Python objects
        mask, boundary = time_boundary_mask(times.dt.tz_convert(None).to_numpy(), test_share)
        boundary = pd.Timestamp(boundary).tz_localize("UTC")
        if mask.all():
            raise ValueError(
                f"cannot split by time: every row is at or after {_iso(boundary)} "
                f"in {column!r}; too few distinct timestamps"
            )
    else:
        mask = stratified_mask(y, test_share, seed)
    train, holdout = frame.loc[~mask], frame.loc[mask]
    y_train, y_holdout = y[~mask], y[mask]
    for side, labels in (("train", y_train), ("holdout", y_holdout)):
        if labels.min() == labels.max():
            raise ValueError(
                f"the {side} side holds only target {spec.target!r} = "
                f"{'positive' if labels[0] else 'negative'} rows; cannot train or evaluate"
            )
    description: dict[str, Any] = {
        "method": "time" if column else "stratified",
        "test_share": test_share,
        "seed": seed,
        "time_column": column,
        "boundary_time": _iso(boundary),
        "id_column": spec.data.id_column,
        "target": spec.target,
        "positive_label": spec.positive_label,
        "train_rows": len(train),
        "holdout_rows": len(holdout),
        "train_positives": int(y_train.sum()),
        "holdout_positives": int(y_holdout.sum()),
        "train_positive_rate": _rate(y_train),
        "holdout_positive_rate": _rate(y_holdout),
    }
    if column:
        train_times, holdout_times = times[~mask], times[mask]
        description["train_time_range"] = [_iso(train_times.min()), _iso(train_times.max())]
        description["holdout_time_range"] = [_iso(holdout_times.min()), _iso(holdout_times.max())]
    return Split(train=train, holdout=holdout, description=description)
