"""Drift knobs: parse ``kind=level`` settings and apply them to generated columns."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np

KINDS: tuple[str, ...] = ("covariate", "prior", "concept", "new_categories", "missing")

# How strongly level 1.0 multiplies the positive rate under ``prior`` drift: rate * (1 + level*k).
PRIOR_K = 1.0


@dataclass(frozen=True)
class Drift:
    """Drift levels by kind; 0 means none. Levels above 1 are allowed and push further.

    - covariate: feature distributions shift (family-specific, e.g. incomes down, amounts up).
    - prior: the positive rate is multiplied by ``1 + level * PRIOR_K``.
    - concept: the feature-to-label relationship changes (a feature's role flips).
    - new_categories: a share ``level`` of one open categorical column gets unseen values.
    - missing: a share ``level`` of one numeric feature becomes null.
    """

    covariate: float = 0.0
    prior: float = 0.0
    concept: float = 0.0
    new_categories: float = 0.0
    missing: float = 0.0

    @property
    def active(self) -> dict[str, float]:
        """Non-zero levels by kind."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}

    @property
    def prior_factor(self) -> float:
        """Multiplier on the positive rate."""
        return 1.0 + self.prior * PRIOR_K

    @property
    def concept_share(self) -> float:
        """Share of positives that follow the new (drifted) pattern, in [0, 1]."""
        return min(1.0, self.concept)

    def new_categories_in(
        self,
        rng: np.random.Generator,
        categories: Sequence[str],
        idx: np.ndarray,
        unseen: Sequence[str],
    ) -> tuple[list[str], np.ndarray]:
        """Replace a share ``new_categories`` of ``idx`` with indices of ``unseen`` labels."""
        cats = list(categories)
        share = min(1.0, self.new_categories)
        if share <= 0 or len(idx) == 0:
            return cats, idx
        hit = rng.random(len(idx)) < share
        out = idx.copy()
        out[hit] = len(cats) + rng.integers(0, len(unseen), int(hit.sum()))
        return [*cats, *unseen], out

    def missing_mask(self, rng: np.random.Generator, n: int) -> np.ndarray | None:
        """Null mask for the family's ``missing`` column, or None when there is no such drift."""
        share = min(1.0, self.missing)
        if share <= 0:
            return None
        return rng.random(n) < share


def as_drift(value: Drift | Mapping[str, float] | None) -> Drift:
    """Validate a ``{kind: level}`` mapping (or pass a Drift through); unknown kinds raise."""
    if value is None:
        return Drift()
    if isinstance(value, Drift):
        return value
    unknown = sorted(set(value) - set(KINDS))
    if unknown:
        raise ValueError(
            f"unknown drift kind {', '.join(map(repr, unknown))}; allowed kinds: {', '.join(KINDS)}"
        )
    levels: dict[str, float] = {}
    for kind, level in value.items():
        try:
            number = float(level)
        except (TypeError, ValueError):
            raise ValueError(f"drift level for {kind!r} must be a number, got {level!r}") from None
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"drift level for {kind!r} must be a finite number >= 0, got {level}")
        levels[kind] = number
    return Drift(**levels)


def parse_drift_args(items: Iterable[str]) -> dict[str, float]:
    """Parse command-line ``KIND=LEVEL`` items; raises ValueError with the offending item."""
    out: dict[str, float] = {}
    for item in items:
        kind, sep, level = item.partition("=")
        kind = kind.strip().replace("-", "_")
        if not sep or not kind or not level.strip():
            raise ValueError(f"bad drift {item!r}: expected KIND=LEVEL, e.g. covariate=0.5")
        try:
            out[kind] = float(level)
        except ValueError:
            raise ValueError(f"bad drift {item!r}: level {level!r} is not a number") from None
    as_drift(out)  # same validation as the library call
    return out
