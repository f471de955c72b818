"""Profiles in the lake, indexed in the ``profile`` table; hourly profiles rolled up by merge.

Layout::

  profiles/model=<model>/kind=<kind>/window=<start>_<end>/<uuid>.bin

with times as ``YYYYMMDDTHHMMSSZ`` (UTC). The bytes are whylogs' own serialisation
(``DatasetProfileView.serialize``), so whylogs reads them without riskops. Readers go through
the index and check each object's SHA-256.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Literal

from sqlmodel import Session, col, select

from riskops.db import insert_once
from riskops.hashing import sha256_bytes
from riskops.lake.base import Lake, read_verified
from riskops.monitoring.profiles import merge_views
from riskops.monitoring.schema import ProfileError
from riskops.monitoring.whylogs_compat import DatasetProfileView
from riskops.records import ProfileRecord

PROFILES = "profiles"
KINDS: tuple[str, ...] = (
    "dataset",
    "features",
    "reference",
    "decisions-inputs",
    "decisions-features",
    "scores",
)
Granularity = Literal["hour", "day", "week", "once"]
GRANULARITIES: tuple[str, ...] = ("hour", "day", "week", "once")
_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def _utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:  # SQLite returns naive datetimes; we only ever store UTC
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _stamp(moment: dt.datetime) -> str:
    return _utc(moment).strftime("%Y%m%dT%H%M%SZ")


def profile_key(model: str, kind: str, window_start: dt.datetime, window_end: dt.datetime) -> str:
    """A fresh lake key for one profile of ``model``/``kind`` over [start, end)."""
    for label, value in (("model", model), ("kind", kind)):
        if not _NAME.match(value):
            raise ProfileError(f"profile {label} {value!r} must match [a-z0-9]+(-[a-z0-9]+)*")
    window = f"{_stamp(window_start)}_{_stamp(window_end)}"
    return f"{PROFILES}/model={model}/kind={kind}/window={window}/{uuid.uuid4().hex}.bin"


def _rows(view: DatasetProfileView) -> int:
    counts = [c.get_metric("counts") for c in view.get_columns().values()]
    return max((int(c.n.value) for c in counts if c is not None), default=0)


def store_profile(
    session: Session,
    lake: Lake,
    view: DatasetProfileView,
    *,
    model: str,
    kind: str,
    window_start: dt.datetime,
    window_end: dt.datetime,
    granularity: Granularity,
    version: str = "",
) -> ProfileRecord:
    """Write ``view`` to the lake and index it (the caller's session commits).

    The object is written before its index row, so an indexed profile always exists.
    """
    if granularity not in GRANULARITIES:
        raise ProfileError(f"granularity {granularity!r} is not one of {GRANULARITIES}")
    if _utc(window_end) <= _utc(window_start):
        raise ProfileError(f"profile window [{window_start}, {window_end}) is empty or reversed")
    key = profile_key(model, kind, window_start, window_end)
    data = view.serialize()
    uri = lake.put_bytes(key, data)
    record = ProfileRecord(
        model=model, kind=kind, version=version, window_start=_utc(window_start),
        window_end=_utc(window_end), granularity=granularity, rows=_rows(view), key=key, uri=uri,
        sha256=sha256_bytes(data), size_bytes=len(data),
    )  # fmt: skip
    found = select(ProfileRecord).where(ProfileRecord.key == key)
    return insert_once(session, record, lambda: session.exec(found).first())


def load_profile(lake: Lake, record: ProfileRecord) -> DatasetProfileView:
    """Read one indexed profile, refusing bytes whose digest differs from the index."""
    data = read_verified(
        lake, record.key, record.sha256, what="profile",
        remedy="the object was changed after it was written; re-profile the window or restore it",
    )  # fmt: skip
    return DatasetProfileView.deserialize(data)


def find_profiles(
    session: Session,
    *,
    model: str,
    kind: str,
    granularity: Granularity | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    version: str | None = None,
) -> list[ProfileRecord]:
    """Index rows of profiles whose window starts in [since, until), oldest first."""
    query = select(ProfileRecord).where(ProfileRecord.model == model, ProfileRecord.kind == kind)
    if granularity is not None:
        query = query.where(ProfileRecord.granularity == granularity)
    if since is not None:
        query = query.where(ProfileRecord.window_start >= _utc(since))
    if until is not None:
        query = query.where(ProfileRecord.window_start < _utc(until))
    if version is not None:
        query = query.where(ProfileRecord.version == version)
    query = query.order_by(col(ProfileRecord.window_start), col(ProfileRecord.id))
    return list(session.exec(query))


def load_merged(lake: Lake, records: Sequence[ProfileRecord]) -> DatasetProfileView | None:
    """Merge the profiles of ``records`` (None when there are none)."""
    return merge_views(load_profile(lake, r) for r in records)


def _period(moment: dt.datetime, granularity: Granularity) -> tuple[dt.datetime, dt.datetime]:
    day = _utc(moment).replace(hour=0, minute=0, second=0, microsecond=0)
    if granularity == "day":
        return day, day + dt.timedelta(days=1)
    if granularity == "week":  # ISO weeks: Monday 00:00 UTC
        start = day - dt.timedelta(days=day.weekday())
        return start, start + dt.timedelta(days=7)
    raise ProfileError(f"can only roll up to day or week, not {granularity!r}")


def rollup(
    session: Session,
    lake: Lake,
    *,
    model: str,
    kind: str,
    granularity: Literal["day", "week"],
    since: dt.datetime,
    until: dt.datetime,
) -> list[ProfileRecord]:
    """Merge hourly profiles into daily ones, or daily into weekly, for windows in [since, until).

    One roll-up per (version, window): re-running with no new source rows keeps the existing
    one; when late profiles arrived, the roll-up is rebuilt and the stale one unindexed.
    """
    source: Granularity = "hour" if granularity == "day" else "day"
    groups: dict[tuple[str, dt.datetime, dt.datetime], list[ProfileRecord]] = defaultdict(list)
    for record in find_profiles(
        session, model=model, kind=kind, granularity=source, since=since, until=until
    ):
        start, end = _period(record.window_start, granularity)
        groups[(record.version, start, end)].append(record)
    out = []
    for (version, start, end), records in sorted(groups.items(), key=lambda kv: kv[0][1:]):
        existing = find_profiles(
            session, model=model, kind=kind, granularity=granularity, since=start,
            until=start + dt.timedelta(seconds=1), version=version,
        )  # fmt: skip
        rows = sum(r.rows for r in records)
        if len(existing) == 1 and existing[0].rows == rows:
            out.append(existing[0])
            continue
        merged = load_merged(lake, records)
        assert merged is not None  # groups are never empty
        merged.set_dataset_timestamp(start)
        record = store_profile(
            session, lake, merged, model=model, kind=kind, window_start=start,
            window_end=end, granularity=granularity, version=version,
        )  # fmt: skip
        out.append(record)
        # The new roll-up covers everything the old one did, and more. Only the index row goes:
        # readers never list the lake, and deleting the object before the caller commits
        # could leave an index row without its object.
        for stale in existing:
            session.delete(stale)
    return out
