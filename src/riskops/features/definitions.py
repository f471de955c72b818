"""Feature transforms as data: each is declared once and compiled to Spark and to pandas.

The semantics below are the contract both compilers follow (and the tests check):

- every numeric output is a double; null in, null out;
- times are UTC epoch microseconds; hour and day of week are computed from them, so the
  session time zone never matters;
- a velocity aggregate of a row sees only rows of the same entity whose time is in
  ``[t - window, t)``: strictly earlier, so rows with the same timestamp never see each other;
  rows with a null entity or time get null and are nobody's history.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from itertools import pairwise
from typing import Any, ClassVar, Literal

MISSING = "__missing__"
UNSEEN = "__unseen__"
# What "strip" removes, spelled out so that Spark (btrim) and Python (str.strip) agree.
WHITESPACE = " \t\n\r\x0b\x0c"
AGGREGATES = ("count", "sum", "max", "distinct")
Aggregate = Literal["count", "sum", "max", "distinct"]


US_PER_HOUR = 3_600_000_000
US_PER_DAY = 24 * US_PER_HOUR
EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday; Monday = 0


def _check_name(value: str, what: str) -> None:
    if not isinstance(value, str) or not value or value != value.strip():
        raise ValueError(f"{what} must be a non-empty column name, got {value!r}")


@dataclass(frozen=True)
class Ratio:
    """``numerator / denominator``; null when the denominator is null or zero."""

    kind: ClassVar[str] = "ratio"
    name: str
    numerator: str
    denominator: str

    @property
    def requires(self) -> tuple[str, ...]:
        """Input columns."""
        return (self.numerator, self.denominator)


@dataclass(frozen=True)
class Log1p:
    """``log(1 + x)``; null when x is null or x <= -1."""

    kind: ClassVar[str] = "log1p"
    name: str
    column: str

    @property
    def requires(self) -> tuple[str, ...]:
        """Input columns."""
        return (self.column,)


@dataclass(frozen=True)
class Bucket:
    """Index of the bucket of x: the number of ``edges`` that are <= x (0 .. len(edges))."""

    kind: ClassVar[str] = "bucket"
    name: str
    column: str
    edges: tuple[float, ...]

    def __post_init__(self) -> None:
        edges = tuple(float(e) for e in self.edges)
        if not edges or any(b <= a for a, b in pairwise(edges)):
            raise ValueError(f"bucket {self.name!r}: edges must be increasing, got {edges}")
        object.__setattr__(self, "edges", edges)

    @property
    def requires(self) -> tuple[str, ...]:
        """Input columns."""
        return (self.column,)


@dataclass(frozen=True)
class HourOfDay:
    """UTC hour of the timestamp, 0-23."""

    kind: ClassVar[str] = "hour_of_day"
    name: str
    timestamp: str

    @property
    def requires(self) -> tuple[str, ...]:
        """Input columns."""
        return (self.timestamp,)


@dataclass(frozen=True)
class DayOfWeek:
    """UTC day of week of the timestamp, 0 = Monday .. 6 = Sunday."""

    kind: ClassVar[str] = "day_of_week"
    name: str
    timestamp: str

    @property
    def requires(self) -> tuple[str, ...]:
        """Input columns."""
        return (self.timestamp,)


@dataclass(frozen=True)
class Normalised:
    """Category normalisation in place: strip + lowercase; null or blank -> ``__missing__``;
    a value outside the learned vocabulary -> ``__unseen__``."""

    kind: ClassVar[str] = "normalised"
    column: str

    @property
    def name(self) -> str:
        """The output column: the input column, normalised in place."""
        return self.column

    @property
    def requires(self) -> tuple[str, ...]:
        """Input columns."""
        return (self.column,)


@dataclass(frozen=True)
class Velocity:
    """``agg`` of ``column`` over the entity's rows in ``[t - window_seconds, t)``.

    count: rows (or non-null ``column`` values when given); sum: 0 when there are none;
    max: null when there are none; distinct: number of distinct non-null values.
    """

    kind: ClassVar[str] = "velocity"
    name: str
    entity: str
    agg: Aggregate
    column: str | None
    window_seconds: int
    timestamp: str

    def __post_init__(self) -> None:
        if self.agg not in AGGREGATES:
            raise ValueError(f"velocity {self.name!r}: agg must be one of {AGGREGATES}")
        if self.agg != "count" and self.column is None:
            raise ValueError(f"velocity {self.name!r}: agg {self.agg!r} needs a column")
        if int(self.window_seconds) != self.window_seconds or self.window_seconds <= 0:
            raise ValueError(f"velocity {self.name!r}: window_seconds must be a positive int")
        object.__setattr__(self, "window_seconds", int(self.window_seconds))

    @property
    def window_us(self) -> int:
        """The window in microseconds."""
        return self.window_seconds * 1_000_000

    @property
    def requires(self) -> tuple[str, ...]:
        """Input columns."""
        extra = (self.column,) if self.column else ()
        return (self.entity, self.timestamp, *extra)


@dataclass(frozen=True)
class SincePrevious:
    """Seconds since the entity's latest strictly earlier row; null when there is none."""

    kind: ClassVar[str] = "since_previous"
    name: str
    entity: str
    timestamp: str

    @property
    def requires(self) -> tuple[str, ...]:
        """Input columns."""
        return (self.entity, self.timestamp)


Definition = Ratio | Log1p | Bucket | HourOfDay | DayOfWeek | Normalised | Velocity | SincePrevious
KINDS: dict[str, type[Definition]] = {
    cls.kind: cls
    for cls in (Ratio, Log1p, Bucket, HourOfDay, DayOfWeek, Normalised, Velocity, SincePrevious)
}
ENTITY_WINDOWED = (Velocity, SincePrevious)


def validate(definition: Definition) -> Definition:
    """Check the column names of a definition; returns it."""
    for field in fields(definition):
        value = getattr(definition, field.name)
        if isinstance(value, str):
            _check_name(value, f"{definition.kind}.{field.name}")
    return definition


def definition_to_dict(definition: Definition) -> dict[str, Any]:
    """JSON-ready form with its ``kind``; inverse of :func:`definition_from_dict`."""
    data = asdict(definition)
    if isinstance(definition, Bucket):
        data["edges"] = list(definition.edges)
    return {"kind": definition.kind, **data}


def definition_from_dict(data: dict[str, Any]) -> Definition:
    """Rebuild a definition from :func:`definition_to_dict` output."""
    body = dict(data)
    kind = body.pop("kind", None)
    if kind not in KINDS:
        raise ValueError(f"unknown feature definition kind {kind!r}")
    if kind == Bucket.kind:
        body["edges"] = tuple(body["edges"])
    return validate(KINDS[kind](**body))
