"""Which columns a profile covers, and in which role; identifiers are refused here, once."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from riskops.specs import ModelSpec

Role = Literal["numeric", "categorical"]

# Keys of DatasetProfileView.metadata where riskops records the role of each profiled column
# (whylogs keeps string metadata through merge and serialisation).
NUMERIC_KEY = "riskops.numeric"
CATEGORICAL_KEY = "riskops.categorical"


class ProfileError(ValueError):
    """A profile could not be built or read; the message names the column or object."""


@dataclass(frozen=True)
class ProfileSchema:
    """The columns to profile, by role, and the identifier columns that must never be profiled.

    Args:
        numeric: columns profiled as numbers (KLL quantile sketch, mean, variance).
        categorical: columns profiled as categories (frequent-items sketch).
        identifiers: columns refused outright, e.g. the spec's ``entity_column``: profiles are
            kept for years and shipped to dashboards, and a sketch of identifiers leaks them.
    """

    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    identifiers: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "numeric", tuple(self.numeric))
        object.__setattr__(self, "categorical", tuple(self.categorical))
        object.__setattr__(self, "identifiers", tuple(c for c in self.identifiers if c))
        cols = self.columns
        if not cols:
            raise ProfileError("nothing to profile: name a numeric or categorical column")
        dupes = sorted({c for c in cols if cols.count(c) > 1})
        if dupes:
            raise ProfileError(f"columns named twice (numeric and categorical?): {dupes}")
        refused = sorted(set(cols) & set(self.identifiers))
        if refused:
            raise ProfileError(
                f"refusing to profile identifier column(s) {refused}: identifiers (the spec's "
                "entity_column / data.id_column) are never profiled; drop them from the columns"
            )

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)

    def role(self, column: str) -> Role:
        return "numeric" if column in self.numeric else "categorical"

    @classmethod
    def from_spec(
        cls,
        spec: ModelSpec,
        *,
        numeric: Iterable[str] | None = None,
        categorical: Iterable[str] | None = None,
    ) -> ProfileSchema:
        """The spec's features (or the columns given), with the spec's identifiers refused.

        For prediction drift pass ``numeric=["score"], categorical=[]``.
        """
        ids = (spec.entity_column or "", spec.data.id_column or "")
        return cls(
            numeric=tuple(spec.features.numeric if numeric is None else numeric),
            categorical=tuple(spec.features.categorical if categorical is None else categorical),
            identifiers=ids,
        )

    def metadata(self) -> dict[str, str]:
        return {
            NUMERIC_KEY: json.dumps(list(self.numeric)),
            CATEGORICAL_KEY: json.dumps(list(self.categorical)),
        }


def roles_from_metadata(metadata: Mapping[str, str]) -> dict[str, Role]:
    """Column -> role as recorded by riskops' profiler; empty for views from ``why.log``."""
    roles: dict[str, Role] = {}
    for key, role in ((NUMERIC_KEY, "numeric"), (CATEGORICAL_KEY, "categorical")):
        raw = metadata.get(key)
        if raw:
            for col in json.loads(raw):
                roles[col] = role  # type: ignore[assignment]
    return roles
