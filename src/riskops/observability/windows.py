"""The SLO burn-rate windows and alert names: the contract with Alertmanager and the platform.

The SRE workbook's multi-window multi-burn-rate pattern ("Alerting on SLOs", table 5-8): an
alert fires when the budget burns faster than ``burn`` times the sustainable rate over both a
long and a short window (the short one makes the alert stop soon after the burn does).
"""

from __future__ import annotations

from dataclasses import dataclass

REQUESTS = "riskops_scoring_requests_total"  # the service's metrics the SLOs are computed from
LATENCY = "riskops_scoring_request_duration_seconds"
RUNBOOK_BASE = "docs/runbooks/"  # repository-relative; regenerate with --runbook-base for a URL

LATENCY_ALERT = "RiskopsLatencyBudgetBurn"
ERROR_ALERT = "RiskopsErrorBudgetBurn"
SLO_ALERTS = {"latency": LATENCY_ALERT, "errors": ERROR_ALERT}

# Names used in recording-rule names; production durations below. A test profile maps the same
# names onto seconds so that a real Prometheus can fire an alert within a test.
WINDOW_NAMES = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
PRODUCTION = {name: name for name in WINDOW_NAMES}


@dataclass(frozen=True)
class BurnWindow:
    """One (long, short) window pair at a burn rate, with the severity it alerts at."""

    severity: str  # page | ticket
    long: str
    short: str
    burn: float


BURN_WINDOWS = (
    BurnWindow("page", "1h", "5m", 14.4),
    BurnWindow("page", "6h", "30m", 6.0),
    BurnWindow("ticket", "1d", "2h", 3.0),
    BurnWindow("ticket", "3d", "6h", 1.0),
)


def runbook_url(base: str, name: str) -> str:
    """The ``runbook_url`` annotation of the runbook ``docs/runbooks/<name>.md``."""
    return f"{base}{name}.md"


def fast_profile(seconds_per_hour: float) -> dict[str, str]:
    """Test-only durations: each window scaled so that one hour lasts ``seconds_per_hour``.

    5m never drops under 4 s, so a rate over it still sees several 1-second scrapes.
    """
    hours = {"5m": 5 / 60, "30m": 0.5, "1h": 1, "2h": 2, "6h": 6, "1d": 24, "3d": 72}
    return {name: f"{max(4, round(h * seconds_per_hour))}s" for name, h in hours.items()}
