"""Settings of the SLO tracker in the scoring service and of the rollback policy."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SloSettings(BaseSettings):
    """How breaches are detected in the service and what a breach does (``RISKOPS_SLO_*``)."""

    model_config = SettingsConfigDict(env_prefix="RISKOPS_SLO_", extra="ignore", env_file=None)

    auto_rollback: bool = Field(
        default=False,
        description="Roll the champion back to the previous approved champion when a "
        "riskops.sla.breached follows its promotion within guard_window_minutes. Off: breaches "
        "are announced only.",
    )
    guard_window_minutes: float = Field(
        default=60.0,
        gt=0,
        description="How long after a promotion a breach of that model rolls it back.",
    )
    tracker: bool = Field(
        default=True,
        description="Run the scoring service's own burn-rate tracker (where no Prometheus and "
        "Alertmanager watch the service). Turn it off when Alertmanager's webhook feeds the "
        "governance API, or both announce the same breach.",
    )
    long_window_seconds: float = Field(
        default=3600.0, gt=0, description="Long window of the burn-rate check (SRE workbook: 1h)."
    )
    short_window_seconds: float = Field(
        default=300.0, gt=0, description="Short window of the burn-rate check (SRE workbook: 5m)."
    )
    burn_rate: float = Field(
        default=14.4,
        gt=0,
        description="Both windows must burn the error budget faster than this many times the "
        "sustainable rate (14.4: 2% of a 30-day budget in one hour).",
    )
    min_requests: int = Field(
        default=20,
        ge=1,
        description="Fewer requests than this in the short window never breach (a single "
        "failed request out of three is not an outage).",
    )
    cooldown_seconds: float = Field(
        default=1800.0,
        ge=0,
        description="After a breach of a model and SLO, the tracker announces the next one no "
        "sooner than this.",
    )
    evaluate_seconds: float = Field(
        default=5.0, gt=0, description="How often the tracker checks the windows (off the path)."
    )

    @model_validator(mode="after")
    def _windows(self) -> SloSettings:
        if self.short_window_seconds >= self.long_window_seconds:
            raise ValueError(
                f"RISKOPS_SLO_SHORT_WINDOW_SECONDS ({self.short_window_seconds}) must be below "
                f"RISKOPS_SLO_LONG_WINDOW_SECONDS ({self.long_window_seconds})"
            )
        return self
