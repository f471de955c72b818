"""The holdout: the last share of time when the spec has a clock, else a stratified sample.

A time split leaves an embargo of ``spec.outcome_window_days`` before the holdout: a training
row's label is only known a full outcome window after its time, so rows inside that window
would carry information from the holdout period into training. They are in neither side.
The split is also returned as a :class:`SplitRule` (the cut times, or the holdout ids), which
the platform records so that validation can rebuild the same rows and check their digest.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from riskops.specs import ModelSpec


@dataclass(frozen=True)
class SplitRule:
    """How to choose the same rows again: the cut times of a time split, or the holdout ids."""

    method: str  # time | stratified
    time_column: str | None = None
    holdout_start: str | None = None  # ISO time; holdout rows are at or after it
    train_end: str | None = None  # ISO time; training rows are strictly before it
    embargo_days: float = 0.0
    id_column: str | None = None
    holdout_ids: tuple[Any, ...] | None = None  # stratified split with an id column
    test_share: float = 0.2
    seed: int = 42

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (ids as a list); inverse of :meth:`from_dict`."""
        data = asdict(self)
        data["holdout_ids"] = None if self.holdout_ids is None else list(self.holdout_ids)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SplitRule:
        """Rebuild a rule stored by :meth:`to_dict`."""
        ids = data.get("holdout_ids")
        return cls(**{**data, "holdout_ids": None if ids is None else tuple(ids)})


@dataclass(frozen=True)
class Split:
    """Training and holdout rows of one feature frame, and how they were chosen."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    description: dict[str, Any]
    rule: SplitRule | None = None
    embargoed: int = 0  # rows in neither side (inside the embargo)


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


def rows_digest(frame: pd.DataFrame) -> str:
    """sha256 of a frame's column names and rows, whatever the row or column order.

    The platform records it for the holdout at training and checks it at validation: a row
    added, removed or changed in the lake, or a different rule, gives another digest.
    """
    columns = sorted(frame.columns)
    hashed = np.sort(pd.util.hash_pandas_object(frame[columns], index=False).to_numpy())
    digest = hashlib.sha256("\x1f".join(columns).encode())
    digest.update(hashed.tobytes())
    return digest.hexdigest()


def _rate(y: np.ndarray) -> float:
    return float(y.mean()) if len(y) else float("nan")


def _iso(moment: Any) -> str | None:
    return None if moment is None or pd.isna(moment) else pd.Timestamp(moment).isoformat()


def _times(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        raise ValueError(f"timestamp column {column!r} is missing from the features")
    times = pd.to_datetime(frame[column], utc=True)
    if times.isna().any():
        rows = list(frame.index[times.isna().to_numpy()][:5])
        raise ValueError(f"timestamp column {column!r} has missing values (rows {rows})")
    return times


def _time_rule(
    times: pd.Series, spec: ModelSpec, test_share: float, seed: int, column: str
) -> SplitRule:
    """Cut times: the holdout is the latest ``test_share``, the embargo the window before it."""
    # naive UTC datetime64: sorting tz-aware values would go through Python objects
    mask, boundary = time_boundary_mask(times.dt.tz_convert(None).to_numpy(), test_share)
    start = pd.Timestamp(boundary).tz_localize("UTC")
    if mask.all():
        raise ValueError(
            f"cannot split by time: every row is at or after {_iso(start)} "
            f"in {column!r}; too few distinct timestamps"
        )
    embargo = float(spec.outcome_window_days or 0)
    end = start - pd.Timedelta(days=embargo)
    if not (times < end).any():
        raise ValueError(
            f"cannot split {spec.name} by time: the holdout starts at {_iso(start)} and the "
            f"embargo of outcome_window_days={spec.outcome_window_days} leaves no training "
            f"row before {_iso(end)} (data spans {_iso(times.min())} .. {_iso(times.max())}); "
            "land data spanning more than the outcome window plus the holdout period"
        )
    return SplitRule(
        method="time", time_column=column, holdout_start=_iso(start), train_end=_iso(end),
        embargo_days=embargo, id_column=spec.data.id_column, test_share=test_share, seed=seed,
    )  # fmt: skip


def _stratified_rule(
    frame: pd.DataFrame, y: np.ndarray, spec: ModelSpec, test_share: float, seed: int
) -> SplitRule:
    mask = stratified_mask(y, test_share, seed)
    id_column = spec.data.id_column
    ids = tuple(frame.loc[mask, id_column].tolist()) if id_column else None
    return SplitRule(
        method="stratified", id_column=id_column, holdout_ids=ids, test_share=test_share,
        seed=seed,
    )  # fmt: skip


def _masks(frame: pd.DataFrame, y: np.ndarray, rule: SplitRule) -> tuple[np.ndarray, np.ndarray]:
    """(train mask, holdout mask) of ``frame`` under ``rule``."""
    if rule.method == "time":
        assert rule.time_column and rule.holdout_start and rule.train_end
        times = _times(frame, rule.time_column)
        holdout = (times >= pd.Timestamp(rule.holdout_start)).to_numpy()
        return (times < pd.Timestamp(rule.train_end)).to_numpy(), holdout
    if rule.method != "stratified":
        raise ValueError(f"unknown split method {rule.method!r}")
    if rule.holdout_ids is not None:
        if not rule.id_column or rule.id_column not in frame.columns:
            raise ValueError(f"the split names holdout rows by {rule.id_column!r}, not in frame")
        holdout = frame[rule.id_column].isin(rule.holdout_ids).to_numpy()
    else:  # no id column: the seeded sample of the same rows in the same order
        holdout = stratified_mask(y, rule.test_share, rule.seed)
    return ~holdout, holdout


def apply_split(frame: pd.DataFrame, spec: ModelSpec, rule: SplitRule) -> Split:
    """The train and holdout rows of ``frame`` under a recorded ``rule``."""
    y = target01(frame[spec.target], spec)
    train_mask, holdout_mask = _masks(frame, y, rule)
    return _described(frame, y, spec, rule, train_mask, holdout_mask)


def holdout_split(
    frame: pd.DataFrame, spec: ModelSpec, *, test_share: float = 0.2, seed: int = 42
) -> Split:
    """Split ``frame`` into train and holdout: by time with a timestamp column, else stratified.

    By time, rows within ``spec.outcome_window_days`` before the holdout are embargoed.
    """
    if not 0 < test_share < 1:
        raise ValueError(f"test_share must be in (0, 1), got {test_share}")
    if len(frame) < 2:
        raise ValueError(f"need at least 2 rows to split, got {len(frame)}")
    y = target01(frame[spec.target], spec)
    column = spec.timestamp_column
    if column:
        rule = _time_rule(_times(frame, column), spec, test_share, seed, column)
    else:
        rule = _stratified_rule(frame, y, spec, test_share, seed)
    train_mask, holdout_mask = _masks(frame, y, rule)
    return _described(frame, y, spec, rule, train_mask, holdout_mask)


def _described(
    frame: pd.DataFrame, y: np.ndarray, spec: ModelSpec, rule: SplitRule,
    train_mask: np.ndarray, holdout_mask: np.ndarray,
) -> Split:  # fmt: skip
    train, holdout = frame.loc[train_mask], frame.loc[holdout_mask]
    y_train, y_holdout = y[train_mask], y[holdout_mask]
    for side, labels in (("train", y_train), ("holdout", y_holdout)):
        if not len(labels) or labels.min() == labels.max():
            what = "no" if not len(labels) else ("only positive" if labels[0] else "only negative")
            raise ValueError(
                f"the {side} side holds {what} target {spec.target!r} rows; "
                "cannot train or evaluate"
            )
    embargoed = int((~train_mask & ~holdout_mask).sum())
    column = rule.time_column
    description: dict[str, Any] = {
        "method": rule.method,
        "test_share": rule.test_share,
        "seed": rule.seed,
        "time_column": column,
        "boundary_time": rule.holdout_start,
        "embargo_days": rule.embargo_days,
        "train_end_time": rule.train_end,
        "embargo_rows": embargoed,
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
        times = pd.to_datetime(frame[column], utc=True)
        train_times, holdout_times = times[train_mask], times[holdout_mask]
        description["train_time_range"] = [_iso(train_times.min()), _iso(train_times.max())]
        description["holdout_time_range"] = [_iso(holdout_times.min()), _iso(holdout_times.max())]
    return Split(train, holdout, description, rule, embargoed)
