"""The feature plan: from a spec and the columns at hand to an ordered, hashable recipe."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from riskops.features.definitions import (
    WHITESPACE,
    Definition,
    Normalised,
    definition_from_dict,
    definition_to_dict,
)
from riskops.features.families import derived_features
from riskops.specs import ModelSpec

# Bump when the meaning of a definition changes without its fields changing.
SEMANTICS_VERSION = 1
MIN_CATEGORY_COUNT = 5
MAX_CATEGORIES = 200


@dataclass(frozen=True)
class SkippedFeature:
    """A derived feature the plan left out, and the input columns that were missing."""

    name: str
    missing: tuple[str, ...]


@dataclass(frozen=True)
class FeaturePlan:
    """What to build, in which order; the same plan drives Spark and pandas."""

    model: str
    family: str
    numeric: tuple[str, ...]  # model inputs: spec numeric features, then derived ones
    categorical: tuple[str, ...]  # model inputs: spec categorical features, normalised
    id_column: str | None
    entity_column: str | None  # pseudonymised in every output
    timestamp_column: str | None
    target: str
    protected: tuple[str, ...]  # protected attributes that are not features: passthrough
    definitions: tuple[Definition, ...]  # derived features, then one Normalised per category
    skipped: tuple[SkippedFeature, ...] = ()
    min_category_count: int = MIN_CATEGORY_COUNT
    max_categories: int = MAX_CATEGORIES

    @property
    def derived(self) -> tuple[Definition, ...]:
        """The derived feature definitions (everything but category normalisation)."""
        return tuple(d for d in self.definitions if not isinstance(d, Normalised))

    @property
    def spec_numeric(self) -> tuple[str, ...]:
        """Numeric features declared by the spec (copied as doubles)."""
        names = {d.name for d in self.derived}
        return tuple(c for c in self.numeric if c not in names)

    @property
    def passthrough(self) -> tuple[str, ...]:
        """Columns copied beside the features: id, entity (pseudonymised), time, target,
        protected attributes."""
        cols = (self.id_column, self.entity_column, self.timestamp_column, self.target)
        return tuple(dict.fromkeys([*(c for c in cols if c), *self.protected]))

    @property
    def features(self) -> tuple[str, ...]:
        """Model input columns, numeric then categorical."""
        return (*self.numeric, *self.categorical)

    @property
    def output_columns(self) -> tuple[str, ...]:
        """Every column a build returns, in order (passthrough ones only when present)."""
        return (*self.passthrough, *self.features)

    @property
    def required_inputs(self) -> tuple[str, ...]:
        """Input columns every build needs (passthrough columns are copied when present)."""
        cols: list[str] = [*self.spec_numeric, *self.categorical]
        for definition in self.derived:
            cols += definition.requires
        return tuple(dict.fromkeys(cols))

    def sources(self) -> dict[str, tuple[str, ...]]:
        """Every model input mapped to the raw input columns it derives from (itself if raw).

        Reason codes group contributions by these sources, and monotonic constraints carry
        over from a raw input to the features derived from it.
        """
        out: dict[str, tuple[str, ...]] = {}
        by_name = {d.name: d for d in self.derived}

        def resolve(name: str) -> tuple[str, ...]:
            if name in out:
                return out[name]
            definition = by_name.get(name)
            if definition is None:
                found: tuple[str, ...] = (name,)
            else:
                found = tuple(dict.fromkeys(c for r in definition.requires for c in resolve(r)))
            out[name] = found
            return found

        for feature in self.features:
            resolve(feature)
        return {feature: out[feature] for feature in self.features}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; inverse of :meth:`from_dict`."""
        return {
            "semantics": SEMANTICS_VERSION,
            "model": self.model,
            "family": self.family,
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "id_column": self.id_column,
            "entity_column": self.entity_column,
            "timestamp_column": self.timestamp_column,
            "target": self.target,
            "protected": list(self.protected),
            "definitions": [definition_to_dict(d) for d in self.definitions],
            "skipped": [{"name": s.name, "missing": list(s.missing)} for s in self.skipped],
            "min_category_count": self.min_category_count,
            "max_categories": self.max_categories,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeaturePlan:
        """Rebuild a plan stored by :meth:`to_dict` (e.g. from a feature set manifest)."""
        if data.get("semantics") != SEMANTICS_VERSION:
            raise ValueError(
                f"plan semantics {data.get('semantics')!r} != {SEMANTICS_VERSION}: "
                "rebuild the feature set with this code"
            )
        return cls(
            model=data["model"],
            family=data["family"],
            numeric=tuple(data["numeric"]),
            categorical=tuple(data["categorical"]),
            id_column=data["id_column"],
            entity_column=data["entity_column"],
            timestamp_column=data["timestamp_column"],
            target=data["target"],
            protected=tuple(data["protected"]),
            definitions=tuple(definition_from_dict(d) for d in data["definitions"]),
            skipped=tuple(SkippedFeature(s["name"], tuple(s["missing"])) for s in data["skipped"]),
            min_category_count=int(data["min_category_count"]),
            max_categories=int(data["max_categories"]),
        )

    def canonical_json(self) -> str:
        """Sorted, compact JSON of :meth:`to_dict`: the input of the definitions hash."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def definitions_hash(self) -> str:
        """sha256 of the canonical plan: changes whenever any definition or list changes."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


def check_columns(columns: Iterable[str], plan: FeaturePlan, where: str) -> None:
    """Raise ValueError naming the inputs of ``plan`` that ``columns`` lacks."""
    have = set(columns)
    missing = [c for c in plan.required_inputs if c not in have]
    if missing:
        raise ValueError(f"{where} lacks input columns of the feature plan: {missing}")


def check_vocabulary(vocabulary: Mapping[str, Sequence[str]], plan: FeaturePlan) -> None:
    """Raise ValueError unless the vocabulary covers every categorical feature of ``plan``
    with normalised values (stripped, lower case, not blank)."""
    missing = [c for c in plan.categorical if c not in vocabulary]
    if missing:
        raise ValueError(f"vocabulary has no entry for categorical features {missing}")
    for column in plan.categorical:
        bad = [v for v in vocabulary[column] if not v or v != v.strip(WHITESPACE).lower()]
        if bad:
            raise ValueError(f"vocabulary of {column!r} has values that are not normalised: {bad}")


def feature_plan(
    spec: ModelSpec,
    available_columns: Iterable[str],
    *,
    min_category_count: int = MIN_CATEGORY_COUNT,
    max_categories: int = MAX_CATEGORIES,
) -> FeaturePlan:
    """The plan of ``spec`` for data with ``available_columns``; derived features whose inputs
    are absent are skipped and listed in ``plan.skipped``."""
    available = list(dict.fromkeys(available_columns))
    have = set(available)
    missing = [c for c in spec.feature_columns if c not in have]
    if missing:
        raise ValueError(f"spec {spec.name!r}: feature columns not in the data: {missing}")
    if min_category_count < 1 or max_categories < 1:
        raise ValueError("min_category_count and max_categories must be >= 1")
    taken = set(spec.required_columns) | set(spec.protected_attributes)
    built: list[Definition] = []
    skipped: list[SkippedFeature] = []
    for definition in derived_features(spec.family):
        if definition.name in taken:
            raise ValueError(
                f"spec {spec.name!r}: derived feature {definition.name!r} clashes with a column "
                "the spec declares"
            )
        absent = tuple(c for c in definition.requires if c not in have)
        if absent:
            skipped.append(SkippedFeature(definition.name, absent))
            continue
        built.append(definition)
        taken.add(definition.name)
    features = set(spec.feature_columns)
    return FeaturePlan(
        model=spec.name,
        family=spec.family,
        numeric=(*spec.features.numeric, *(d.name for d in built)),
        categorical=tuple(spec.features.categorical),
        id_column=spec.data.id_column if spec.data.id_column in have else None,
        entity_column=spec.entity_column if spec.entity_column in have else None,
        timestamp_column=spec.timestamp_column if spec.timestamp_column in have else None,
        target=spec.target,
        protected=tuple(c for c in spec.protected_attributes if c not in features),
        definitions=(*built, *(Normalised(c) for c in spec.features.categorical)),
        skipped=tuple(skipped),
        min_category_count=min_category_count,
        max_categories=max_categories,
    )
