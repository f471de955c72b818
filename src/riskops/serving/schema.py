"""The request schema of a served model, derived from its spec and feature plan.

A scoring request carries the raw inputs the feature plan needs, exactly as the landed data
carries them: the spec's features, the inputs of the derived features (``loan_amount``,
``merchant_id``, ``event_time``), the entity and the time. Each is checked here: type, range
(``columns.<name>.min/max``), closed category sets (``columns.<name>.allowed``); every problem is
reported with the field it concerns, so a client can fix all of them at once. Nothing in here
touches pandas: it runs per request.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from dataclasses import dataclass
from typing import Any, Literal

from riskops.features.definitions import WHITESPACE, SincePrevious, Velocity
from riskops.features.plan import FeaturePlan
from riskops.specs import ModelSpec

Kind = Literal["number", "category", "id", "timestamp"]
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# An event time ahead of the service's clock by more than this is refused: one far-future event
# would otherwise push a card's history out of every velocity window (the store trims behind
# the newest event of a key).
MAX_CLOCK_SKEW_SECONDS = 300


@dataclass(frozen=True, slots=True)
class Field:
    """One input field of a request."""

    name: str
    kind: Kind
    required: bool
    nullable: bool
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[str, ...] | None = None  # normalised (stripped, lower case)


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong with one field of one record."""

    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """JSON form of the problem."""
        return {"field": self.field, "message": self.message}


def _iso_to_us(text: str) -> int | None:
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)  # naive times are UTC, as in the batch build
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class RequestSchema:
    """Checks and normalises request records of one model version."""

    def __init__(self, model: str, fields: list[Field]) -> None:
        self.model = model
        self.fields = {f.name: f for f in fields}
        big = sys.float_info.max
        self._checks = [
            (
                f.name,
                f,
                (f.minimum if f.minimum is not None else -big) if f.kind == "number" else None,
                f.maximum if f.maximum is not None else big,
            )
            for f in fields
        ]

    @classmethod
    def from_spec(
        cls, spec: ModelSpec, plan: FeaturePlan | None, inputs: list[str]
    ) -> RequestSchema:
        """The fields a request for ``spec`` must carry; ``inputs`` are the model's inputs when
        there is no plan (a version trained on its own features)."""
        ids: set[str] = set()
        times: set[str] = set()
        if plan is not None:
            for definition in plan.derived:
                if isinstance(definition, Velocity | SincePrevious):
                    ids.add(definition.entity)
                    times.add(definition.timestamp)
                    if isinstance(definition, Velocity) and definition.agg == "distinct":
                        ids.add(str(definition.column))
            names = list(plan.required_inputs)
        else:
            names = list(inputs)
        for column in (spec.entity_column, spec.timestamp_column):
            if column and column not in names and (plan is None or column in ids | times):
                names.append(column)
        if spec.entity_column:
            ids.add(spec.entity_column)
        if spec.timestamp_column:
            times.add(spec.timestamp_column)
        categorical = set(spec.features.categorical)
        fields = []
        for name in names:
            rule = spec.columns.get(name)
            if name in times:
                kind: Kind = "timestamp"
            elif name in ids:
                kind = "id"
            elif name in categorical:
                kind = "category"
            else:
                kind = "number"
            allowed = None
            if rule is not None and rule.allowed is not None:
                allowed = tuple(v.strip(WHITESPACE).lower() for v in rule.allowed)
            fields.append(
                Field(
                    name=name,
                    kind=kind,
                    required=True,
                    # who and when must be said; a feature may be missing (the model handles it)
                    nullable=kind in ("number", "category"),
                    minimum=rule.min if rule is not None else None,
                    maximum=rule.max if rule is not None else None,
                    allowed=allowed,
                )
            )
        if spec.data.id_column and spec.data.id_column not in names:
            fields.append(Field(spec.data.id_column, "id", required=False, nullable=True))
        return cls(spec.name, fields)

    def check(self, record: Any, where: str) -> tuple[dict[str, Any], list[Problem]]:
        """``(normalised record, problems)``: numbers as float or None, categories and ids as
        str or None, timestamps as UTC epoch microseconds. ``where`` prefixes field paths."""
        if not isinstance(record, dict):
            return {}, [Problem(where or "(body)", f"expected an object, got {_kind(record)}")]
        problems: list[Problem] = []
        out: dict[str, Any] = {}
        for name in record:
            if name not in self.fields:
                problems.append(Problem(f"{where}{name}", "unknown field for this model"))
        for name, field, low, high in self._checks:
            if low is not None and name in record:  # a number: the common case, inline
                value = record[name]
                if type(value) is float or type(value) is int:
                    number = float(value)
                    if low <= number <= high:  # NaN and inf fail (the bounds are finite)
                        out[name] = number
                        continue
            path = f"{where}{name}"
            if name not in record:
                if field.required:
                    problems.append(Problem(path, f"required {field.kind} field is missing"))
                else:
                    out[name] = None
                continue
            value, problem = _check_value(field, record[name])
            if problem:
                problems.append(Problem(path, problem))
            out[name] = value
        return out, problems

    def json_schema(self) -> dict[str, Any]:
        """JSON Schema of one record (the OpenAPI component of this model)."""
        properties: dict[str, Any] = {}
        for field in self.fields.values():
            prop: dict[str, Any]
            if field.kind == "number":
                prop = {"type": "number"}
                if field.minimum is not None:
                    prop["minimum"] = field.minimum
                if field.maximum is not None:
                    prop["maximum"] = field.maximum
            elif field.kind == "timestamp":
                prop = {"type": "string", "format": "date-time", "description": "UTC if naive"}
            elif field.kind == "id":
                prop = {"type": "string", "description": "pseudonymised before it is stored"}
            else:
                prop = {"type": "string"}
                if field.allowed is not None:
                    prop["enum"] = list(field.allowed)
                else:
                    prop["description"] = "values the model never saw score as unseen"
            if field.nullable:
                prop = {"anyOf": [prop, {"type": "null"}]}
            properties[field.name] = prop
        return {
            "type": "object",
            "additionalProperties": False,
            "required": [f.name for f in self.fields.values() if f.required],
            "properties": properties,
        }


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _check_value(field: Field, value: Any) -> tuple[Any, str | None]:
    if value is None:
        return None, None if field.nullable else f"must not be null ({field.kind})"
    kind = field.kind
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, f"expected a number, got {_kind(value)} {_describe(value)}"
        number = float(value)
        if not math.isfinite(number):
            return None, "expected a finite number"
        if field.minimum is not None and number < field.minimum:
            return None, f"{number:g} is below the minimum {field.minimum:g}"
        if field.maximum is not None and number > field.maximum:
            return None, f"{number:g} is above the maximum {field.maximum:g}"
        return number, None
    if kind == "timestamp":
        if not isinstance(value, str):
            return None, f"expected an ISO-8601 date-time string, got {_kind(value)}"
        micros = _iso_to_us(value)
        if micros is None:
            return None, f"not an ISO-8601 date-time: {_describe(value)}"
        if micros < 0:
            return None, f"{_describe(value)} is before 1970"
        now_us = int(dt.datetime.now(dt.UTC).timestamp() * 1_000_000)
        if micros > now_us + MAX_CLOCK_SKEW_SECONDS * 1_000_000:
            return None, f"{_describe(value)} is in the future (more than 5 minutes ahead)"
        return micros, None
    # ids may come as integers (they are hashed as text, as the batch build does); a category
    # is text: 7 and "7" are different categories to the model, so a number is refused
    allowed_types = (str, int) if kind == "id" else (str,)
    if isinstance(value, bool) or not isinstance(value, allowed_types):
        return None, f"expected a string, got {_kind(value)} {_describe(value)}"
    text = str(value)
    if len(text) > 256:
        return None, "longer than 256 characters"
    if kind == "id":
        return (text, None) if text.strip() else (None, "must not be blank")
    if field.allowed is not None:
        normal = text.strip(WHITESPACE).lower()
        if normal and normal not in field.allowed:
            return None, f"{_describe(value)} is not one of {list(field.allowed)}"
    return text, None
