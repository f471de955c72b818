"""Monotonic constraints of the spec, carried from raw inputs to the features derived from them.

A constraint on ``income`` means little if the model may use an unconstrained ``log_income``:
the score could still rise with income through the copy. So every derived input inherits a
direction from its sources:

- an increasing transform (``log1p``, ``bucket``) keeps its column's direction;
- a ratio keeps the numerator's direction and the opposite of the denominator's (amounts are
  taken as positive, as they are for every ratio of the families);
- windowed features (velocity, time since previous) aggregate *earlier* rows of the entity, so
  the row's own raw value does not move them: they carry no constraint;
- any other transform of a constrained source, or sources pulling in opposite directions,
  cannot be constrained: such a feature is left out of the model, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from riskops.features.definitions import (
    Bucket,
    Definition,
    Log1p,
    Ratio,
    SincePrevious,
    Velocity,
)
from riskops.specs import ModelSpec


class ConflictingConstraint(ValueError):
    """A derived feature whose direction cannot follow its sources' constraints."""


@dataclass(frozen=True)
class Constraints:
    """Direction per numeric input (+1, -1; 0 = free) and the inputs left out, with why."""

    directions: dict[str, int]
    dropped: dict[str, str]


def declared(spec: ModelSpec) -> dict[str, int]:
    """The spec's monotonic expectations as +1 (increasing) / -1 (decreasing)."""
    return {m.feature: 1 if m.direction == "increasing" else -1 for m in spec.monotonic}


def _combine(name: str, parts: Iterable[tuple[str, int]]) -> int:
    found = {(source, d) for source, d in parts if d}
    signs = {d for _, d in found}
    if len(signs) > 1:
        shown = ", ".join(f"{s} {'+' if d > 0 else '-'}" for s, d in sorted(found))
        raise ConflictingConstraint(
            f"derived feature {name!r} would need opposite directions from its sources ({shown})"
        )
    return signs.pop() if signs else 0


def _direction(
    name: str, by_name: Mapping[str, Definition], raw: Mapping[str, int], seen: tuple[str, ...]
) -> int:
    definition = by_name.get(name)
    if definition is None:
        return raw.get(name, 0)
    if name in seen:
        raise ConflictingConstraint(f"derived feature {name!r} derives from itself")
    inner = (*seen, name)

    def of(column: str) -> int:
        return _direction(column, by_name, raw, inner)

    if isinstance(definition, Log1p | Bucket):
        return of(definition.column)
    if isinstance(definition, Ratio):
        parts = [(definition.numerator, of(definition.numerator))]
        parts.append((definition.denominator, -of(definition.denominator)))
        return _combine(name, parts)
    if isinstance(definition, Velocity | SincePrevious):
        return 0
    constrained = [c for c in definition.requires if of(c)]
    if constrained:
        raise ConflictingConstraint(
            f"derived feature {name!r} ({definition.kind}) is not a monotonic transform of "
            f"the constrained input(s) {constrained}"
        )
    return 0


def carried_constraints(
    spec: ModelSpec, numeric: Sequence[str], definitions: Iterable[Definition]
) -> Constraints:
    """Directions of every numeric input, raw ones from the spec and derived ones inherited."""
    raw = declared(spec)
    by_name = {d.name: d for d in definitions}
    directions: dict[str, int] = {}
    dropped: dict[str, str] = {}
    for name in numeric:
        try:
            directions[name] = _direction(name, by_name, raw, ())
        except ConflictingConstraint as error:
            dropped[name] = f"{error}; left out of the model of {spec.name}"
    return Constraints(directions, dropped)
