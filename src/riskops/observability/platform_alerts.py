"""Alerts on the scoring service's and the platform exporter's metrics, the same for every model.

No traffic, decision-log drops, model not ready, load failures, drift bands, champion mismatch,
labels overdue and an exporter that cannot read its sources. Written into
``infra/prometheus/rules/platform.yml`` by ``python -m riskops.observability.rules``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from riskops.observability.windows import REQUESTS, RUNBOOK_BASE, runbook_url

NO_TRAFFIC_MINUTES = 15


def _new_or_increased(metric: str, window: str) -> str:
    """Any increase of a counter over ``window``, including a series born with a value >= 1.

    ``increase()`` needs two samples, and prometheus_client creates a labelled counter at its
    first ``inc()``: a model's first drop would otherwise never be seen. A series counts as born
    only if its target was already scraped ``window`` ago, so a Prometheus that starts scraping
    a service with old counts does not alert on them.
    """
    born = f"{metric} unless {metric} offset {window}"
    return (
        f"sum by (model) (increase({metric}[{window}])) > 0\nor\n"
        f"sum by (model) (({born}) and on (job, instance) (up offset {window})) > 0\n"
    )


@dataclass(frozen=True)
class _Alert:
    name: str
    expr: str
    severity: str
    summary: str
    runbook: str
    for_: str | None = None


def _platform_alerts(runbook_base: str, no_traffic_minutes: int) -> list[dict[str, Any]]:
    n = f"{no_traffic_minutes}m"
    alerts = [
        _Alert(
            "RiskopsScoringNoTraffic",
            f'max by (model) (riskops_model_current_version{{role="champion"}})\n'
            f"unless on (model) (sum by (model) (increase({REQUESTS}[{n}])) > 0)\n"
            f"and on (model) (sum by (model) (increase({REQUESTS}[1d] offset {n})) > 0)\n",
            "page",
            f"{{{{ $labels.model }}}}: the champion received no scoring request for {n}, "
            "though it did in the day before",
            "no-traffic",
        ),
        _Alert(
            "RiskopsDecisionLogDrops",
            _new_or_increased("riskops_decision_log_dropped_total", "10m"),
            "page",
            "{{ $labels.model }}: {{ $value }} decision(s) dropped from the decision log in 10m "
            "(answered without a record)",
            "decision-log-drops",
        ),
        _Alert(
            "RiskopsModelNotReady",
            "max by (model) (riskops_model_ready) == 0\n",
            "page",
            "{{ $labels.model }}: no champion loaded and warm on the scoring service for 5m",
            "model-not-ready",
            "5m",
        ),
        _Alert(
            "RiskopsModelLoadFailed",
            _new_or_increased("riskops_model_load_failures_total", "30m"),
            "ticket",
            "{{ $labels.model }}: the scoring service refused {{ $value }} new version(s) in 30m "
            "and kept serving the previous one",
            "model-load-failed",
        ),
        _Alert(
            "RiskopsDriftAlert",
            "max by (model, kind) (riskops_drift_worst_band) >= 2\n",
            "ticket",
            "{{ $labels.model }}: the latest {{ $labels.kind }} drift comparison is in the alert "
            "band",
            "drift-detected",
        ),
        _Alert(
            "RiskopsDriftWatch",
            "max by (model, kind) (riskops_drift_worst_band) == 1\n",
            "info",
            "{{ $labels.model }}: the latest {{ $labels.kind }} drift comparison is in the watch "
            "band",
            "drift-detected",
        ),
        _Alert(
            "RiskopsChampionMismatch",
            "max by (model) (riskops_champion_mismatch) == 1\n",
            "ticket",
            "{{ $labels.model }}: the MLflow champion alias disagrees with the platform's "
            "promotion records",
            "champion-mismatch",
            "5m",
        ),
        _Alert(
            "RiskopsLabelsOverdue",
            "max by (model) (riskops_labels_overdue) == 1\n",
            "ticket",
            "{{ $labels.model }}: no outcome labels landed for longer than the model's outcome "
            "window",
            "labels-overdue",
            "1h",
        ),
        _Alert(
            "RiskopsPlatformExporterFailing",
            "min by (source) (riskops_platform_exporter_source_up) == 0\n",
            "ticket",
            "the platform exporter cannot read {{ $labels.source }}: its gauges are missing",
            "platform-exporter",
            "10m",
        ),
    ]
    out = []
    for a in alerts:
        rule: dict[str, Any] = {"alert": a.name, "expr": a.expr}
        if a.for_:
            rule["for"] = a.for_
        rule["labels"] = {"severity": a.severity}
        rule["annotations"] = {
            "summary": a.summary,
            "runbook_url": runbook_url(runbook_base, a.runbook),
        }
        out.append(rule)
    return out


def platform_rules(
    *, runbook_base: str = RUNBOOK_BASE, no_traffic_minutes: int = NO_TRAFFIC_MINUTES
) -> dict[str, Any]:
    """Alerts on the service's and the platform exporter's metrics, the same for every model."""
    return {
        "groups": [
            {"name": "riskops-platform-alerts",
             "rules": _platform_alerts(runbook_base, no_traffic_minutes)}
        ]
    }  # fmt: skip
