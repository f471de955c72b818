"""One request record to the model inputs of a feature plan, as the batch build computes them.

The scoring service's hot path: plain Python, no pandas. Stateless transforms follow
``riskops.features.definitions`` value for value (the same nulls and edge cases as
``pandas_build`` and ``spark_build``); windowed ones (Velocity, SincePrevious) aggregate the
entity's events in ``[t - window, t)`` from an :class:`~riskops.features.online_store.EventStore`,
strictly earlier, and then the record's event is added.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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
    Ratio,
    SincePrevious,
    Velocity,
)
from riskops.features.online_store import (
    AGGREGATE_CODES,
    COUNT_EVENTS,
    EventStore,
    KeyQuery,
    KeyResult,
)
from riskops.features.plan import FeaturePlan, check_vocabulary

NAN = math.nan
DEFAULT_MAX_LATENESS_SECONDS = 3_600
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class OnlineRow:
    """The model inputs of one record.

    ``features`` has every name of ``plan.features``: numeric as float (NaN for null),
    categorical as a vocabulary value, ``__missing__`` or ``__unseen__``. ``unseen`` lists the
    categorical columns whose value went to ``__unseen__``; ``entity`` is the HMAC pseudonym of
    the plan's entity column (None when absent or null).
    """

    features: dict[str, float | str]
    unseen: tuple[str, ...]
    entity: str | None


def as_float(value: Any, column: str) -> float:
    """A numeric input as the builds cast it to double: None and NaN are null (NaN)."""
    if value is None:
        return NAN
    if isinstance(value, float):
        return value  # NaN stays NaN: null, as pandas reads it
    if isinstance(value, int):
        return float(value)
    raise TypeError(f"column {column!r}: expected a number or None, got {type(value).__name__}")


def as_epoch_us(value: Any, column: str) -> int | None:
    """A time input as UTC epoch microseconds: an int, an aware datetime (naive = UTC), or None."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        delta = moment - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    raise TypeError(
        f"column {column!r}: expected UTC epoch microseconds (int) or None, "
        f"got {type(value).__name__}"
    )


def normalise(value: Any, known: frozenset[str]) -> str:
    """Category normalisation: strip + lower case; null or blank -> ``__missing__``; outside the
    vocabulary -> ``__unseen__``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    text = (value if isinstance(value, str) else str(value)).strip(WHITESPACE).lower()
    if not text:
        return MISSING
    return text if text in known else UNSEEN


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``; NaN when the denominator is null or zero."""
    if denominator != 0.0 and not math.isnan(denominator):
        return numerator / denominator
    return NAN


def log1p(x: float) -> float:
    """``log(1 + x)``; NaN when x is null or x <= -1."""
    return math.log1p(x) if x > -1.0 else NAN


def bucket(x: float, edges: tuple[float, ...]) -> float:
    """The number of ``edges`` that are <= x; NaN for null."""
    return NAN if math.isnan(x) else float(bisect.bisect_right(edges, x))


def hour_of_day(us: int | None) -> float:
    """UTC hour 0-23 of epoch microseconds; NaN for null."""
    return NAN if us is None else float((us % US_PER_DAY) // US_PER_HOUR)


def day_of_week(us: int | None) -> float:
    """UTC day of week, 0 = Monday, of epoch microseconds; NaN for null."""
    return NAN if us is None else float((us // US_PER_DAY + EPOCH_WEEKDAY) % 7)


def scalar_value(definition: Definition, record: Mapping[str, Any]) -> float:
    """One stateless derived feature of one record (Ratio, Log1p, Bucket, HourOfDay,
    DayOfWeek)."""
    if isinstance(definition, Ratio):
        num = as_float(record.get(definition.numerator), definition.numerator)
        den = as_float(record.get(definition.denominator), definition.denominator)
        return ratio(num, den)
    if isinstance(definition, Log1p):
        return log1p(as_float(record.get(definition.column), definition.column))
    if isinstance(definition, Bucket):
        return bucket(as_float(record.get(definition.column), definition.column), definition.edges)
    if isinstance(definition, HourOfDay):
        return hour_of_day(as_epoch_us(record.get(definition.timestamp), definition.timestamp))
    if isinstance(definition, DayOfWeek):
        return day_of_week(as_epoch_us(record.get(definition.timestamp), definition.timestamp))
    raise TypeError(f"not a stateless numeric definition: {definition!r}")


@dataclass(frozen=True)
class _Group:
    """The windowed features keyed by one entity column, and what its events carry."""

    entity: str
    definitions: tuple[Velocity | SincePrevious, ...]
    values: tuple[str, ...]  # payload columns
    numeric: tuple[bool, ...]  # per payload column: a float (sum/max) or a pseudonym
    aggregates: tuple[tuple[int, str, int], ...]  # per Velocity: (window µs, code, position)
    previous: bool
    layout: str  # fingerprint of the payload layout, part of the key


def _groups(plan: FeaturePlan) -> tuple[_Group, ...]:
    by_entity: dict[str, list[Velocity | SincePrevious]] = {}
    for definition in plan.derived:
        if isinstance(definition, Velocity | SincePrevious):
            if definition.timestamp != plan.timestamp_column:
                raise ValueError(
                    f"plan {plan.model!r}: windowed feature {definition.name!r} uses time column "
                    f"{definition.timestamp!r}, not the plan's {plan.timestamp_column!r}"
                )
            by_entity.setdefault(definition.entity, []).append(definition)
    groups = []
    for entity, definitions in by_entity.items():
        velocity = [d for d in definitions if isinstance(d, Velocity)]
        values = tuple(dict.fromkeys(d.column for d in velocity if d.column))
        numeric = tuple(
            any(d.column == c and d.agg in ("sum", "max") for d in velocity) for c in values
        )
        layout = ",".join(f"{c}:{'f' if n else 's'}" for c, n in zip(values, numeric, strict=True))
        groups.append(
            _Group(
                entity=entity,
                definitions=tuple(definitions),
                values=values,
                numeric=numeric,
                aggregates=tuple(
                    (
                        d.window_us,
                        COUNT_EVENTS if d.column is None else AGGREGATE_CODES[d.agg],
                        -1 if d.column is None else values.index(d.column),
                    )
                    for d in velocity
                ),
                previous=any(isinstance(d, SincePrevious) for d in definitions),
                layout=hashlib.sha256(layout.encode()).hexdigest()[:8],
            )
        )
    return tuple(groups)


class OnlineFeatureBuilder:
    """Turns one request record into the model inputs of ``plan``, as the batch build does.

    Windowed features read and extend ``store`` under ``namespace`` (default: the plan's model
    name). An event may arrive up to ``max_lateness_seconds`` behind the newest event of its key
    and still see its exact history; older history is trimmed beyond the longest window plus
    that lateness.
    """

    def __init__(
        self,
        plan: FeaturePlan,
        vocabulary: Mapping[str, Sequence[str]],
        *,
        pseudonym_key: str,
        store: EventStore | None,
        namespace: str | None = None,
        max_lateness_seconds: int = DEFAULT_MAX_LATENESS_SECONDS,
    ) -> None:
        """Compile ``plan`` for single records; raises ValueError on an inconsistent setup."""
        if not pseudonym_key:
            raise ValueError("pseudonym_key must not be empty")
        if max_lateness_seconds < 0:
            raise ValueError(f"max_lateness_seconds must be >= 0, got {max_lateness_seconds}")
        check_vocabulary(vocabulary, plan)
        self.plan = plan
        self.namespace = namespace or plan.model
        if not self.namespace or any(c in self.namespace for c in "{}"):
            raise ValueError(f"namespace must be non-empty and free of braces: {self.namespace!r}")
        self._groups = _groups(plan)
        if self._groups and store is None:
            names = [d.name for g in self._groups for d in g.definitions]
            raise ValueError(
                f"plan {plan.model!r} has windowed features ({len(names)}, e.g. {names[0]!r}): "
                "pass an online event store (InProcessStore or RedisStore)"
            )
        self.store = store
        longest = max((w for g in self._groups for w, _, _ in g.aggregates), default=0)
        self.retention_us = longest + max_lateness_seconds * 1_000_000
        self._hmac = hmac.new(pseudonym_key.encode("utf-8"), digestmod=hashlib.sha256)
        self._known = {c: frozenset(vocabulary[c]) for c in plan.categorical}
        self._stateless = tuple(
            (d.name, self._compile(d))
            for d in plan.derived
            if not isinstance(d, Velocity | SincePrevious)
        )

    @staticmethod
    def _compile(definition: Definition) -> Callable[[Mapping[str, Any]], float]:
        if isinstance(definition, Log1p):
            column = definition.column
            return lambda r: log1p(as_float(r.get(column), column))
        if isinstance(definition, Ratio):
            num, den = definition.numerator, definition.denominator
            return lambda r: ratio(as_float(r.get(num), num), as_float(r.get(den), den))
        if isinstance(definition, Bucket):
            column, edges = definition.column, definition.edges
            return lambda r: bucket(as_float(r.get(column), column), edges)
        if isinstance(definition, HourOfDay):
            ts = definition.timestamp
            return lambda r: hour_of_day(as_epoch_us(r.get(ts), ts))
        if isinstance(definition, DayOfWeek):
            ts = definition.timestamp
            return lambda r: day_of_week(as_epoch_us(r.get(ts), ts))
        raise TypeError(f"not a stateless numeric definition: {definition!r}")

    def pseudonym(self, value: Any) -> str | None:
        """HMAC-SHA256(key, str(value)) as hex, as ``pandas_build.pseudonymise``; None for null."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        digest = self._hmac.copy()
        digest.update(str(value).encode("utf-8"))
        return digest.hexdigest()

    def compute(self, record: Mapping[str, Any], *, record_event: bool = True) -> OnlineRow:
        """The features of ``record``; its event joins the history when ``record_event``."""
        plan = self.plan
        features: dict[str, float | str] = {}
        for column in plan.spec_numeric:
            features[column] = as_float(record.get(column), column)
        for name, compute in self._stateless:
            features[name] = compute(record)
        if self._groups:
            features.update(self._windowed(record, record_event))
        unseen: list[str] = []
        for column in plan.categorical:
            value = normalise(record.get(column), self._known[column])
            features[column] = value
            if value == UNSEEN:
                unseen.append(column)
        entity = self.pseudonym(record.get(plan.entity_column)) if plan.entity_column else None
        ordered = {name: features[name] for name in plan.features}
        return OnlineRow(ordered, tuple(unseen), entity)

    def _windowed(self, record: Mapping[str, Any], record_event: bool) -> dict[str, float]:
        timestamp = self.plan.timestamp_column
        t_us = as_epoch_us(record.get(timestamp), timestamp) if timestamp else None
        out: dict[str, float] = {}
        live: list[tuple[_Group, KeyQuery]] = []
        for group in self._groups:
            entity = self.pseudonym(record.get(group.entity))
            if entity is None or t_us is None:
                out.update((d.name, NAN) for d in group.definitions)
                continue
            payload = tuple(
                self._payload_value(record.get(column), column, numeric)
                for column, numeric in zip(group.values, group.numeric, strict=True)
            )
            key = f"{group.entity}:{group.layout}:{entity}"
            aggregates = tuple((t_us - w, code, pos) for w, code, pos in group.aggregates)
            live.append((group, KeyQuery(key, aggregates, group.previous, payload)))
        if not live:
            return out
        assert self.store is not None and t_us is not None
        results = self.store.exchange(
            self.namespace,
            t_us,
            [q for _, q in live],
            record=record_event,
            retention_us=self.retention_us,
        )
        for (group, _), result in zip(live, results, strict=True):
            out.update(self._group_values(group, t_us, result))
        return out

    def _payload_value(self, value: Any, column: str, numeric: bool) -> float | str | None:
        if numeric:
            x = as_float(value, column)
            return None if math.isnan(x) else x
        return self.pseudonym(value)  # raw ids never leave the process

    @staticmethod
    def _group_values(group: _Group, t_us: int, result: KeyResult) -> dict[str, float]:
        out: dict[str, float] = {}
        values = iter(result.values)
        for definition in group.definitions:
            if isinstance(definition, SincePrevious):
                previous = result.previous_us
                out[definition.name] = NAN if previous is None else (t_us - previous) / 1_000_000.0
            else:
                out[definition.name] = next(values)
        return out
