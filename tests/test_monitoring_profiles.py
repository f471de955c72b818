"""Profiles built from sketches are real whylogs views: whylogs merges, serialises, reads them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlmodel import Session

from riskops.lake.base import LakeError
from riskops.lake.local import LocalLake
from riskops.monitoring import (
    ProfileError,
    ProfileSchema,
    find_profiles,
    load_merged,
    load_profile,
    merge_views,
    profile_chunks,
    profile_frame,
    profile_parquet,
    rollup,
    store_profile,
)
from riskops.monitoring.whylogs_compat import DatasetProfileView, whylogs

SCHEMA = ProfileSchema(numeric=("x", "i", "ln"), categorical=("c", "flag"))
QUANTILES = ["q_05", "q_25", "median", "q_75", "q_95"]


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(10, 2, n)
    x[rng.random(n) < 0.1] = np.nan
    c = rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    c[rng.random(n) < 0.05] = None
    return pd.DataFrame(
        {
            "x": x,
            "i": rng.integers(0, 1000, n),
            "ln": rng.lognormal(0, 1, n),
            "c": c,
            "flag": rng.random(n) < 0.3,
            "customer_id": [f"cust-{k}" for k in range(n)],
        }
    )


def _summary(view: DatasetProfileView, column: str) -> dict:
    """whylogs' own summary of a column, with NaN (empty min/max) as None so it compares."""
    out = view.get_column(column).to_summary_dict()
    return {k: None if isinstance(v, float) and np.isnan(v) else v for k, v in out.items()}


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment  # SQLite: naive


def _rank_gap(values: np.ndarray, estimate: float, q: float) -> float:
    """How far (in rank) ``estimate`` is from quantile ``q`` of ``values``."""
    values = np.sort(values[~np.isnan(values)])
    rank = np.searchsorted(values, estimate, side="left") / len(values)
    return abs(rank - q)


def test_counts_equal_and_quantiles_within_sketch_error_of_why_log():
    frame = _frame(20_000, seed=1)
    ours = profile_frame(frame, SCHEMA)
    theirs = whylogs.log(frame[list(SCHEMA.columns)]).view()
    for column in SCHEMA.columns:
        a, b = _summary(ours, column), _summary(theirs, column)
        for key in ("counts/n", "counts/null", "counts/nan", "counts/inf", "counts/true"):
            assert a[key] == b[key], (column, key)
        for key in ("types/integral", "types/fractional", "types/string"):
            assert a[key] == b[key], (column, key)
        assert a["cardinality/est"] == pytest.approx(b["cardinality/est"], rel=0.02)
    for column in SCHEMA.numeric:
        a, b = _summary(ours, column), _summary(theirs, column)
        assert a["distribution/n"] == b["distribution/n"]
        assert a["distribution/mean"] == pytest.approx(b["distribution/mean"], rel=1e-9)
        assert a["distribution/stddev"] == pytest.approx(b["distribution/stddev"], rel=1e-9)
        values = frame[column].to_numpy(dtype=float)
        for key, q in zip(QUANTILES, [0.05, 0.25, 0.5, 0.75, 0.95], strict=True):
            assert _rank_gap(values, a[f"distribution/{key}"], q) < 0.01, (column, key)
    # frequent items as whylogs reports them: the exact category counts
    items = {i.value: i.est for i in _summary(ours, "c")["frequent_items/frequent_strings"]}
    assert items == frame["c"].value_counts().to_dict()
    flags = {i.value: i.est for i in _summary(ours, "flag")["frequent_items/frequent_strings"]}
    theirs_flags = _summary(theirs, "flag")["frequent_items/frequent_strings"]
    assert flags == {i.value: i.est for i in theirs_flags}


def test_views_merge_serialise_and_stay_readable_by_whylogs():
    a, b = _frame(5_000, seed=2), _frame(7_000, seed=3)
    va, vb = profile_frame(a, SCHEMA), profile_frame(b, SCHEMA)
    merged = va.merge(vb)
    assert _summary(merged, "x")["counts/n"] == 12_000
    assert _summary(merged, "x")["counts/null"] == int(a.x.isna().sum() + b.x.isna().sum())
    # our views merge with whylogs' own
    mixed = va.merge(whylogs.log(b[list(SCHEMA.columns)]).view())
    assert _summary(mixed, "c")["counts/null"] == int(a.c.isna().sum() + b.c.isna().sum())
    restored = DatasetProfileView.deserialize(merged.serialize())
    assert restored.metadata["riskops.numeric"] == '["x", "i", "ln"]'
    for column in SCHEMA.columns:
        assert _summary(restored, column) == _summary(merged, column)
    pooled = pd.concat([a, b])
    assert _summary(restored, "x")["distribution/mean"] == pytest.approx(pooled.x.mean())
    assert whylogs.__version__ == restored.metadata["whylogs.version"]


def test_chunked_profile_equals_one_shot(tmp_path: Path):
    frame = _frame(60_000, seed=4)
    one = profile_frame(frame, SCHEMA)
    chunks = profile_chunks((frame.iloc[i : i + 7_000] for i in range(0, 60_000, 7_000)), SCHEMA)
    frame.to_parquet(tmp_path / "f.parquet")
    from_file = profile_parquet(tmp_path / "f.parquet", SCHEMA, chunk_rows=10_000)
    for other in (chunks, from_file):
        for column in SCHEMA.columns:
            a, b = _summary(one, column), _summary(other, column)
            for key in ("counts/n", "counts/null", "types/string", "distribution/n"):
                assert a[key] == b[key], (column, key)
            if "frequent_items/frequent_strings" in a:
                assert a["frequent_items/frequent_strings"] == b["frequent_items/frequent_strings"]
        for column in SCHEMA.numeric:
            a, b = _summary(one, column), _summary(other, column)
            assert b["distribution/mean"] == pytest.approx(a["distribution/mean"], rel=1e-9)
            values = frame[column].to_numpy(dtype=float)
            for key, q in zip(QUANTILES, [0.05, 0.25, 0.5, 0.75, 0.95], strict=True):
                assert _rank_gap(values, b[f"distribution/{key}"], q) < 0.01, (column, key)


def test_entity_column_is_refused(credit_spec):
    assert credit_spec.entity_column
    with pytest.raises(ProfileError, match=credit_spec.entity_column):
        ProfileSchema.from_spec(credit_spec, categorical=[credit_spec.entity_column])
    with pytest.raises(ProfileError, match="identifier"):
        ProfileSchema(numeric=("x",), categorical=("customer_id",), identifiers=("customer_id",))
    schema = ProfileSchema.from_spec(credit_spec)
    assert credit_spec.entity_column not in schema.columns
    assert credit_spec.entity_column in schema.identifiers


def test_profile_names_what_is_wrong():
    frame = _frame(100, seed=5)
    with pytest.raises(ProfileError, match="'missing'"):
        profile_frame(frame, ProfileSchema(numeric=("x", "missing")))
    with pytest.raises(ProfileError, match="'c' is declared numeric"):
        profile_frame(frame, ProfileSchema(numeric=("c",)))
    with pytest.raises(ProfileError, match="twice"):
        ProfileSchema(numeric=("x",), categorical=("x",))
    assert merge_views([]) is None


def test_store_load_and_roll_up_hours_to_days_and_weeks(tmp_path: Path, engine):
    lake = LocalLake(tmp_path / "lake")
    start = dt.datetime(2026, 11, 29, 22, tzinfo=dt.UTC)  # a Sunday, two hours before midnight
    hours = [start + dt.timedelta(hours=h) for h in range(5)]
    frames = [_frame(300 + 10 * h, seed=10 + h) for h in range(5)]
    with Session(engine) as session:
        for hour, frame in zip(hours, frames, strict=True):
            store_profile(
                session, lake, profile_frame(frame, SCHEMA, dataset_timestamp=hour),
                model="credit-scoring", kind="features", window_start=hour,
                window_end=hour + dt.timedelta(hours=1), granularity="hour", version="3",
            )  # fmt: skip
        session.commit()
        stored = find_profiles(session, model="credit-scoring", kind="features")
        assert [r.rows for r in stored] == [len(f) for f in frames]
        assert stored[0].key.startswith(
            "profiles/model=credit-scoring/kind=features/window=20261129T220000Z_20261129T230000Z/"
        )
        one = load_profile(lake, stored[0])
        assert _summary(one, "x")["counts/n"] == len(frames[0])

        days = rollup(
            session, lake, model="credit-scoring", kind="features", granularity="day",
            since=start, until=start + dt.timedelta(days=1),
        )  # fmt: skip
        session.commit()
        assert [r.rows for r in days] == [sum(map(len, frames[:2])), sum(map(len, frames[2:]))]
        assert _utc(days[1].window_start) == dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
        again = rollup(
            session, lake, model="credit-scoring", kind="features", granularity="day",
            since=start, until=start + dt.timedelta(days=1),
        )  # fmt: skip
        assert [r.key for r in again] == [r.key for r in days]  # nothing new: kept

        weeks = rollup(
            session, lake, model="credit-scoring", kind="features", granularity="week",
            since=start - dt.timedelta(days=7), until=start + dt.timedelta(days=7),
        )  # fmt: skip
        session.commit()
        # Sunday 29 Nov belongs to the ISO week of Monday 23 Nov; Monday 30 Nov starts the next
        assert [r.window_start.day for r in weeks] == [23, 30]
        week_view = load_merged(lake, weeks)
        assert _summary(week_view, "c")["counts/null"] == sum(int(f.c.isna().sum()) for f in frames)

        # a late hour arrives: the day is rebuilt and the stale roll-up leaves the index
        late = start + dt.timedelta(hours=5)
        store_profile(
            session, lake, profile_frame(_frame(50, seed=99), SCHEMA), model="credit-scoring",
            kind="features", window_start=late, window_end=late + dt.timedelta(hours=1),
            granularity="hour", version="3",
        )  # fmt: skip
        rebuilt = rollup(
            session, lake, model="credit-scoring", kind="features", granularity="day",
            since=start, until=start + dt.timedelta(days=1),
        )  # fmt: skip
        session.commit()
        assert rebuilt[1].rows == days[1].rows + 50
        daily = find_profiles(session, model="credit-scoring", kind="features", granularity="day")
        assert [r.rows for r in daily] == [r.rows for r in rebuilt]

        # a profile changed in the lake after indexing is refused
        lake.put_bytes(stored[0].key, b"tampered")
        with pytest.raises(LakeError, match="does not match its index"):
            load_profile(lake, stored[0])


def test_store_refuses_bad_names_and_windows(tmp_path: Path, engine):
    lake = LocalLake(tmp_path / "lake")
    view = profile_frame(_frame(10, seed=6), SCHEMA)
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    with Session(engine) as session:
        with pytest.raises(ProfileError, match="kind"):
            store_profile(
                session, lake, view, model="credit-scoring", kind="Bad Kind", window_start=now,
                window_end=now + dt.timedelta(hours=1), granularity="hour",
            )  # fmt: skip
        with pytest.raises(ProfileError, match="empty or reversed"):
            store_profile(
                session, lake, view, model="credit-scoring", kind="scores", window_start=now,
                window_end=now, granularity="hour",
            )  # fmt: skip
