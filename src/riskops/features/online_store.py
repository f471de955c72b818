"""Recent events per entity for the online velocity features: in process, or shared in Redis.

A store keeps, per key (a model namespace, an entity column and a pseudonymised entity value),
the events of that key: time in UTC epoch microseconds and a payload tuple (floats, pseudonyms
or None). One :meth:`EventStore.exchange` call per scored record computes, for every key of the
record, the requested aggregates over the events in ``[lower_us, t_us)`` (strictly earlier)
and the latest event time strictly before ``t_us``, then (optionally) adds the record's event
to each key. The aggregates are computed where the events are (in this process, or inside Redis
by the script), so a record costs one round trip and a reply of a few numbers.

Retention: events older than ``retention_us`` behind the newest time of a key are trimmed. The
time of the latest trimmed (or expired) event is kept as the key's *floor*, so that "seconds since
previous" stays exact after gaps longer than any window.
"""

from __future__ import annotations

import bisect
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

Value = float | str | None
Payload = tuple[Value, ...]

DEFAULT_PREFIX = "riskops:online"
DEFAULT_MAX_KEYS = 1_000_000
DEFAULT_TTL_MARGIN_SECONDS = 3_600
# How long the latest event time of an entity is kept for "seconds since previous" after the
# entity's events have expired: gaps longer than this give null online.
DEFAULT_PREVIOUS_TTL_SECONDS = 400 * 86_400
_SEP = "\x1f"  # unit separator: never in a pseudonym (hex) nor in a float's repr


class OnlineStoreUnavailable(RuntimeError):
    """The online store cannot be reached or refused a request."""


# Aggregate codes: n = count of events, c = count of non-null values, s = sum (0 when none),
# m = max (null when none), d = number of distinct non-null values.
AGGREGATE_CODES = {"count": "c", "sum": "s", "max": "m", "distinct": "d"}
COUNT_EVENTS = "n"
Aggregation = tuple[int, str, int]  # (inclusive lower bound in µs, code, payload position)


@dataclass(frozen=True, slots=True)
class KeyQuery:
    """What one record needs from one key.

    ``key`` is ``<column>:<layout>:<pseudonym>`` (the store adds its prefix and the namespace);
    ``aggregates`` are computed over the key's events in ``[lower, t_us)``; ``previous`` asks
    for the latest event time strictly before the record; ``payload`` is the event to add.
    """

    key: str
    aggregates: tuple[Aggregation, ...]
    previous: bool
    payload: Payload


@dataclass(frozen=True, slots=True)
class KeyResult:
    """The aggregates of a key, in the order asked (max of nothing: NaN), and the latest
    earlier event time."""

    values: list[float]
    previous_us: int | None = None


def aggregate(
    times: Sequence[int], payloads: Sequence[Payload], t_us: int, spec: Aggregation
) -> float:
    """One aggregate over the time-ordered events strictly before ``t_us`` (the reference the
    Redis script follows)."""
    lower, code, position = spec
    hi = bisect.bisect_left(times, t_us)
    lo = bisect.bisect_left(times, lower, 0, hi)
    if code == COUNT_EVENTS:
        return float(hi - lo)
    present = [p[position] for p in payloads[lo:hi] if p[position] is not None]
    if code == "c":
        return float(len(present))
    if code == "d":
        return float(len(set(present)))
    if code == "s":
        total = 0.0
        for value in present:
            total += value  # in time order, as Spark's window frame adds them
        return total
    return max(present) if present else math.nan


class EventStore(Protocol):
    """Where the online path keeps recent events; one round trip per record."""

    def exchange(
        self,
        namespace: str,
        t_us: int,
        queries: Sequence[KeyQuery],
        *,
        record: bool,
        retention_us: int,
    ) -> list[KeyResult]:
        """Aggregate every query's events strictly before ``t_us``, then add the event when
        ``record``; atomically per call. Results are in the order of ``queries``."""
        ...


@dataclass(slots=True)
class _Series:
    times: list[int] = field(default_factory=list)
    payloads: list[Payload] = field(default_factory=list)
    floor: int | None = None  # latest trimmed event time


class InProcessStore:
    """Events in this process's memory, for one replica (the embedded default).

    Thread-safe (one lock). Memory is bounded twice: each key keeps only the events within
    ``retention_us`` of its newest time, and at most ``max_keys`` keys are kept, the least
    recently used being evicted first (``evictions`` counts them). An evicted key loses its
    history: its next record sees empty windows, as a brand-new entity would. Nothing is shared
    between processes or survives a restart.
    """

    def __init__(self, *, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        """A store holding at most ``max_keys`` keys."""
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys}")
        self.max_keys = max_keys
        self.evictions = 0
        self._series: OrderedDict[tuple[str, str], _Series] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Number of keys held."""
        return len(self._series)

    def event_count(self) -> int:
        """Number of events held over all keys."""
        with self._lock:
            return sum(len(s.times) for s in self._series.values())

    def exchange(
        self,
        namespace: str,
        t_us: int,
        queries: Sequence[KeyQuery],
        *,
        record: bool,
        retention_us: int,
    ) -> list[KeyResult]:
        """See :meth:`EventStore.exchange`."""
        out: list[KeyResult] = []
        with self._lock:
            for query in queries:
                name = (namespace, query.key)
                series = self._series.get(name)
                if series is None:
                    series = _Series()
                    if record:
                        self._series[name] = series
                        if len(self._series) > self.max_keys:
                            self._series.popitem(last=False)
                            self.evictions += 1
                else:
                    self._series.move_to_end(name)
                times, payloads = series.times, series.payloads
                values = [aggregate(times, payloads, t_us, spec) for spec in query.aggregates]
                previous = None
                if query.previous:
                    hi = bisect.bisect_left(times, t_us)
                    if hi:
                        previous = times[hi - 1]
                    elif series.floor is not None and series.floor < t_us:
                        previous = series.floor
                out.append(KeyResult(values, previous))
                if record:
                    _append(series, t_us, query.payload, retention_us)
        return out


def _append(series: _Series, t_us: int, payload: Payload, retention_us: int) -> None:
    at = bisect.bisect_right(series.times, t_us)
    series.times.insert(at, t_us)
    series.payloads.insert(at, payload)
    horizon = series.times[-1] - retention_us
    cut = bisect.bisect_left(series.times, horizon)
    if cut:
        trimmed = series.times[cut - 1]
        series.floor = trimmed if series.floor is None else max(series.floor, trimmed)
        del series.times[:cut]
        del series.payloads[:cut]


SCRIPT = "online_store.lua"  # the Lua script RedisStore runs, beside this module


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _encode(payload: Payload) -> str:
    fields = [
        "" if v is None else (f"f{v!r}" if isinstance(v, float) else f"s{v}") for v in payload
    ]
    return _SEP.join([os.urandom(8).hex(), *fields])


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class RedisStore:
    """Events in Redis, shared by every replica that uses the same URL and prefix.

    One Lua script per record reads all its windows and adds its event atomically (one round
    trip). Keys are ``<prefix>:{<namespace>}:ev:<column>:<layout>:<pseudonym>`` (events, TTL =
    retention + ``ttl_margin_seconds`` of wall-clock time since the last write) and
    ``<prefix>:{<namespace>}:meta:...`` (latest and floor times for "seconds since previous",
    TTL ``previous_ttl_seconds``). The ``{namespace}`` hash tag puts every key of a model in
    one Redis Cluster slot, so the script never spans slots. Members are a random 64-bit id and
    the payload, so equal timestamps never collide; values are pseudonyms or numbers, never
    raw ids.
    """

    def __init__(
        self,
        url_or_client: str | Any = "redis://127.0.0.1:6379/0",
        *,
        key_prefix: str = DEFAULT_PREFIX,
        ttl_margin_seconds: int = DEFAULT_TTL_MARGIN_SECONDS,
        previous_ttl_seconds: int = DEFAULT_PREVIOUS_TTL_SECONDS,
        socket_timeout: float = 2.0,
    ) -> None:
        """Connect (or adopt a ``redis.Redis`` client) and check that Redis answers."""
        import redis

        if not key_prefix or any(c in key_prefix for c in "{}"):
            raise ValueError(f"key_prefix must be non-empty and free of braces: {key_prefix!r}")
        if ttl_margin_seconds < 0 or previous_ttl_seconds < 1:
            raise ValueError("ttl_margin_seconds must be >= 0 and previous_ttl_seconds >= 1")
        if isinstance(url_or_client, str):
            self.url = _redacted(url_or_client)
            self._client = redis.Redis.from_url(
                url_or_client, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
            )
        else:
            self._client = url_or_client
            kwargs = url_or_client.connection_pool.connection_kwargs
            self.url = f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
        self.key_prefix = key_prefix
        self.ttl_margin_seconds = ttl_margin_seconds
        self.previous_ttl_seconds = previous_ttl_seconds
        self._errors = (redis.ConnectionError, redis.TimeoutError)
        self._response_error = redis.ResponseError
        try:
            self._client.ping()
        except self._errors as error:
            raise self._unavailable(error) from error
        script = resources.files("riskops.features").joinpath(SCRIPT).read_text("utf-8")
        self._script = self._client.register_script(script)

    def _unavailable(self, error: BaseException) -> OnlineStoreUnavailable:
        return OnlineStoreUnavailable(
            f"the online feature store Redis at {self.url} is unreachable ({error}); start Redis "
            "there (e.g. `redis-server --port 6379`) or point the scoring service at a reachable "
            "URL, or use the in-process store for a single replica"
        )

    def keys_of(self, namespace: str) -> list[str]:
        """Every key this store holds for ``namespace`` (for tests and operators; uses SCAN)."""
        pattern = f"{self.key_prefix}:{{{namespace}}}:*"
        return sorted(_text(k) for k in self._client.scan_iter(match=pattern, count=1000))

    def members_of(self, key: str) -> list[str]:
        """The raw members of one events key (for audits of what is stored)."""
        return [_text(m) for m in self._client.zrange(key, 0, -1)]

    def clear(self, namespace: str) -> int:
        """Delete every key of ``namespace``; returns how many were deleted."""
        keys = self.keys_of(namespace)
        for start in range(0, len(keys), 500):
            self._client.delete(*keys[start : start + 500])
        return len(keys)

    def exchange(
        self,
        namespace: str,
        t_us: int,
        queries: Sequence[KeyQuery],
        *,
        record: bool,
        retention_us: int,
    ) -> list[KeyResult]:
        """See :meth:`EventStore.exchange`."""
        if not queries:
            return []
        head = f"{self.key_prefix}:{{{namespace}}}"
        keys: list[str] = []
        argv: list[Any] = [
            t_us,
            1 if record else 0,
            retention_us,
            (retention_us // 1000) + self.ttl_margin_seconds * 1000,
            self.previous_ttl_seconds * 1000,
        ]
        for query in queries:
            keys += [f"{head}:ev:{query.key}", f"{head}:meta:{query.key}"]
            since = min((a[0] for a in query.aggregates), default=t_us)
            argv += [since, 1 if query.previous else 0, _encode(query.payload)]
            argv.append(len(query.aggregates))
            for lower, code, position in query.aggregates:
                argv += [lower, code, position]
        try:
            reply = self._script(keys=keys, args=argv)
        except self._errors as error:
            raise self._unavailable(error) from error
        except self._response_error as error:
            raise OnlineStoreUnavailable(
                f"Redis at {self.url} refused the online feature script for namespace "
                f"{namespace!r}: {error}"
            ) from error
        out: list[KeyResult] = []
        for values in reply:
            *aggregates, previous = (_text(v) for v in values)
            numbers = [float(v) if v else math.nan for v in aggregates]
            out.append(KeyResult(numbers, int(float(previous)) if previous else None))
        return out
