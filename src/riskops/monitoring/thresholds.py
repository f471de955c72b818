"""Drift thresholds: banking PSI bands by default, overridable per model and per feature."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from riskops.specs import FeatureDriftThresholds as FeatureThresholds
from riskops.specs import Monitoring

__all__ = ["DriftThresholds", "FeatureThresholds"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DriftThresholds(_Frozen):
    """When a comparison of two profiles raises a band.

    PSI (numbers and categories) is judged against ``psi_warn``/``psi_alert`` (credit practice:
    < 0.10 stable, 0.10-0.25 watch, > 0.25 alert) and only when it also exceeds its
    sample-size critical value at ``confidence``, so small windows do not cry wolf. Null rates
    and new categories are judged on their absolute change (share of rows), the null rate only
    when a two-proportion z-test at ``confidence`` agrees. Below ``min_rows`` rows on either side
    no band is raised at all.
    """

    psi_warn: float = Field(default=0.10, ge=0)
    psi_alert: float = Field(default=0.25, ge=0)
    min_rows: int = Field(default=500, ge=1)
    confidence: float = Field(default=0.99, gt=0.5, lt=1)
    null_rate_warn: float = Field(default=0.02, ge=0, le=1)
    null_rate_alert: float = Field(default=0.05, ge=0, le=1)
    new_category_warn: float = Field(default=0.01, ge=0, le=1)
    new_category_alert: float = Field(default=0.05, ge=0, le=1)
    bins: int = Field(default=10, ge=2, le=100, description="Quantile bins of the reference.")
    max_categories: int = Field(default=20, ge=1, description="Rest goes to '(other)'.")
    features: dict[str, FeatureThresholds] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ordered(self) -> DriftThresholds:
        for name in (None, *self.features):
            resolved = self.for_feature(name) if name else self
            for kind in ("psi", "null_rate", "new_category"):
                warn, alert = getattr(resolved, f"{kind}_warn"), getattr(resolved, f"{kind}_alert")
                if warn > alert:
                    where = f"features.{name}." if name else ""
                    raise ValueError(f"{where}{kind}_warn ({warn}) exceeds {kind}_alert ({alert})")
        return self

    def for_feature(self, name: str) -> DriftThresholds:
        """The thresholds that apply to ``name`` (model values with its overrides)."""
        override = self.features.get(name)
        if override is None:
            return self
        values = {k: v for k, v in override.model_dump().items() if v is not None}
        return self.model_copy(update={**values, "features": {}})

    @classmethod
    def from_monitoring(cls, monitoring: Monitoring) -> DriftThresholds:
        """The thresholds a spec's ``monitoring`` section sets, per-feature overrides included."""
        names = [n for n in cls.model_fields if n in Monitoring.model_fields]
        return cls(**{name: getattr(monitoring, name) for name in names})
