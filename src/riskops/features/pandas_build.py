"""Compile a feature plan to pandas: the online scoring path, value for value like Spark."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from riskops.features.definitions import (
    EPOCH_WEEKDAY,
    MISSING,
    UNSEEN,
    US_PER_DAY,
    US_PER_HOUR,
    WHITESPACE,
    Bucket,
    DayOfWeek,
    Definition,
    HourOfDay,
    Log1p,
    Normalised,
    Ratio,
    SincePrevious,
    Velocity,
)
from riskops.features.plan import FeaturePlan, check_columns, check_vocabulary


def epoch_us(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(UTC epoch microseconds as int64, validity mask); naive times are taken as UTC."""
    times = pd.to_datetime(series, utc=True)
    valid = times.notna().to_numpy()
    ns = times.dt.as_unit("ns").array.asi8
    return np.where(valid, ns // 1000, 0), valid


def pseudonymise(values: pd.Series, key: str) -> pd.Series:
    """Keyed hash HMAC-SHA256(key, value) as hex (RFC 2104), as Spark's ``pseudonym``."""
    secret = key.encode("utf-8")
    out = [
        None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))
        else hmac.new(secret, str(v).encode("utf-8"), hashlib.sha256).hexdigest()
        for v in values.astype(object)
    ]  # fmt: skip
    return pd.Series(out, index=values.index, dtype=object)


def normalised_raw(series: pd.Series) -> pd.Series:
    """Stripped, lower-cased text; None for null or blank (before the vocabulary)."""
    text = series.astype(object).where(series.notna(), None)
    out = [
        None if v is None else (str(v).strip(WHITESPACE).lower() or None)
        for v in text
    ]  # fmt: skip
    return pd.Series(out, index=series.index, dtype=object)


def _normalise(series: pd.Series, vocabulary: Sequence[str]) -> pd.Series:
    known = frozenset(vocabulary)
    text = normalised_raw(series)
    out = [MISSING if v is None else (v if v in known else UNSEEN) for v in text]
    return pd.Series(out, index=series.index, dtype=object)


def learn_vocabulary_pandas(frame: pd.DataFrame, plan: FeaturePlan) -> dict[str, list[str]]:
    """Same rule as :func:`riskops.features.spark_build.learn_vocabulary_spark`."""
    vocabulary: dict[str, list[str]] = {}
    for column in plan.categorical:
        counts = normalised_raw(frame[column]).dropna().value_counts()
        counts = counts[counts >= plan.min_category_count]
        rows = sorted((-int(n), str(v)) for v, n in counts.items())
        vocabulary[column] = sorted(v for _, v in rows[: plan.max_categories])
    return vocabulary


def _double(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="raise").astype("float64").to_numpy()


def _scalar(definition: Definition, frame: pd.DataFrame) -> np.ndarray:
    if isinstance(definition, Ratio):
        num, den = _double(frame[definition.numerator]), _double(frame[definition.denominator])
        # overflow: a huge ratio is inf, as in Spark, not a warning
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)
    if isinstance(definition, Log1p):
        x = _double(frame[definition.column])
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x > -1, np.log1p(np.where(x > -1, x, 0.0)), np.nan)
    if isinstance(definition, Bucket):
        x = _double(frame[definition.column])
        index = np.searchsorted(np.asarray(definition.edges), x, side="right").astype("float64")
        return np.where(np.isnan(x), np.nan, index)
    if isinstance(definition, HourOfDay | DayOfWeek):
        us, valid = epoch_us(frame[definition.timestamp])
        if isinstance(definition, HourOfDay):
            value = (us % US_PER_DAY) // US_PER_HOUR
        else:
            value = (us // US_PER_DAY + EPOCH_WEEKDAY) % 7
        return np.where(valid, value.astype("float64"), np.nan)
    raise TypeError(f"not a scalar definition: {definition!r}")


def _segment_reduce(op: np.ufunc, values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``op.reduce(values[lo:hi])`` per row (rows with an empty range get garbage)."""
    padded = np.append(values, values[:1] if len(values) else [0.0])
    bounds = np.empty(2 * len(lo), dtype=np.int64)
    bounds[0::2], bounds[1::2] = lo, hi
    bounds = np.minimum(bounds, len(values))
    return op.reduceat(padded, bounds)[0::2] if len(lo) else np.empty(0)


def _entity_frames(
    entity: pd.Series, us: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows sorted by (entity, time) and each row's search key: (order, keys, codes, ranks)."""
    codes = pd.factorize(entity, use_na_sentinel=True)[0].astype(np.int64)
    keep = valid & (codes >= 0)
    rows = np.flatnonzero(keep)
    order = rows[np.lexsort((us[rows], codes[rows]))]
    uniq = np.unique(us[rows])
    ranks = np.searchsorted(uniq, us[order], side="left")
    keys = codes[order] * (len(uniq) + 1) + ranks
    return order, keys, codes[order], uniq


def _windowed(
    definitions: Sequence[Velocity | SincePrevious], pool: pd.DataFrame
) -> dict[str, np.ndarray]:
    """Aggregates of every pool row over its strictly-earlier window (null where undefined)."""
    first = definitions[0]
    us, valid = epoch_us(pool[first.timestamp])
    order, keys, codes, uniq = _entity_frames(pool[first.entity], us, valid)
    t = us[order]
    base = codes * (len(uniq) + 1)

    def search(times: np.ndarray) -> np.ndarray:
        return np.searchsorted(keys, base + np.searchsorted(uniq, times, side="left"), "left")

    hi = search(t)  # first row at or after t: the frame ends just before it
    out: dict[str, np.ndarray] = {}
    for definition in definitions:
        result = np.full(len(pool), np.nan)
        if isinstance(definition, SincePrevious):
            start = search(np.full_like(t, np.iinfo(np.int64).min))
            has = hi > start
            value = np.where(has, (t - t[np.maximum(hi - 1, 0)]) / 1_000_000.0, np.nan)
        else:
            lo = search(t - definition.window_us)
            value = _aggregate(definition, pool, order, lo, hi)
        result[order] = value
        out[definition.name] = result
    return out


def _aggregate(
    definition: Velocity, pool: pd.DataFrame, order: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    empty = hi <= lo
    if definition.agg == "count" and definition.column is None:
        return (hi - lo).astype("float64")
    raw = pool[definition.column].iloc[order]
    if definition.agg == "count":
        running = np.concatenate(([0], np.cumsum(raw.notna().to_numpy())))
        return (running[hi] - running[lo]).astype("float64")
    if definition.agg == "distinct":
        codes = pd.factorize(raw, use_na_sentinel=True)[0]
        counts = [
            0 if e else int(np.count_nonzero(np.unique(codes[a:b]) >= 0))
            for a, b, e in zip(lo, hi, empty, strict=True)
        ]  # fmt: skip
        return np.asarray(counts, dtype="float64")
    x = _double(raw)
    present = ~np.isnan(x)
    if definition.agg == "sum":
        total = _segment_reduce(np.add, np.where(present, x, 0.0), lo, hi)
        return np.where(empty, 0.0, total)
    best = _segment_reduce(np.maximum, np.where(present, x, -np.inf), lo, hi)
    return np.where(empty | (best == -np.inf), np.nan, best)


def build_features_pandas(
    frame: pd.DataFrame,
    plan: FeaturePlan,
    vocabulary: Mapping[str, Sequence[str]],
    history: pd.DataFrame | None = None,
    *,
    pseudonym_key: str,
) -> pd.DataFrame:
    """The plan's columns for ``frame``, equal to Spark's for the same rows.

    Velocity features see ``history`` (earlier rows, raw like ``frame``) and the rows of
    ``frame`` itself, under the same strictly-earlier rule; history rows are not returned.
    """
    if not pseudonym_key:
        raise ValueError("pseudonym_key must not be empty")
    check_columns(frame.columns, plan, "the pandas frame")
    check_vocabulary(vocabulary, plan)
    out: dict[str, object] = {}
    for name in plan.passthrough:
        if name not in frame.columns:
            continue
        values = frame[name]
        out[name] = pseudonymise(values, pseudonym_key) if name == plan.entity_column else values
    for column in plan.spec_numeric:
        out[column] = _double(frame[column])
    windowed = _windowed_features(frame, plan, history)
    for definition in plan.derived:
        if isinstance(definition, Velocity | SincePrevious):
            out[definition.name] = windowed[definition.name]
        else:
            out[definition.name] = _scalar(definition, frame)
    for definition in plan.definitions:
        if isinstance(definition, Normalised):
            values = _normalise(frame[definition.column], vocabulary[definition.column])
            out[definition.column] = values
    # .array keeps extension dtypes (tz-aware times, nullable ints) and ignores the index.
    columns = {k: (v.array if isinstance(v, pd.Series) else v) for k, v in out.items()}
    return pd.DataFrame(columns, index=frame.index)


def _windowed_features(
    frame: pd.DataFrame, plan: FeaturePlan, history: pd.DataFrame | None
) -> dict[str, np.ndarray]:
    """Windowed features of ``frame``'s rows, grouped by (entity, timestamp) pair."""
    groups: dict[tuple[str, str], list[Velocity | SincePrevious]] = {}
    for definition in plan.derived:
        if isinstance(definition, Velocity | SincePrevious):
            groups.setdefault((definition.entity, definition.timestamp), []).append(definition)
    out: dict[str, np.ndarray] = {}
    for (entity, timestamp), definitions in groups.items():
        needed = list(dict.fromkeys([entity, timestamp, *_value_columns(definitions)]))
        parts = [frame[needed].reset_index(drop=True)]
        if history is not None and len(history):
            missing = [c for c in needed if c not in history.columns]
            if missing:
                raise ValueError(f"history lacks columns {missing} needed by velocity features")
            parts.insert(0, history[needed].reset_index(drop=True))
        pool = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        offset = len(pool) - len(frame)
        for name, values in _windowed(definitions, pool).items():
            out[name] = values[offset:]
    return out


def _value_columns(definitions: Sequence[Velocity | SincePrevious]) -> list[str]:
    return [d.column for d in definitions if isinstance(d, Velocity) and d.column]


def rederive(
    frame: pd.DataFrame, definitions: Sequence[Definition], changed: Sequence[str]
) -> pd.DataFrame:
    """``frame`` with every scalar feature derived (transitively) from ``changed`` recomputed.

    The same definitions as the batch build, applied to rows whose raw inputs were edited (the
    applicant-level monotonicity check). Windowed features are kept as they are: they aggregate
    strictly earlier rows of the entity, never the row's own values.
    """
    out = frame.copy()
    dirty = set(changed)
    for definition in definitions:
        if isinstance(definition, Velocity | SincePrevious | Normalised):
            continue
        if not dirty & set(definition.requires):
            continue
        missing = [c for c in definition.requires if c not in out.columns]
        if missing:
            raise ValueError(
                f"cannot recompute derived feature {definition.name!r}: its inputs {missing} "
                "are not in the rows"
            )
        out[definition.name] = _scalar(definition, out)
        dirty.add(definition.name)
    return out
