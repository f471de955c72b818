"""Profiles of what the pipeline accepts and builds: each dataset version and feature set.

Written by the contract check (``kind="dataset"``, the spec's raw features of the accepted
rows) and by the feature build (``kind="features"``, the model inputs of the feature set), once
each, indexed with the dataset or feature-set version, so that any two can be compared later
from their profiles alone. Identifier columns are never profiled (:class:`ProfileSchema`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from sqlmodel import Session

from riskops.lake.base import Lake
from riskops.monitoring.profiles import profile_frame, profile_parquet
from riskops.monitoring.schema import ProfileSchema
from riskops.monitoring.store import store_profile
from riskops.records import ProfileRecord
from riskops.specs import ModelSpec

log = logging.getLogger(__name__)
DATASET, FEATURES = "dataset", "features"


def time_span(frame: pd.DataFrame, column: str | None) -> tuple[dt.datetime, dt.datetime]:
    """The time ``frame``'s rows cover (their profile's window); all time without a column."""
    if column and column in frame.columns:
        times = pd.to_datetime(frame[column], utc=True, errors="coerce").dropna()
        if len(times):
            start = times.min().to_pydatetime()
            return start, max(times.max().to_pydatetime(), start) + dt.timedelta(seconds=1)
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC), dt.datetime.now(dt.UTC)


def _schema(
    spec: ModelSpec, numeric: Sequence[str], categorical: Sequence[str], present: Sequence[str]
) -> ProfileSchema:
    ids = {spec.entity_column or "", spec.data.id_column or ""}
    keep = set(present) - ids
    return ProfileSchema.from_spec(
        spec,
        numeric=[c for c in numeric if c in keep],
        categorical=[c for c in categorical if c in keep],
    )


def profile_dataset(
    session: Session, lake: Lake, spec: ModelSpec, frame: pd.DataFrame, dataset_version: str
) -> ProfileRecord:
    """Profile the spec's raw features of an accepted dataset version (the caller commits)."""
    schema = _schema(spec, spec.features.numeric, spec.features.categorical, list(frame.columns))
    start, end = time_span(frame, spec.timestamp_column)
    view = profile_frame(frame, schema, dataset_timestamp=start)
    return store_profile(session, lake, view, model=spec.name, kind=DATASET,
                         version=dataset_version, window_start=start, window_end=end,
                         granularity="once")  # fmt: skip


def profile_feature_set(
    session: Session,
    lake: Lake,
    spec: ModelSpec,
    data: Path,
    *,
    version: str,
    numeric: Sequence[str],
    categorical: Sequence[str],
) -> ProfileRecord:
    """Profile the model inputs of a feature set's parquet ``data``, chunk by chunk."""
    import pyarrow.parquet as pq

    columns = pq.read_schema(next(iter(sorted(data.rglob("*.parquet"))))).names
    schema = _schema(spec, numeric, categorical, columns)
    times = spec.timestamp_column if spec.timestamp_column in columns else None
    frame = pd.read_parquet(data, columns=[times]) if times else pd.DataFrame()
    start, end = time_span(frame, times)
    view = profile_parquet(data, schema, dataset_timestamp=start)
    return store_profile(session, lake, view, model=spec.name, kind=FEATURES, version=version,
                         window_start=start, window_end=end, granularity="once")  # fmt: skip


def safely(what: str, step: object, *args: object, **kwargs: object) -> ProfileRecord | None:
    """Run a profiling step; a failure is logged, never fatal to the stage that accepted the
    data (the profile is for monitoring; the dataset or feature set stands without it)."""
    try:
        return step(*args, **kwargs)  # type: ignore[operator]
    except Exception:
        log.exception("monitoring: could not profile %s; the monitor has no profile of it (the "
                      "pipeline step itself succeeded)", what)  # fmt: skip
        return None
